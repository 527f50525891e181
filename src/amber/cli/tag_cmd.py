"""`amber tag`: add, remove or set snapshots' tags — recorded as events, never by rewriting."""

import click

from .options import command, json_option, snapshot_filter, split_tags
from .output import Output


@command("tag")
@click.argument("snapshots", nargs=-1)
@click.option("--add", "add", multiple=True, metavar="T[,T...]", help="add these tags (repeatable)")
@click.option("--remove", "remove", multiple=True, metavar="T[,T...]", help="remove these tags (repeatable)")
@click.option("--set", "set_", multiple=True, metavar="T[,T...]", help="replace all tags (repeatable; '' for none)")
@snapshot_filter
@json_option
def tag(session, snapshots, add, remove, set_, chosen, as_json):
    """Change the tags of snapshots (without SNAPSHOT: all, or all chosen by --host/--path/--tag).

    Snapshots are immutable: each change is a `tag` event in the audit log, folded into what
    `snapshots`, the --tag filters and `forget --keep-tag` see. A write-only key may add tags,
    not remove them."""
    if set_ and (add or remove):
        raise click.UsageError("--set cannot be combined with --add or --remove")
    if not (set_ or add or remove):
        raise click.UsageError("give --add, --remove or --set")
    r = session.open()
    snaps = r.find_snapshots(snapshots, chosen) if snapshots else r.choose(chosen)
    changed = r.tag(snaps, add=split_tags(add), remove=split_tags(remove), set_=split_tags(set_) if set_ else None)
    lines = [
        f"snapshot {sid[:8]}: tags {','.join(c['tags']) or '(none)'}"
        + "".join(f" +{t}" for t in c["add"])
        + "".join(f" -{t}" for t in c["remove"])
        for sid, c in changed.items()
    ]
    lines.append(f"modified {len(changed)} of {len(snaps)} snapshot(s)")
    return Output({"changed": changed, "snapshots": [s.id for s in snaps]}, lines)
