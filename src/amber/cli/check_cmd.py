"""`amber check`: structure always, every byte with --read-data."""

import time

import click

from ..errors import IntegrityError, UsageError
from ..repository import check_scope
from .options import command, json_option
from .output import Output, show_progress, warn
from .progress import Live, frame
from .tuning import throughput_mode


@command("check")
@click.option("--read-data", is_flag=True, help="read and verify every byte of every pack")
@click.option(
    "--read-data-subset",
    metavar="N/M|P%|SIZE",
    help="read only slice N of M of the packs, a random P% of them, or random packs up to SIZE (500M, 2G)",
)
@click.option("--since", metavar="DURATION", help="skip packs verified clean within DURATION (implies --read-data)")
@json_option
def check(session, read_data, read_data_subset, since, as_json):
    """Verify the repository's structure, and with --read-data all its data."""
    if read_data and read_data_subset is not None:
        raise UsageError("--read-data and --read-data-subset exclude each other")
    check_scope(read_data_subset, since)  # a malformed argument is exit 2 before any password is asked
    r = session.open()
    read_data = read_data or read_data_subset is not None or since is not None
    state = {"done": 0, "total": 0, "started": time.monotonic()}

    def progress(done, total):
        if total and not state["total"]:
            state["started"] = time.monotonic()  # the rate is of reading packs, not of what came before
        state["done"], state["total"] = done, total

    def render():
        text = f"read {state['done']}/{state['total']} packs" if state["total"] else "checking the structure"
        return frame(state["done"], state["total"] or None, text, state["started"])

    with Live(render, show_progress(as_json) and read_data), throughput_mode():
        rep = r.check(read_data=read_data, progress=progress, read_data_subset=read_data_subset, since=since)

    def text():
        for w in rep.warnings:
            warn(w)
        click.echo(
            f"checked {rep.snapshots} snapshots, {rep.trees} trees, {rep.packs} packs, {rep.blobs} blobs"
            + (f"; read {rep.packs_read} packs ({rep.bytes_read} bytes)" if read_data else "")
            + (f", subset {rep.read_subset}" if rep.read_subset else "")
            + (f"; skipped {rep.packs_skipped_verified} packs verified since {since}" if since else "")
        )
        if rep.ok:
            click.echo("no errors were found")

    failed = None
    if not rep.ok:
        lines = rep.errors[:100] + [f"affected: {a}" for a in rep.affected[:200]]
        failed = IntegrityError(f"{len(rep.errors)} error(s):\n  " + "\n  ".join(lines))
    return Output(rep.to_json(), text, failed)
