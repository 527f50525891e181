"""`amber backup`: one snapshot of paths or standard input, with progress on a terminal."""

import sys

import click

from ..errors import PartialBackup
from ..repository import BackupStats
from .options import command, json_option, split_tags
from .output import Output, show_progress
from .progress import Live, bar, human_bytes, rate
from .tuning import throughput_mode


@command("backup")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--tag", "tags", multiple=True, metavar="T[,T...]", help="tag the snapshot (repeatable)")
@click.option("--exclude", "excludes", multiple=True, metavar="GLOB", help="skip matching paths (repeatable)")
@click.option("--host", metavar="H", help="hostname to record (default: this machine's)")
@click.option("--retain", metavar="DURATION", help="lock the snapshot for this long")
@click.option("--retain-until", metavar="DATE", help="lock the snapshot until this date")
@click.option("--retention-mode", type=click.Choice(["governance", "compliance"]), default=None)
@click.option("--stdin", "use_stdin", is_flag=True, help="back up standard input as one file")
@click.option("--stdin-name", metavar="NAME", default="stdin", show_default=True)
@json_option
def backup(session, paths, tags, excludes, host, retain, retain_until, retention_mode, use_stdin, stdin_name, as_json):
    """Back up PATHS (or standard input) into a new snapshot."""
    if use_stdin and paths:
        raise click.UsageError("--stdin takes no paths")
    if not use_stdin and not paths:
        raise click.UsageError("give at least one path to back up (or --stdin)")
    asked = retain is not None or retain_until is not None  # an empty value is an error, not "no lock"
    if retain is not None and retain_until is not None:
        raise click.UsageError("give --retain or --retain-until, not both")
    if retention_mode and not asked:
        raise click.UsageError("--retention-mode needs --retain or --retain-until")
    r = session.open()
    retention = r.retention(retain, retain_until, retention_mode) if asked else None
    stats = BackupStats()

    def render():
        return bar(
            0,
            None,
            f"{stats.files_total} files, {human_bytes(stats.bytes_read)} read "
            f"({rate(stats.bytes_read, stats.started)}), {human_bytes(r.blobs.bytes_added)} added  "
            f"{stats.current[-50:]}",
        )

    with Live(render, show_progress(as_json)), throughput_mode():
        res = r.backup(
            paths,
            tags=split_tags(tags),
            host=host,
            excludes=excludes,
            retention=retention,
            stdin=sys.stdin.buffer if use_stdin else None,
            stdin_name=stdin_name,
            stats=stats,
        )
    for err in stats.errors:
        click.echo(f"error: {err}", err=True)
    s = res.stats
    failed = None
    if stats.errors:
        failed = PartialBackup(
            f"snapshot {res.snapshot_id[:8]} saved, but {len(stats.errors)} "
            "source file(s) could not be read (listed above)"
        )
    return Output(
        res.to_json(),
        [
            f"Files: {s.files_new} new, {s.files_changed} changed, {s.files_unmodified} unmodified",
            f"Dirs:  {s.dirs}",
            f"Read {human_bytes(s.bytes_read)} of {human_bytes(s.bytes_total)}, "
            f"added {human_bytes(res.bytes_added)} to the repository in {res.duration_s:.2f} s",
            f"snapshot {res.snapshot_id[:8]} saved",
        ],
        failed,
    )
