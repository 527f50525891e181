"""`amber repair config`: put back what an attacker or damage replaced, from what the log pins."""

from .options import command, group, json_option
from .output import Output


@command("config")
@json_option
def repair_config(session, as_json):
    """Write the config pinned by the init event (audit log entry 0) back over a replaced one."""
    r = session.open()
    problems = list(r.config_problems)
    repaired = r.repair_config()
    text = ["config put back from the pin in the init event"] + [f"was: {p}" for p in problems]
    return Output(
        {"repaired": repaired, "problems": problems},
        text if repaired else "config matches the config pinned by the init event: nothing to repair",
    )


repair = group("repair", "Put back what was replaced or damaged, from what the audit log pins.", [repair_config])
