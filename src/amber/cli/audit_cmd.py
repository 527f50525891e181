import click

from ..errors import IntegrityError
from .common import command, open_repo, print_json
from .main import cli


@cli.group("audit")
def audit():
    """The tamper-evident audit log: list, verify, print the signed checkpoint."""


@command(audit, "log")
@click.option("--json", "as_json", is_flag=True)
def audit_log(ctx, repo, as_json):
    """Every event, oldest first."""
    r = open_repo(ctx)
    events = [ev for ev, _raw in r.audit.entries()]
    if as_json:
        print_json(events)
        return
    for ev in events:
        snap = f" {ev['snapshot'][:8]}" if ev.get("snapshot") else ""
        d = ev.get("details") or {}
        extra = ""
        if ev["type"] == "lock":
            extra = f" {d.get('mode')} until {d.get('until')}" + (" (bypassed governance)" if d.get("bypass_governance") else "")
        elif ev["type"] in ("hold", "release") and d.get("reason"):
            extra = f" ({d['reason']})"
        elif ev["type"] == "forget" and d.get("bypass_governance"):
            extra = " (bypassed governance)"
        elif ev["type"] == "check":
            extra = " ok" if d.get("ok") else f" {d.get('errors')} error(s)"
        elif ev["type"] == "prune":
            extra = f" {len(d.get('packs_deleted') or [])} packs, {d.get('bytes_freed', 0)} bytes"
        elif ev["type"] == "snapshot" and d.get("recovered"):
            extra = " (recorded late, after an interrupted backup)"
        actor = ev.get("actor") or {}
        click.echo(f"{ev['seq']:>6}  {ev['time']}  {ev['type']:<10}{snap}{extra}  "
                   f"[{actor.get('user')}@{actor.get('host')}]")


@command(audit, "verify")
@click.option("--checkpoint", "checkpoint_file", type=click.Path(dir_okay=False, exists=True),
              help="also check consistency with a checkpoint kept outside the repository")
@click.option("--json", "as_json", is_flag=True)
def audit_verify(ctx, repo, checkpoint_file, as_json):
    """Recompute the log, check every checkpoint and every event's link to the repository,
    and its consistency with the last checkpoint this client saw."""
    r = open_repo(ctx)
    external = None
    if checkpoint_file:
        with open(checkpoint_file, "rb") as f:
            external = f.read(1 << 16)
    rep = r.audit.verify(external)
    if as_json:
        print_json({"ok": rep.ok, "size": rep.size, "root": rep.root.hex(), "checkpoints": rep.checkpoints,
                    "remembered_size": rep.remembered, "errors": rep.errors, "warnings": rep.warnings})
    else:
        for w in rep.warnings:
            click.echo(f"warning: {w}", err=True)
        click.echo(f"audit log: {rep.size} events, root {rep.root.hex()}, {rep.checkpoints} checkpoints verified"
                   + (f", consistent with the checkpoint of size {rep.remembered} seen before"
                      if rep.remembered is not None else ""))
        if rep.ok:
            click.echo("no errors were found")
    if not rep.ok:
        raise IntegrityError(f"{len(rep.errors)} error(s) in the audit log:\n  " + "\n  ".join(rep.errors[:100]))


@command(audit, "checkpoint")
@click.option("--public-key", "show_key", is_flag=True, help="print the log's public key instead")
def audit_checkpoint(ctx, repo, show_key):
    """Print the latest signed checkpoint (keep a copy outside the repository)."""
    import sys

    r = open_repo(ctx)
    if show_key:
        click.echo(r.audit.vkey())
        return
    note = r.audit.latest_checkpoint()
    if note is None:
        raise IntegrityError("the audit log has no checkpoint")
    from ..audit import checkpoint as cpfmt

    try:
        cpfmt.verify(note, r.audit.origin, r.audit.public)
    except cpfmt.CheckpointError as e:
        raise IntegrityError(f"the latest checkpoint does not verify: {e}") from None
    sys.stdout.write(note.decode())
