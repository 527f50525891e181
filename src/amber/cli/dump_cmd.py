"""`amber dump`: a file, or a folder as a tar or zip archive, to standard output."""

import contextlib
import sys

import click

from ..errors import NotFound
from .options import command, snapshot_filter


@command("dump")
@click.argument("snapshot")
@click.argument("path")
@click.option(
    "-a", "--archive", type=click.Choice(["tar", "zip"]), default="tar", show_default=True, help="format of a folder"
)
@click.option("-t", "--target", type=click.Path(dir_okay=False), help="write to this file instead of stdout")
@snapshot_filter
def dump(session, snapshot, path, archive, target, chosen):
    """Write PATH of SNAPSHOT to standard output: a file's content as it is, a folder (`/` for
    everything) as a tar or zip archive with its metadata."""
    r = session.open()
    snap = r.find_snapshot(snapshot, chosen)
    node = r.node_at(snap, path)
    if node is None:
        raise NotFound(f"{path}: not in snapshot {snap.short_id}")
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(open(target, "wb")) if target else sys.stdout.buffer
        if node["type"] == "file":
            r.cat(snap, path, out)
        else:
            r.dump(snap, path, out, archive)
        out.flush()
