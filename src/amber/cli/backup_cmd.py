"""`amber backup`: one snapshot of paths, standard input or a command's output, with
restic's source selection, a dry run, and progress on a terminal."""

import sys

import click

from ..errors import AmberError, AnomalyAlarm, PartialBackup
from ..repository import BackupStats, SourceScan, listed_sources, source_selection
from .options import command, json_option, split_tags
from .output import Output, show_progress, warn
from .progress import Live, frame, human_bytes
from .tuning import throughput_mode


def _lists(fn):
    lists = (
        ("--files-from", "files_from", "read the paths to back up from FILE: a glob a line, # comments"),
        ("--files-from-verbatim", "files_from_verbatim", "read the paths to back up from FILE, exactly, one a line"),
        ("--files-from-raw", "files_from_raw", "read the paths to back up from FILE, exactly, each ended by a NUL"),
    )
    for flag, dest, what in reversed(lists):
        fn = click.option(flag, dest, multiple=True, metavar="FILE", help=f"{what} (repeatable)")(fn)
    return fn


def _rules(fn):
    options = [
        click.option(
            "-e", "--exclude", "excludes", multiple=True, metavar="GLOB", help="skip matching paths (repeatable)"
        ),
        click.option(
            "--exclude-file",
            "exclude_files",
            multiple=True,
            metavar="FILE",
            help="--exclude each line of FILE (repeatable)",
        ),
        click.option(
            "--iexclude", "iexcludes", multiple=True, metavar="GLOB", help="--exclude, ignoring case (repeatable)"
        ),
        click.option(
            "--iexclude-file",
            "iexclude_files",
            multiple=True,
            metavar="FILE",
            help="--iexclude each line of FILE (repeatable)",
        ),
        click.option("--exclude-caches", is_flag=True, help="keep only CACHEDIR.TAG of folders it tags as caches"),
        click.option(
            "--exclude-if-present",
            "if_present",
            multiple=True,
            metavar="NAME[:HEADER]",
            help="keep only NAME of folders holding it (starting with HEADER; repeatable)",
        ),
        click.option("--exclude-larger-than", "larger_than", metavar="SIZE", help="skip files larger (1k, 2M, 3G)"),
        click.option("-x", "--one-file-system", is_flag=True, help="do not cross mount points below the paths"),
    ]
    for opt in reversed(options):
        fn = opt(fn)
    return fn


@command("backup")
@click.argument("paths", nargs=-1, type=click.Path())
@_lists
@_rules
@click.option("--tag", "tags", multiple=True, metavar="T[,T...]", help="tag the snapshot (repeatable)")
@click.option("--host", metavar="H", help="hostname to record (default: this machine's)")
@click.option("--retain", metavar="DURATION", help="lock the snapshot for this long")
@click.option("--retain-until", metavar="DATE", help="lock the snapshot until this date")
@click.option("--retention-mode", type=click.Choice(["governance", "compliance"]), default=None)
@click.option("--exclude-nodump", is_flag=True, help="skip files and folders with the nodump flag (chattr +d)")
@click.option("--stdin", "use_stdin", is_flag=True, help="back up standard input as one file")
@click.option(
    "--stdin-from-command", "from_command", is_flag=True, help="back up what the command after -- prints, if it exits 0"
)
@click.option(
    "--stdin-name",
    "--stdin-filename",
    "stdin_name",
    metavar="NAME",
    default="stdin",
    show_default=True,
    help="the file name of what --stdin or --stdin-from-command stores",
)
@click.option("-n", "--dry-run", is_flag=True, help="show what would be stored; write nothing")
@click.option("--no-auto-hold", is_flag=True, help="on an anomaly alarm, do not hold the parent snapshot")
@click.option("-v", "--verbose", count=True, help="list each file as new, changed or unmodified")
@json_option
def backup(session, paths, tags, host, retain, retain_until, retention_mode, use_stdin, from_command, stdin_name,
           dry_run, no_auto_hold, verbose, as_json, **select):  # fmt: skip
    """Back up PATHS (or standard input, or a command's output) into a new snapshot. Changes
    against the parent snapshot that look like ransomware raise an alarm (exit 4) and hold the
    parent."""
    exclude_nodump = select.pop("exclude_nodump")
    lists = {k: select.pop(k) for k in ("files_from", "files_from_verbatim", "files_from_raw")}
    command_argv = _check_usage(paths, lists, use_stdin, from_command, dry_run)
    if command_argv:
        paths = ()
    selection = source_selection(**select)  # a bad SIZE is exit 2 before any password is asked
    listed = listed_sources(lists["files_from"], lists["files_from_verbatim"], lists["files_from_raw"])
    for missing in listed.missing:
        warn(f"{missing} does not exist, skipping")
    targets = list(paths) + listed.paths
    if any(lists.values()) and not targets:
        raise AmberError("none of the paths listed exist: nothing to back up")
    asked = retain is not None or retain_until is not None  # an empty value is an error, not "no lock"
    if retain is not None and retain_until is not None:
        raise click.UsageError("give --retain or --retain-until, not both")
    if retention_mode and not asked:
        raise click.UsageError("--retention-mode needs --retain or --retain-until")
    r = session.open()
    retention = r.retention(retain, retain_until, retention_mode) if asked else None
    stats = BackupStats()
    live = show_progress(as_json) and not (use_stdin or command_argv)
    scan = SourceScan(targets, selection) if live else None
    finished = []

    def render():  # a dry run adds nothing to the blob store: it shows no "+added"
        return _frame(stats, None if dry_run else r.blobs.bytes_added, scan, bool(finished))

    listing: list | None = [] if verbose else None
    with Live(render, live), throughput_mode():
        if scan is not None:
            scan.start()
        try:
            if dry_run:
                res = r.backup_dry_run(
                    targets, selection=selection, stats=stats, listing=listing, exclude_nodump=exclude_nodump
                )
            else:
                res = r.backup(
                    targets,
                    tags=split_tags(tags),
                    host=host,
                    selection=selection,
                    retention=retention,
                    stdin=sys.stdin.buffer if use_stdin else None,
                    stdin_command=command_argv or None,
                    stdin_name=stdin_name,
                    stats=stats,
                    listing=listing,
                    auto_hold=not no_auto_hold,
                    exclude_nodump=exclude_nodump,
                )
            finished.append(True)
        finally:
            if scan is not None:
                scan.stop()
    for err in stats.errors:
        click.echo(f"error: {err}", err=True)
    for message in stats.warnings:
        warn(message)
    return _output(res, stats, listed.missing, listing, dry_run)


