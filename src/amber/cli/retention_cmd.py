"""`amber lock|hold|release|forget|prune`: protection and removal."""

import click

from ..clock import to_iso
from ..repository import keep_policy, parse_group_by, tag_list
from .options import command, json_option, snapshot_filter
from .output import Output
from .progress import human_bytes


def _state_line(p, now) -> str:
    parts = []
    if p.until is not None:
        parts.append(f"{p.mode} retention until {to_iso(p.until)}" + ("" if p.locked(now) else " (expired)"))
    if p.hold:
        parts.append(f"legal hold ({p.hold_reason})" if p.hold_reason else "legal hold")
    return ", ".join(parts) or "unprotected"


@command("lock")
@click.argument("snapshot")
@click.option("--for", "for_", metavar="DURATION", help="lock for this long from now")
@click.option("--until", metavar="DATE", help="lock until this date")
@click.option(
    "--mode",
    type=click.Choice(["governance", "compliance"]),
    default=None,
    help="default: the snapshot's active mode, else the repository's default mode, else governance",
)
@click.option("--bypass-governance", is_flag=True, help="allow shortening a governance lock (recorded)")
@snapshot_filter
@json_option
def lock(session, snapshot, for_, until, mode, bypass_governance, chosen, as_json):
    """Lock a snapshot (and all the data it needs) against deletion, or extend its lock."""
    r = session.open()
    snap = r.find_snapshot(snapshot, chosen)
    p = r.lock(snap, mode, r.lock_end(duration=for_, date=until), bypass_governance)
    return Output(
        {"snapshot_id": snap.id, **r.snapshot_json(snap)} if as_json else None,
        f"snapshot {snap.short_id}: {_state_line(p, r.clock.now())}",
    )


@command("hold")
@click.argument("snapshot")
@click.option("--reason", required=True, metavar="TEXT", help="why the snapshot is held (recorded)")
@snapshot_filter
def hold(session, snapshot, reason, chosen):
    """Place a legal hold: nothing the snapshot needs can be deleted until it is released."""
    r = session.open()
    snap = r.find_snapshot(snapshot, chosen)
    p = r.hold(snap, reason)
    return Output(text=f"snapshot {snap.short_id}: {_state_line(p, r.clock.now())}")


@command("release")
@click.argument("snapshot")
@snapshot_filter
def release(session, snapshot, chosen):
    """Lift a snapshot's legal hold."""
    r = session.open()
    snap = r.find_snapshot(snapshot, chosen)
    p = r.release(snap)
    return Output(text=f"snapshot {snap.short_id}: hold released; {_state_line(p, r.clock.now())}")


@command("forget")
@click.argument("snapshots", nargs=-1)
@click.option("--keep-last", type=click.IntRange(0), default=0, metavar="N")
@click.option("--keep-hourly", type=click.IntRange(0), default=0, metavar="N")
@click.option("--keep-daily", type=click.IntRange(0), default=0, metavar="N")
@click.option("--keep-weekly", type=click.IntRange(0), default=0, metavar="N")
@click.option("--keep-monthly", type=click.IntRange(0), default=0, metavar="N")
@click.option("--keep-yearly", type=click.IntRange(0), default=0, metavar="N")
@click.option("--keep-within", metavar="DURATION", help="keep snapshots newer than this")
@click.option(
    "--keep-tag", "keep_tags", multiple=True, metavar="T[,T...]", help="keep snapshots with all these tags (repeatable)"
)
@click.option(
    "--group-by", default="host,paths", show_default=True, metavar="host,paths,tags", help="apply the policy per group"
)
@snapshot_filter
@click.option("--bypass-governance", is_flag=True, help="remove named snapshots under governance retention")
@click.option("--trust-clock", is_flag=True, help="the clock was checked: delete despite a clock jump")
@click.option("--dry-run", "-n", is_flag=True, help="only say what would be removed")
@click.option("--prune", "then_prune", is_flag=True, help="prune unused data afterwards")
@json_option
def forget(
    session,
    snapshots,
    keep_last,
    keep_hourly,
    keep_daily,
    keep_weekly,
    keep_monthly,
    keep_yearly,
    keep_within,
    keep_tags,
    group_by,
    chosen,
    bypass_governance,
    trust_clock,
    dry_run,
    then_prune,
    as_json,
):
    """Remove snapshots by id, or all that a keep policy does not keep. Locked and held
    snapshots are never removed."""
    policy = keep_policy(keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly, keep_within)
    keep = [tag_list(t) for t in keep_tags]
    fields = parse_group_by(group_by)
    if snapshots and not (policy.empty() and not keep):
        raise click.UsageError("give snapshot ids or a --keep-* policy, not both")
    if not snapshots and policy.empty() and not keep:
        raise click.UsageError("give snapshot ids to remove, or a --keep-* policy")
    if bypass_governance and not snapshots:
        raise click.UsageError("--bypass-governance applies to snapshots named explicitly")
    r = session.open()
    if then_prune:
        r.require_prunable()  # before anything is forgotten, and shown by a dry run too
    if snapshots:
        res = r.forget(
            r.find_snapshots(snapshots, chosen),
            bypass_governance=bypass_governance,
            dry_run=dry_run,
            trust_clock=trust_clock,
        )
    else:
        res = r.forget_policy(
            policy, snaps=r.choose(chosen), keep_tags=keep, group_by=fields, dry_run=dry_run, trust_clock=trust_clock
        )
    prune_report = None
    if then_prune and not dry_run and res.remove:
        prune_report = r.prune(trust_clock=trust_clock)
    doc = res.to_json()
    if prune_report is not None:
        doc["prune"] = prune_report.to_json()
    verb = "would remove" if dry_run else "removed"
    lines = []
    for sid in res.keep:
        why = res.protections.get(sid) or ", ".join(res.reasons.get(sid, []))
        lines.append(f"keep    {sid[:8]}  {('kept only because of ' + why) if sid in res.locked else why}")
    for sid in res.remove:
        lines.append(f"{'remove' if dry_run else 'removed'} {sid[:8]}")
    lines.append(f"{len(res.keep)} kept ({len(res.locked)} only because of a lock or hold), {verb} {len(res.remove)}")
    if prune_report is not None:
        lines += _prune_lines(prune_report)
    return Output(doc, lines)


def _prune_lines(rep) -> list[str]:
    lines = [f"kept pack {pack[:16]}: {why}" for pack, why in sorted(rep.packs_locked.items())]
    if rep.waiting_for_runs:
        lines.append(
            f"{len(rep.waiting_for_runs)} backup(s) still running: planned deletion of "
            f"{len(rep.packs_planned)} pack(s) waits for the next prune"
        )
    verb = "would free" if rep.dry_run else "freed"
    n = len(rep.packs_planned) if rep.dry_run else len(rep.packs_deleted)
    lines.append(
        f"{'would delete' if rep.dry_run else 'deleted'} {n} of {rep.packs_total} packs, "
        f"{'would repack' if rep.dry_run else 'repacked'} {len(rep.packs_repacked)}, "
        f"{verb} {human_bytes(rep.bytes_freed)}"
    )
    return lines


@command("prune")
@click.option("--dry-run", "-n", is_flag=True, help="only say what would be deleted")
@click.option("--trust-clock", is_flag=True, help="the clock was checked: delete despite a clock jump")
@json_option
def prune(session, dry_run, trust_clock, as_json):
    """Delete data that no snapshot needs and whose own lock has expired."""
    r = session.open()
    rep = r.prune(dry_run=dry_run, trust_clock=trust_clock)
    return Output(rep.to_json(), _prune_lines(rep))
