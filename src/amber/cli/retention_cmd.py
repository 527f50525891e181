import click

from ..clock import to_iso
from .common import command, open_repo, print_json
from .main import cli


def _state_line(p, now) -> str:
    parts = []
    if p.until is not None:
        parts.append(f"{p.mode} retention until {to_iso(p.until)}" + ("" if p.locked(now) else " (expired)"))
    if p.hold:
        parts.append(f"legal hold ({p.hold_reason})" if p.hold_reason else "legal hold")
    return ", ".join(parts) or "unprotected"


@command(cli, "lock")
@click.argument("snapshot")
@click.option("--for", "for_", metavar="DURATION", help="lock for this long from now")
@click.option("--until", metavar="DATE", help="lock until this date")
@click.option("--mode", type=click.Choice(["governance", "compliance"]), default=None,
              help="default: the repository's default mode, else governance")
@click.option("--bypass-governance", is_flag=True, help="allow shortening a governance lock (recorded)")
@click.option("--json", "as_json", is_flag=True)
def lock(ctx, repo, snapshot, for_, until, mode, bypass_governance, as_json):
    """Lock a snapshot (and all the data it needs) against deletion, or extend its lock."""
    from ..retention.locks import resolve_until

    r = open_repo(ctx)
    snap = r.find_snapshot(snapshot)
    t = resolve_until(r, for_, until)
    default = (r.config.get("default_retention") or {}).get("mode")
    cur = r.protection(snap)
    mode = mode or (cur.mode if cur.locked(r.clock.now()) else None) or default or "governance"
    p = r.lock(snap, mode, t, bypass_governance)
    if as_json:
        print_json(r.snapshot_json(snap))
    else:
        click.echo(f"snapshot {snap.short_id}: {_state_line(p, r.clock.now())}")


@command(cli, "hold")
@click.argument("snapshot")
@click.option("--reason", required=True, metavar="TEXT", help="why the snapshot is held (recorded)")
def hold(ctx, repo, snapshot, reason):
    """Place a legal hold: nothing the snapshot needs can be deleted until it is released."""
    r = open_repo(ctx)
    snap = r.find_snapshot(snapshot)
    p = r.hold(snap, reason)
    click.echo(f"snapshot {snap.short_id}: {_state_line(p, r.clock.now())}")


@command(cli, "release")
@click.argument("snapshot")
def release(ctx, repo, snapshot):
    """Lift a snapshot's legal hold."""
    r = open_repo(ctx)
    snap = r.find_snapshot(snapshot)
    p = r.release(snap)
    click.echo(f"snapshot {snap.short_id}: hold released; {_state_line(p, r.clock.now())}")