def _check_usage(paths, lists: dict, use_stdin: bool, from_command: bool, dry_run: bool) -> list[str]:
    """Wrong combinations (exit 2); the command of --stdin-from-command (the PATHS), if given."""
    if from_command:
        if use_stdin or any(lists.values()):
            raise click.UsageError("--stdin-from-command takes no --stdin and no --files-from*")
        if not paths:
            raise click.UsageError("--stdin-from-command needs a command: backup --stdin-from-command -- CMD ARGS...")
        if dry_run:
            raise click.UsageError("--dry-run does not run a command: give paths")
        return list(paths)
    if use_stdin and (paths or any(lists.values())):
        raise click.UsageError("--stdin takes no paths")
    if use_stdin and dry_run:
        raise click.UsageError("--dry-run reads no standard input: give paths")
    if not use_stdin and not paths and not any(lists.values()):
        raise click.UsageError("give at least one path to back up (or --files-from, --stdin)")
    return []


def _frame(stats: BackupStats, added: int | None, scan, final: bool):
    """Bytes done (read, or unmodified and skipped) of the scan's total, files, what is added."""
    done = stats.bytes_read + stats.bytes_skipped
    total = None
    if scan is not None and scan.done:
        total = scan.bytes or None
    if scan is not None and scan.done and not scan.bytes:  # only empty files: count files instead
        done, total = stats.files_total, scan.files or None
        text = f"{stats.files_total}/{scan.files} files"
    elif total is not None:
        text = f"{human_bytes(done)}/{human_bytes(total)} {stats.files_total}/{scan.files} files"
    else:
        scanned = f" (scanned {scan.files})" if scan is not None else ""
        text = f"{human_bytes(done)} {stats.files_total} files{scanned}"
    if added is not None:
        text += f" +{human_bytes(added)}"
    return frame(done, total, text, stats.started, stats.current, final=final)


def _output(res, stats: BackupStats, missing: list[str], listing, dry_run: bool) -> Output:
    s = res.stats
    data = res.to_json()
    if missing:
        data["missing"] = missing
    if listing is not None:
        data["files"] = [{"path": p, "status": st, "size": n} for st, p, n in listing]
    problems = []
    if stats.errors:
        problems.append(f"{len(stats.errors)} source file(s) could not be read")
    if missing:
        problems.append(f"{len(missing)} listed path(s) do not exist")
    lines = [f"{status:<10} {path}" for status, path, _size in listing or ()]
    lines += [
        f"Files: {s.files_new} new, {s.files_changed} changed, {s.files_unmodified} unmodified",
        f"Dirs:  {s.dirs}",
        *([f"{len(s.warnings)} warning(s) about metadata (listed above)"] if s.warnings else []),
    ]
    found = None
    if dry_run:
        data.update(snapshot_id=None, dry_run=True)
        lines += [
            f"Would read {human_bytes(s.bytes_read)} of {human_bytes(s.bytes_total)} "
            f"and add {human_bytes(res.bytes_added)} to the repository",
            "dry run: nothing was written to the repository",
        ]
        what = "dry run done"
    else:
        found = res.anomalies
        lines += [
            f"Read {human_bytes(s.bytes_read)} of {human_bytes(s.bytes_total)}, "
            f"added {human_bytes(res.bytes_added)} to the repository in {res.duration_s:.2f} s",
            *_anomaly_lines(found),
            f"snapshot {res.snapshot_id[:8]} saved",
        ]
        what = f"snapshot {res.snapshot_id[:8]} saved"
    failed: Exception | None = None
    if problems:
        failed = PartialBackup(f"{what}, but {' and '.join(problems)} (listed above)")
    if found is not None and found.alarm:  # exit 4 wins over 3
        held = f"parent {found.parent[:8]} held" if found.held else f"parent {found.parent[:8]} NOT held"
        failed = AnomalyAlarm(
            f"{what}, but it raised an anomaly alarm ({held}): "
            + "; ".join(found.reasons)
            + (f"; {' and '.join(problems)}" if problems else "")
        )
    return Output(data, lines, failed)


def _anomaly_lines(found) -> list[str]:
    """The signals against the parent, in one line, and what could not be measured."""
    if found is None:
        return []
    lines = [f"not measured: {why}" for why in found.unmeasured]
    g = found.signals
    if "changed" not in g:
        lines.append(f"Against parent {found.parent[:8]}: only looked for ransom notes: {g.get('ransom_notes', 0)}")
    else:
        lines.insert(
            0,
            f"Against parent {found.parent[:8]}: {g['changed']:.0%} changed, {g['deleted']:.0%} deleted, "
            f"{g['added']:.0%} added, {g['renamed']:.0%} renamed to new extensions, "
            f"{g['collapsed']:.0%} of changed bytes stopped compressing, {g['ransom_notes']} ransom note(s)",
        )
    return lines
