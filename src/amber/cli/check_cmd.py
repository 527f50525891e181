"""`amber check`: structure always, every byte with --read-data."""

import click

from ..errors import IntegrityError
from .options import command, json_option
from .output import Output, show_progress, warn
from .progress import Live, bar
from .tuning import throughput_mode


@command("check")
@click.option("--read-data", is_flag=True, help="read and verify every byte of every pack")
@json_option
def check(session, read_data, as_json):
    """Verify the repository's structure, and with --read-data all its data."""
    r = session.open()
    state = {"done": 0, "total": 0}

    def progress(done, total):
        state["done"], state["total"] = done, total

    def render():
        return bar(state["done"], state["total"] or None, f"read {state['done']}/{state['total']} packs")

    with Live(render, show_progress(as_json) and read_data), throughput_mode():
        rep = r.check(read_data=read_data, progress=progress)

    def text():
        for w in rep.warnings:
            warn(w)
        click.echo(
            f"checked {rep.snapshots} snapshots, {rep.trees} trees, {rep.packs} packs, {rep.blobs} blobs"
            + (f"; read {rep.packs_read} packs ({rep.bytes_read} bytes)" if read_data else "")
        )
        if rep.ok:
            click.echo("no errors were found")

    failed = None
    if not rep.ok:
        lines = rep.errors[:100] + [f"affected: {a}" for a in rep.affected[:200]]
        failed = IntegrityError(f"{len(rep.errors)} error(s):\n  " + "\n  ".join(lines))
    return Output(rep.to_json(), text, failed)
