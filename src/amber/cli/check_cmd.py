import click

from .tuning import throughput_mode
from ..errors import IntegrityError
from .common import command, open_repo, print_json, show_progress
from .main import cli


@command(cli, "check")
@click.option("--read-data", is_flag=True, help="read and verify every byte of every pack")
@click.option("--json", "as_json", is_flag=True)
def check(ctx, repo, read_data, as_json):
    """Verify the repository's structure, and with --read-data all its data."""
    r = open_repo(ctx)
    state = {"done": 0, "total": 0}

    def progress(done, total):
        state["done"], state["total"] = done, total

    def render():
        from .progress import bar

        return bar(state["done"], state["total"] or None, f"read {state['done']}/{state['total']} packs")

    from .progress import Live

    with Live(render, show_progress(as_json) and read_data), throughput_mode():
        rep = r.check(read_data=read_data, progress=progress)
    if as_json:
        print_json(rep.to_json())
    else:
        for w in rep.warnings:
            click.echo(f"warning: {w}", err=True)
        click.echo(f"checked {rep.snapshots} snapshots, {rep.trees} trees, {rep.packs} packs, {rep.blobs} blobs"
                   + (f"; read {rep.packs_read} packs ({rep.bytes_read} bytes)" if read_data else ""))
        if rep.ok:
            click.echo("no errors were found")
    if not rep.ok:
        lines = rep.errors[:100] + [f"affected: {a}" for a in rep.affected[:200]]
        raise IntegrityError(f"{len(rep.errors)} error(s):\n  " + "\n  ".join(lines))
