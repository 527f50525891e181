import sys

import click

from .. import browse
from .common import command, open_repo, print_json
from .main import cli


def _local_time(t) -> str:
    return t.astimezone().strftime("%Y-%m-%d %H:%M:%S")


@command(cli, "snapshots")
@click.option("--tag", "tags", multiple=True, metavar="T", help="only snapshots with this tag")
@click.option("--host", "hosts", multiple=True, metavar="H", help="only snapshots of this host")
@click.option("--json", "as_json", is_flag=True)
def snapshots(ctx, repo, tags, hosts, as_json):
    """List snapshots, oldest first."""
    r = open_repo(ctx)
    snaps = [s for s in r.snapshots()
             if (not tags or set(tags) & set(s.tags)) and (not hosts or s.hostname in hosts)]
    if as_json:
        print_json([r.snapshot_json(s) for s in snaps])
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(box=None, pad_edge=False)
    for col in ("ID", "Time", "Host", "Tags", "Retention", "Hold", "Paths"):
        t.add_column(col, no_wrap=col in ("ID", "Time"))
    now = r.clock.now()
    for s in snaps:
        p = r.protection(s)
        ret = ""
        if p.until is not None:
            ret = f"{p.mode} until {_local_time(p.until)}" + ("" if p.locked(now) else " (expired)")
        t.add_row(s.short_id, _local_time(s.time), s.hostname, ",".join(s.tags), ret,
                  "held" if p.hold else "", "\n".join(s.paths))
    Console(highlight=False, width=None if sys.stdout.isatty() else 200).print(t)
    click.echo(f"{len(snaps)} snapshot(s)")


@command(cli, "ls")
@click.argument("snapshot")
@click.argument("path", required=False, default="/")
@click.option("--json", "as_json", is_flag=True)
def ls(ctx, repo, snapshot, path, as_json):
    """List the files of a snapshot, below PATH."""
    r = open_repo(ctx)
    snap = r.find_snapshot(snapshot)
    entries = browse.ls(r, snap, path)
    if as_json:
        print_json([browse.entry_json(p, n) for p, n in entries])
        return
    out = sys.stdout
    for p, n in entries:
        e = browse.entry_json(p, n)
        owner = f"{e['user'] or e['uid']}/{e['group'] or e['gid']}"
        extra = f" -> {e['target']}" if n["type"] == "symlink" else ""
        mtime = (e["mtime"] or "")[:19].replace("T", " ")
        out.write(f"{e['permissions']} {owner:>15} {e['size']:>12} {mtime} {p}{extra}\n")


@command(cli, "cat")
@click.argument("snapshot")
@click.argument("path")
def cat(ctx, repo, snapshot, path):
    """Write one file of a snapshot to standard output."""
    r = open_repo(ctx)
    browse.cat(r, r.find_snapshot(snapshot), path, sys.stdout.buffer)
    sys.stdout.buffer.flush()


_SYMBOL = {"added": "+", "removed": "-", "modified": "M", "type": "T", "metadata": "U"}


@command(cli, "diff")
@click.argument("snapshot_a")
@click.argument("snapshot_b")
@click.option("--json", "as_json", is_flag=True)
def diff(ctx, repo, snapshot_a, snapshot_b, as_json):
    """Show what changed between two snapshots."""
    r = open_repo(ctx)
    a, b = r.find_snapshot(snapshot_a), r.find_snapshot(snapshot_b)
    changes = browse.diff(r, a, b)
    if as_json:
        print_json({"from": a.id, "to": b.id, "changes": changes})
        return
    click.echo(f"comparing snapshot {a.short_id} to {b.short_id}:")
    for c in changes:
        slash = "/" if c["type"] == "dir" else ""
        click.echo(f"{_SYMBOL[c['change']]}    {c['path']}{slash}")
    counts = {k: sum(1 for c in changes if c["change"] == k) for k in _SYMBOL}
    click.echo(", ".join(f"{v} {k}" for k, v in counts.items()))


@command(cli, "find")
@click.argument("pattern")
@click.option("--json", "as_json", is_flag=True)
def find(ctx, repo, pattern, as_json):
    """Every version of every path matching PATTERN, across all snapshots."""
    r = open_repo(ctx)
    matches = browse.find(r, pattern)
    if as_json:
        print_json(matches)
        return
    last = None
    for m in matches:
        if m["snapshot"] != last:
            click.echo(f"snapshot {m['short_id']} of {m['time']}:")
            last = m["snapshot"]
        sha = f"  sha256:{m['sha256'][:16]}" if m.get("sha256") else ""
        click.echo(f"  {m['permissions']} {m['size']:>12} {(m['mtime'] or '')[:19]} {m['path']}{sha}")
    click.echo(f"{len(matches)} match(es) in {len({m['snapshot'] for m in matches})} snapshot(s)")
