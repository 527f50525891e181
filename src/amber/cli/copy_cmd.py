"""`amber copy`: snapshots of another repository copied into this one (restic's `copy`)."""

import click

from ..errors import IntegrityError
from ..repository import CopyReport
from .common import open_source
from .options import command, json_option
from .output import Output, show_progress
from .progress import Live, human_bytes
from .tuning import throughput_mode


@command("copy")
@click.argument("snapshots", nargs=-1)
@click.option("--from", "from_repo", required=True, metavar="URL", help="the repository to copy from")
@click.option("--host", "-H", "hosts", multiple=True, metavar="H", help="only snapshots of this host (repeatable)")
@click.option("--tag", "tags", multiple=True, metavar="T", help="only snapshots with this tag (repeatable)")
@click.option("--path", "paths", multiple=True, metavar="P", help="only snapshots of this path (repeatable)")
@click.option("--retain", metavar="DURATION", help="lock each copy this long instead of the lock it would carry")
@click.option("--retention-mode", type=click.Choice(["governance", "compliance"]), default=None)
@json_option
def copy(session, snapshots, from_repo, hosts, tags, paths, retain, retention_mode, as_json):
    """Copy snapshots (all, or those named) from --from into this repository.

    Snapshots copied before are skipped; only blobs this repository lacks move, each
    verified. The source's password comes from AMBER_FROM_PASSWORD or
    AMBER_FROM_PASSWORD_FILE."""
    if retention_mode and retain is None:
        raise click.UsageError("--retention-mode needs --retain")
    source = open_source(session, from_repo)
    r = session.open()
    report = CopyReport()

    def render():
        return (
            f"{len(report.copied)} copied, {len(report.skipped)} skipped, {len(report.refused)} refused; "
            f"{report.blobs_copied} blobs, {human_bytes(report.bytes_copied)}"
        )

    with Live(render, show_progress(as_json)), throughput_mode():
        r.copy_from(
            source,
            snapshots,
            hosts=hosts,
            tags=tags,
            paths=paths,
            retain=retain,
            retention_mode=retention_mode,
            report=report,
        )
    lines = [f"copied snapshot {s[:8]} to {d[:8]}" for s, d in report.copied.items()]
    lines += [f"snapshot {s[:8]} was copied before (as {d[:8]}): skipped" for s, d in report.skipped.items()]
    lines.append(
        f"{len(report.copied)} snapshots copied, {len(report.skipped)} skipped, {len(report.refused)} refused; "
        f"{report.blobs_copied} blobs ({human_bytes(report.bytes_copied)}) moved, "
        f"{human_bytes(report.bytes_added)} added"
    )
    error = None
    if report.refused:
        error = IntegrityError("refused: " + "; ".join(report.refused.values()))
    return Output(report.to_json(), lines, error)
