"""`amber snapshots|ls|cat|diff|find`: reading what was backed up."""

import sys

import click

from ..errors import IntegrityError
from ..repository import entry_json, group, newest, parse_group_by
from .options import command, json_option, snapshot_filter
from .output import Output


def _local_time(t) -> str:
    return t.astimezone().strftime("%Y-%m-%d %H:%M:%S")


@command("snapshots")
@snapshot_filter
@click.option("--group-by", metavar="host,paths,tags", default="", help="show the snapshots in groups (restic's)")
@click.option("--latest", type=click.IntRange(1), metavar="N", help="only the newest N of each host and paths")
@json_option
def snapshots(session, chosen, group_by, latest, as_json):
    """List snapshots, oldest first (tags as `amber tag` left them)."""
    fields = parse_group_by(group_by)
    r = session.open()
    snaps = r.choose(chosen)
    groups = [(key, newest(members, latest) if latest else members) for key, members in group(snaps, fields)]
    overrides = r.snapshot_overrides()

    def table(members):
        from rich.console import Console
        from rich.table import Table

        t = Table(box=None, pad_edge=False)
        for col in ("ID", "Time", "Host", "Tags", "Retention", "Hold", "Paths"):
            t.add_column(col, no_wrap=col in ("ID", "Time"))
        now = r.clock.now()
        for s in members:
            p = r.protection(s)
            ret = ""
            if p.until is not None:
                ret = f"{p.mode} until {_local_time(p.until)}" + ("" if p.locked(now) else " (expired)")
            if s.doc.get("lock_tier"):
                ret += f" ({s.doc['lock_tier']} tier)"
            t.add_row(
                s.short_id + (" !" if overrides.get(s.id) else ""),
                _local_time(s.time),
                s.hostname,
                ",".join(s.tags),
                ret,
                "held" if p.hold else "",
                "\n".join(s.paths),
            )
        Console(highlight=False, width=None if sys.stdout.isatty() else 200).print(t)
        click.echo(f"{len(members)} snapshot(s)")
        _override_notes(members, overrides)

    def text():
        for key, members in groups:
            if fields:
                click.echo(_group_title(key))
            table(members)
            if fields:
                click.echo()

    if not fields:
        doc = [r.snapshot_json(s, overrides) for s in groups[0][1]] if groups and as_json else []
    else:
        doc = [
            {"group_key": key, "snapshots": [r.snapshot_json(s, overrides) for s in members]} for key, members in groups
        ]
    return Output(doc if as_json else None, text if groups else (lambda: table([])))


def _group_title(key: dict) -> str:
    parts = []
    if key["hostname"] is not None:
        parts.append(f"host [{key['hostname']}]")
    if key["paths"] is not None:
        parts.append(f"paths [{', '.join(key['paths'])}]")
    if key["tags"] is not None:
        parts.append(f"tags [{', '.join(key['tags'])}]")
    return "snapshots for (" + ", ".join(parts) + "):"


def _override_notes(snaps, overrides: dict) -> None:
    """Below the table: what each snapshot marked `!` went through."""
    for s in snaps:
        for o in overrides.get(s.id, []):
            click.echo(f"! {s.short_id}: {o.describe()}")


@command("ls")
@click.argument("snapshot")
@click.argument("path", required=False, default="/")
@snapshot_filter
@json_option
def ls(session, snapshot, path, chosen, as_json):
    """List the files of a snapshot, below PATH."""
    r = session.open()
    errors: list[str] = []
    entries = [(p, n, entry_json(p, n)) for p, n in r.ls(r.find_snapshot(snapshot, chosen), path, errors)]

    def text():
        out = sys.stdout
        for p, n, e in entries:
            owner = f"{e['user'] or e['uid']}/{e['group'] or e['gid']}"
            extra = f" -> {e['target']}" if n["type"] == "symlink" else ""
            mtime = (e["mtime"] or "")[:19].replace("T", " ")
            out.write(f"{e['permissions']} {owner:>15} {e['size']:>12} {mtime} {p}{extra}\n")

    return Output([e for _p, _n, e in entries], text, _damage(errors))


@command("cat")
@click.argument("snapshot")
@click.argument("path")
@snapshot_filter
def cat(session, snapshot, path, chosen):
    """Write one file of a snapshot to standard output."""
    r = session.open()
    r.cat(r.find_snapshot(snapshot, chosen), path, sys.stdout.buffer)
    sys.stdout.buffer.flush()


_SYMBOL = {"added": "+", "removed": "-", "modified": "M", "type": "T", "metadata": "U"}


@command("diff")
@click.argument("snapshot_a")
@click.argument("snapshot_b")
@snapshot_filter
@json_option
def diff(session, snapshot_a, snapshot_b, chosen, as_json):
    """Show what changed between two snapshots."""
    r = session.open()
    a, b = r.find_snapshot(snapshot_a, chosen), r.find_snapshot(snapshot_b, chosen)
    errors: list[str] = []
    changes = r.diff(a, b, errors)
    lines = [f"comparing snapshot {a.short_id} to {b.short_id}:"]
    for c in changes:
        slash = "/" if c["type"] == "dir" else ""
        lines.append(f"{_SYMBOL[c['change']]}    {c['path']}{slash}")
    counts = {k: sum(1 for c in changes if c["change"] == k) for k in _SYMBOL}
    lines.append(", ".join(f"{v} {k}" for k, v in counts.items()))
    return Output({"from": a.id, "to": b.id, "changes": changes}, lines, _damage(errors))


@command("find")
@click.argument("pattern")
@snapshot_filter
@json_option
def find(session, pattern, chosen, as_json):
    """Every version of every path matching PATTERN, across all snapshots (or those chosen)."""
    r = session.open()
    errors: list[str] = []
    matches = r.find(pattern, None if chosen.empty() else r.choose(chosen), errors=errors)
    lines = []
    last = None
    for m in matches:
        if m["snapshot"] != last:
            lines.append(f"snapshot {m['short_id']} of {m['time']}:")
            last = m["snapshot"]
        sha = f"  sha256:{m['sha256'][:16]}" if m.get("sha256") else ""
        lines.append(f"  {m['permissions']} {m['size']:>12} {(m['mtime'] or '')[:19]} {m['path']}{sha}")
    lines.append(f"{len(matches)} match(es) in {len({m['snapshot'] for m in matches})} snapshot(s)")
    return Output(matches, lines, _damage(errors))


def _damage(errors: list[str]) -> IntegrityError | None:
    """What was left out because it could not be read: shown after the rest, exit 20."""
    if not errors:
        return None
    shown = errors[:20] + ([f"… {len(errors) - 20} more"] if len(errors) > 20 else [])
    return IntegrityError(f"{len(errors)} damaged part(s) skipped:\n  " + "\n  ".join(shown))
