"""`amber drill`: a restore drill — restore, verify every byte, time it, extrapolate the RTO."""

import click

from ..errors import IntegrityError
from ..repository import RestoreStats
from .options import command, json_option, snapshot_filter
from .output import Output, show_progress
from .progress import Live, bar, human_bytes


@command("drill")
@click.argument("snapshot", default="latest")
@click.option("--sample", metavar="N|P%", help="restore only N files, or P% of them (a sample the same every time)")
@click.option("--target", type=click.Path(file_okay=False), help="restore into this new or empty folder and keep it")
@snapshot_filter
@json_option
def drill(session, snapshot, sample, target, chosen, as_json):
    """Restore a snapshot (or a sample of its files) into a scratch folder, verify every byte
    against its SHA-256, and say how long a full restore would take. Recorded in the audit log."""
    r = session.open()
    snap = r.find_snapshot(snapshot, chosen)
    stats = RestoreStats()

    def render():
        return bar(stats.bytes_written, stats.bytes_total or None, f"{stats.files_done}/{stats.files} files")

    with Live(render, show_progress(as_json)):
        rep = r.drill(snap, sample=sample, target=target, stats=stats)
    verdict = "passed" if rep.ok else "FAILED"
    text = [
        f"drill of snapshot {snap.short_id} ({rep.sample}): {verdict}",
        f"restored and verified {rep.verified} of {rep.files} files, {human_bytes(rep.bytes)} in {rep.seconds:.2f} s "
        f"({human_bytes(rep.throughput)}/s)",
        f"full restore ({rep.total_files} files, {human_bytes(rep.total_bytes)}) estimated at {rep.rto_seconds:.1f} s",
    ]
    text += [f"  {e}" for e in (rep.errors or [])[:50]]
    if rep.kept:
        text.append(f"restored files kept in {rep.target}")
    error = None
    if not rep.ok:
        error = IntegrityError(f"the drill of snapshot {snap.short_id} failed: {len(rep.errors or [])} problem(s)")
    return Output(rep.to_json(), text, error)
