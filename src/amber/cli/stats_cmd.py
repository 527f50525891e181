"""`amber stats`: how much the snapshots hold and how much is stored (restic's `stats`)."""

import click

from .options import command, json_option, snapshot_filter
from .output import Output
from .progress import human_bytes


@command("stats")
@click.argument("snapshots", nargs=-1)
@click.option(
    "--mode",
    type=click.Choice(["restore-size", "files-by-contents", "blobs-per-file", "raw-data"]),
    default="restore-size",
    show_default=True,
    help="what to count",
)
@snapshot_filter
@json_option
def stats(session, snapshots, mode, chosen, as_json):
    """Count the files and bytes of the snapshots named (all those chosen by --host/--path/--tag
    without SNAPSHOT) in one of restic's modes; raw-data adds the compression and
    deduplication ratios."""
    r = session.open()
    snaps = r.find_snapshots(snapshots, chosen) if snapshots else r.choose(chosen)
    doc = r.stats(snaps, mode)
    lines = [f"Stats in {mode} mode:", f"     Snapshots processed:  {doc['snapshots_count']}"]
    if "total_file_count" in doc:
        lines.append(f"        Total File Count:  {doc['total_file_count']}")
    if "total_blob_count" in doc:
        lines.append(f"        Total Blob Count:  {doc['total_blob_count']}")
    lines.append(f"              Total Size:  {human_bytes(doc['total_size'])}")
    if mode == "raw-data":
        lines += [
            f"      Total Uncompressed Size:  {human_bytes(doc['total_uncompressed_size'])}",
            f"       Compression Ratio:  {doc['compression_ratio']:.2f}x",
            f"Compression Space Saving:  {doc['compression_space_saving']:.2f} %",
            f"            Restore Size:  {human_bytes(doc['restore_size'])}",
            f"     Deduplication Ratio:  {doc['deduplication_ratio']:.2f}x",
        ]
    return Output(doc, lines)
