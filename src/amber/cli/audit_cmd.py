"""`amber audit log|verify|checkpoint`: the audit log as a user reads it."""

import sys

import click

from ..errors import IntegrityError
from .options import command, group, json_option
from .output import Output, warn


def _event_line(ev: dict) -> str:
    snap = f" {ev['snapshot'][:8]}" if ev.get("snapshot") else ""
    d = ev.get("details") or {}
    extra = ""
    if ev["type"] == "lock":
        extra = f" {d.get('mode')} until {d.get('until')}" + (
            " (bypassed governance)" if d.get("bypass_governance") else ""
        )
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
    return f"{ev['seq']:>6}  {ev['time']}  {ev['type']:<10}{snap}{extra}  [{actor.get('user')}@{actor.get('host')}]"


@command("log")
@json_option
def audit_log(session, as_json):
    """Every event, oldest first."""
    events = [ev for ev, _raw in session.open().audit.entries()]
    return Output(events, [_event_line(ev) for ev in events])


@command("verify")
@click.option(
    "--checkpoint",
    "checkpoint_file",
    type=click.Path(dir_okay=False, exists=True),
    help="also check consistency with a checkpoint kept outside the repository",
)
@json_option
def audit_verify(session, checkpoint_file, as_json):
    """Recompute the log, check every checkpoint and every event's link to the repository,
    and its consistency with the last checkpoint this client saw."""
    r = session.open()
    external = None
    if checkpoint_file:
        with open(checkpoint_file, "rb") as f:
            external = f.read(1 << 16)
    rep = r.verify_audit_log(external)

    def text():
        for w in rep.warnings:
            warn(w)
        click.echo(
            f"audit log: {rep.size} events, root {rep.root.hex()}, {rep.checkpoints} checkpoints verified"
            + (
                f", consistent with the checkpoint of size {rep.remembered} seen before"
                if rep.remembered is not None
                else ""
            )
        )
        if rep.ok:
            click.echo("no errors were found")

    failed = None
    if not rep.ok:
        failed = IntegrityError(f"{len(rep.errors)} error(s) in the audit log:\n  " + "\n  ".join(rep.errors[:100]))
    return Output(
        {
            "ok": rep.ok,
            "size": rep.size,
            "root": rep.root.hex(),
            "checkpoints": rep.checkpoints,
            "remembered_size": rep.remembered,
            "errors": rep.errors,
            "warnings": rep.warnings,
        },
        text,
        failed,
    )


@command("checkpoint")
@click.option("--public-key", "show_key", is_flag=True, help="print the log's public key instead")
def audit_checkpoint(session, show_key):
    """Print the latest signed checkpoint (keep a copy outside the repository)."""
    r = session.open()
    if show_key:
        return Output(text=r.audit.vkey())
    note = r.latest_checkpoint()
    sys.stdout.write(note.decode())


audit = group(
    "audit",
    "The tamper-evident audit log: list, verify, print the signed checkpoint.",
    [audit_log, audit_verify, audit_checkpoint],
)
