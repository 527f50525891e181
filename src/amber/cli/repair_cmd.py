"""`amber repair config|packs|snapshots`: put back what an attacker or damage replaced or lost,
by adding objects, never by rewriting them."""

from __future__ import annotations

import click

from ..errors import IntegrityError
from .common import open_source
from .options import command, group, json_option, snapshot_filter
from .output import Output


@command("config")
@json_option
def repair_config(session, as_json):
    """Write the config pinned by the init event (audit log entry 0) back over a replaced one."""
    r = session.open()
    problems = list(r.config_problems)
    repaired = r.repair_config()
    text = ["config put back from the pin in the init event"] + [f"was: {p}" for p in problems]
    return Output(
        {"repaired": repaired, "problems": problems},
        text if repaired else "config matches the config pinned by the init event: nothing to repair",
    )


@command("packs")
@click.option(
    "--from", "source", metavar="REPOSITORY", help="a repository with this one's blob ids (init --copy-params-from)"
)
@click.option("--from-path", "path", metavar="PATH", type=click.Path(), help="files holding the lost data")
@click.option("--dry-run", is_flag=True, help="only say what is lost")
@json_option
def repair_packs(session, source, path, dry_run, as_json):
    """Store lost data again, matched by blob id, from another repository or from files; the
    damaged packs stay (locked ones cannot change) and readers take the new copies."""
    r = session.open()
    src = None
    if source:
        src = open_source(session, source)
    rep = r.repair_packs(source=src, path=path, dry_run=dry_run)
    text = [f"{rep.lost} lost blob(s)" + (" (dry run: nothing stored)" if dry_run else "")]
    if not dry_run:
        text.append(f"repaired {len(rep.repaired)} from {rep.source} in {rep.packs_written} new pack(s)")
    text += [f"refused: {line}" for line in rep.refused]
    text += [f"still lost: {line}" for line in rep.remaining[:50]]
    if len(rep.remaining) > 50:
        text.append(f"... and {len(rep.remaining) - 50} more (--json lists all)")
    if rep.remaining and not dry_run:
        text.append("`amber repair snapshots` writes snapshots without the files whose data is still lost")
    error = None
    if (rep.remaining or rep.refused) and not dry_run:
        refused = f", {len(rep.refused)} refused from the source" if rep.refused else ""
        error = IntegrityError(f"{len(rep.remaining)} blob(s) still lost{refused}")
    return Output(rep.to_json(), text, error)


@command("index")
@click.option("--dry-run", is_flag=True, help="only say what would be indexed and superseded")
@json_option
def repair_index(session, dry_run, as_json):
    """Index the stored packs no readable index file names, from their own headers, and supersede
    the index files that cannot be read (they stay; nothing is deleted)."""
    r = session.open()
    rep = r.repair_index(dry_run=dry_run)
    text = [
        f"read the headers of {rep.packs_read} pack(s) no index names; indexed {len(rep.packs_indexed)}"
        + (" (dry run: nothing written)" if dry_run else f" in {len(rep.index_files)} new index file(s)")
    ]
    text += [f"superseded {k}" for k in rep.superseded]
    text += [f"damaged: pack {line}" for line in rep.damaged]
    error = None
    if rep.damaged and not dry_run:
        error = IntegrityError(
            f"{len(rep.damaged)} pack(s) have a damaged header: `amber repair packs` stores their data again"
        )
    return Output(rep.to_json(), text, error)


@command("snapshots")
@click.argument("snapshots", nargs=-1)
@click.option("--dry-run", is_flag=True, help="only list what would be left out")
@snapshot_filter
@json_option
def repair_snapshots(session, snapshots, dry_run, chosen, as_json):
    """For each snapshot (all without SNAPSHOT) that needs data no copy of which can be read, a new
    snapshot without those files, tagged `repaired`; every file left out is listed."""
    r = session.open()
    if snapshots:
        snaps = r.find_snapshots(snapshots, chosen)
    else:
        snaps = None if chosen.empty() else [s for s in r.choose(chosen) if s.readable]
    fixes = r.repair_snapshots(snaps, dry_run=dry_run)
    text = []
    for fix in fixes:
        if not fix.dropped:
            continue
        head = f"snapshot {fix.original[:8]}: {len(fix.dropped)} file(s) or folder(s) lost"
        tail = f" -> new snapshot {fix.snapshot[:8]}" if fix.snapshot else " (dry run)" if dry_run else ""
        text.append(head + tail)
        text += [f"  dropped {p}" for p in fix.dropped]
    if not text:
        text = ["no snapshot needs lost data: nothing to repair"]
    return Output([f.to_json() for f in fixes], text)


repair = group(
    "repair",
    "Put back what was replaced, damaged or lost, by adding objects (never rewriting them).",
    [repair_config, repair_index, repair_packs, repair_snapshots],
)