@command(cli, "forget")
@click.argument("snapshots", nargs=-1)
@click.option("--keep-last", type=click.IntRange(0), default=0, metavar="N")
@click.option("--keep-hourly", type=click.IntRange(0), default=0, metavar="N")
@click.option("--keep-daily", type=click.IntRange(0), default=0, metavar="N")
@click.option("--keep-weekly", type=click.IntRange(0), default=0, metavar="N")
@click.option("--keep-monthly", type=click.IntRange(0), default=0, metavar="N")
@click.option("--keep-yearly", type=click.IntRange(0), default=0, metavar="N")
@click.option("--keep-within", metavar="DURATION", help="keep snapshots newer than this")
@click.option("--tag", "tags", multiple=True, metavar="T", help="only consider snapshots with this tag")
@click.option("--host", "hosts", multiple=True, metavar="H", help="only consider snapshots of this host")
@click.option("--bypass-governance", is_flag=True, help="remove named snapshots under governance retention")
@click.option("--trust-clock", is_flag=True, help="the clock was checked: delete despite a clock jump")
@click.option("--dry-run", "-n", is_flag=True, help="only say what would be removed")
@click.option("--prune", "then_prune", is_flag=True, help="prune unused data afterwards")
@click.option("--json", "as_json", is_flag=True)
def forget(ctx, repo, snapshots, keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly,
           keep_yearly, keep_within, tags, hosts, bypass_governance, trust_clock, dry_run, then_prune, as_json):
    """Remove snapshots by id, or all that a keep policy does not keep. Locked and held
    snapshots are never removed."""
    import datetime as _dt

    from ..retention.policy import KeepPolicy
    from ..clock import duration_seconds

    within = _dt.timedelta(seconds=duration_seconds(keep_within)) if keep_within else None
    policy = KeepPolicy(keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly, within)
    if snapshots and not policy.empty():
        raise click.UsageError("give snapshot ids or a --keep-* policy, not both")
    if not snapshots and policy.empty():
        raise click.UsageError("give snapshot ids to remove, or a --keep-* policy")
    if bypass_governance and not snapshots:
        raise click.UsageError("--bypass-governance applies to snapshots named explicitly")
    r = open_repo(ctx)
    if snapshots:
        snaps = []
        for ref in snapshots:
            s = r.find_snapshot(ref)
            if s.id not in {x.id for x in snaps}:
                snaps.append(s)
        res = r.forget(snaps, bypass_governance=bypass_governance, dry_run=dry_run, trust_clock=trust_clock)
    else:
        candidates = [s for s in r.snapshots() if (not tags or set(tags) & set(s.tags))
                      and (not hosts or s.hostname in hosts)]
        res = r.forget_policy(policy, snaps=candidates, dry_run=dry_run, trust_clock=trust_clock)
    prune_report = None
    if then_prune and not dry_run and res.remove:
        prune_report = r.prune(trust_clock=trust_clock)
    if as_json:
        out = res.to_json()
        if prune_report is not None:
            out["prune"] = prune_report.to_json()
        print_json(out)
        return
    verb = "would remove" if dry_run else "removed"
    for sid in res.keep:
        why = res.protections.get(sid) or ", ".join(res.reasons.get(sid, []))
        click.echo(f"keep    {sid[:8]}  {('kept only because of ' + why) if sid in res.locked else why}")
    for sid in res.remove:
        click.echo(f"{'remove' if dry_run else 'removed'} {sid[:8]}")
    click.echo(f"{len(res.keep)} kept ({len(res.locked)} only because of a lock or hold), "
               f"{verb} {len(res.remove)}")
    if prune_report is not None:
        _print_prune(prune_report)


def _print_prune(rep) -> None:
    from .progress import human_bytes

    for pack, why in sorted(rep.packs_locked.items()):
        click.echo(f"kept pack {pack[:16]}: {why}")
    if rep.waiting_for_runs:
        click.echo(f"{len(rep.waiting_for_runs)} backup(s) still running: planned deletion of "
                   f"{len(rep.packs_planned)} pack(s) waits for the next prune")
    verb = "would free" if rep.dry_run else "freed"
    n = len(rep.packs_planned) if rep.dry_run else len(rep.packs_deleted)
    click.echo(f"{'would delete' if rep.dry_run else 'deleted'} {n} of {rep.packs_total} packs, "
               f"{'would repack' if rep.dry_run else 'repacked'} {len(rep.packs_repacked)}, "
               f"{verb} {human_bytes(rep.bytes_freed)}")


@command(cli, "prune")
@click.option("--dry-run", "-n", is_flag=True, help="only say what would be deleted")
@click.option("--trust-clock", is_flag=True, help="the clock was checked: delete despite a clock jump")
@click.option("--json", "as_json", is_flag=True)
def prune(ctx, repo, dry_run, trust_clock, as_json):
    """Delete data that no snapshot needs and whose own lock has expired."""
    r = open_repo(ctx)
    rep = r.prune(dry_run=dry_run, trust_clock=trust_clock)
    if as_json:
        print_json(rep.to_json())
    else:
        _print_prune(rep)
