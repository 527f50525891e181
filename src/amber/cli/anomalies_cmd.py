"""`amber anomalies`: the anomaly alarms backups raised, from the audit log."""

from .options import command, json_option
from .output import Output


def _line(a: dict) -> str:
    held = f"parent {str(a['parent'])[:8]} held" if a["held"] else f"parent {str(a['parent'])[:8]} not held"
    return f"{a['time']}  snapshot {str(a['snapshot'])[:8]}  {held}: " + "; ".join(map(str, a["reasons"]))


@command("anomalies")
@json_option
def anomalies(session, as_json):
    """List the anomaly alarms (ransomware signals) raised by backups, oldest first."""
    found = session.open().anomalies()
    return Output(found, [_line(a) for a in found] or ["no anomaly alarms"])
