"""`amber restore`: a snapshot, or parts of it, under a target folder."""

import click

from ..repository import RestoreStats
from .options import command, json_option, snapshot_filter
from .output import Output, show_progress, warn
from .progress import Live, frame, human_bytes
from .tuning import throughput_mode


@command("restore")
@click.argument("snapshot")
@click.option("-t", "--target", required=True, type=click.Path(file_okay=False), help="restore under this folder")
@click.option("--include", "includes", multiple=True, metavar="PATH", help="restore only this path (repeatable)")
@click.option("--verify", is_flag=True, help="re-read every restored file and check its SHA-256")
@click.option("--no-owner", is_flag=True, help="do not restore owners (uid/gid), even as root")
@click.option("--no-special", is_flag=True, help="skip device nodes and FIFOs, and strip setuid/setgid bits")
@snapshot_filter
@json_option
def restore(session, snapshot, target, includes, verify, no_owner, no_special, chosen, as_json):
    """Restore a snapshot under --target."""
    r = session.open()
    snap = r.find_snapshot(snapshot, chosen)
    stats = RestoreStats()
    # the whole snapshot's totals are known from the start: its summary records them
    whole = {} if includes else snap.summary
    finished = []

    def render():
        files = max(stats.files, whole.get("files_total", 0))
        total = max(stats.bytes_total, whole.get("bytes_total", 0))
        text = f"{human_bytes(stats.bytes_written)}/{human_bytes(total)} {stats.files_done}/{files} files"
        return frame(stats.bytes_written, total or None, text, stats.started, stats.current, final=bool(finished))

    with Live(render, show_progress(as_json)), throughput_mode(switch_interval=0.001):
        r.restore(snap, target, include=includes, verify=verify, stats=stats, no_owner=no_owner, no_special=no_special)
        finished.append(True)
    text = (
        f"restored snapshot {snap.short_id}: {stats.files} files, {stats.dirs} dirs, "
        f"{human_bytes(stats.bytes_written)} to {target}"
    )
    if verify:
        text += f"; verified {stats.verified} files"
    if stats.warnings:
        text += f"; {len(stats.warnings)} warning(s) (listed above)"
    for message in stats.warnings:
        warn(message)
    # "snapshot" is the older name of the same field, kept for scripts that read it
    return Output(
        {
            "snapshot_id": snap.id,
            "snapshot": snap.id,
            "files": stats.files,
            "dirs": stats.dirs,
            "bytes": stats.bytes_written,
            "verified": stats.verified if verify else None,
            "warnings": stats.warnings,
        },
        text,
    )
