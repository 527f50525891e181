"""`amber audit log|verify|checkpoint|foreign`: the audit log as a user reads it."""

import sys

import click

from ..errors import IntegrityError, UsageError
from ..repository import witness_target
from .options import command, group, json_option
from .output import Output, warn

OVERRIDES = (("trust_clock", "--trust-clock"), ("bypass_governance", "--bypass-governance"))


def _event_line(ev: dict) -> str:
    snap = f" {ev['snapshot'][:8]}" if ev.get("snapshot") else ""
    d = ev.get("details") or {}
    extra = ""
    if ev["type"] == "lock":
        extra = f" {d.get('mode')} until {d.get('until')}"
    elif ev["type"] in ("hold", "release") and d.get("reason"):
        extra = f" ({d['reason']})"
    elif ev["type"] == "check":
        extra = " ok" if d.get("ok") else f" {d.get('errors')} error(s)"
    elif ev["type"] == "prune":
        extra = f" {len(d.get('packs_deleted') or [])} packs, {d.get('bytes_freed', 0)} bytes"
    elif ev["type"] == "snapshot" and d.get("recovered"):
        extra = " (recorded late, after an interrupted backup)"
    elif ev["type"] == "foreign":
        extra = f" {len(d.get('objects') or [])} object(s) marked foreign ({d.get('reason')})"
    elif ev["type"] == "setting":
        default = d.get("default_retention") or {}
        extra = (
            f" version {d.get('version')}: default retention "
            f"{(default.get('duration') + ' ' + str(default.get('mode'))) if default else 'none'}, "
            f"minimum {d.get('min_retention') or 'none'}"
        )
        if isinstance(d.get("anomaly_thresholds"), dict):
            extra += ", anomaly thresholds " + ",".join(f"{k}={v}" for k, v in d["anomaly_thresholds"].items())
    elif ev["type"] in ("key-add", "key-remove", "key-revoke"):
        extra = f" {str(d.get('key'))[:10]}" + (
            f" (replaced by {str(d['replaced_by'])[:10]})" if d.get("replaced_by") else ""
        )
    elif ev["type"] == "anomaly":
        parent = str(d.get("parent"))[:8]
        extra = f" against {parent}" + (" (parent held)" if d.get("held") else " (parent not held)")
        extra += f": {len(d.get('reasons') or [])} threshold(s) crossed"
    elif ev["type"] == "tag":
        extra = "".join(f" +{t}" for t in _strings(d.get("add"))) + "".join(f" -{t}" for t in _strings(d.get("remove")))
    elif ev["type"] == "repair":
        extra = f" {d.get('what')}"
    elif ev["type"] == "witness":
        extra = f" {d.get('name')} {d.get('url')}"
    elif ev["type"] == "trust-reset":
        extra = f" {len(d.get('abandoned') or [])} witness checkpoint(s) abandoned ({d.get('reason')})"
    jump = d.get("clock_jump")
    if isinstance(jump, dict):
        extra += f" (made under a clock jump from {jump.get('from')} to {jump.get('to')})"
    flags = "".join(f" [{flag}]" for name, flag in OVERRIDES if _says(d, name))
    actor = ev.get("actor") or {}
    return (
        f"{ev['seq']:>6}  {ev['time']}  {ev['type']:<10}{snap}{extra}{flags}  [{actor.get('user')}@{actor.get('host')}]"
    )


def _strings(value) -> list[str]:
    """The strings of a list in an event's details (a malformed one shows as nothing)."""
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _says(details, name: str, depth: int = 0) -> bool:
    """Whether `name` is true anywhere in an event's details (an override may be recorded per
    snapshot inside a list): an override must never be shown only in --json."""
    if depth > 8:
        return False
    if isinstance(details, dict):
        if details.get(name) is True:
            return True
        details = list(details.values())
    if isinstance(details, list):
        return any(_says(v, name, depth + 1) for v in details)
    return False


@command("log")
@json_option
def audit_log(session, as_json):
    """Every event, oldest first."""
    log = session.open().audit
    events = [ev for ev, _raw in log.entries()]
    who = log.signed_by(events)  # format 2: which key signed each event
    return Output(events, [_event_line(ev) + (f"  {w}" if w else "") for ev, w in zip(events, who, strict=True)])


@command("verify")
@click.option(
    "--checkpoint",
    "checkpoint_file",
    type=click.Path(dir_okay=False, exists=True),
    help="also check consistency with a checkpoint kept outside the repository",
)
@click.option(
    "--full",
    is_flag=True,
    help="re-read every object of the log instead of verifying from the last checkpoint this client saw",
)
@json_option
def audit_verify(session, checkpoint_file, full, as_json):
    """Verify the log from the last checkpoint this client saw (a consistency proof and the new
    entries; with --full every object of the log), every event's link to the repository, and
    consistency with a checkpoint kept elsewhere."""
    r = session.open()
    external = None
    if checkpoint_file:
        with open(checkpoint_file, "rb") as f:
            external = f.read(1 << 16)
    rep = r.verify_audit_log(external, full=full)

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
        for w in rep.witnesses:
            state = {True: "consistent", False: "NOT consistent", None: "not reached"}[w["ok"]]
            click.echo(f"witness {w['name']}: newest checkpoint {w['size']} events, {state}")
        for t in rep.timestamps[-20:]:
            state = {True: "verified", False: "DOES NOT VERIFY", None: "not checked"}[t["ok"]]
            click.echo(f"timestamp {t['tsa']}: checkpoint of {t['size']} events at {t['gen_time']}, {state}")
        if len(rep.timestamps) > 20:
            click.echo(f"  ({len(rep.timestamps)} timestamps checked; --json lists every one)")
        if rep.ok:
            click.echo("no errors were found")

    failed = None
    if not rep.ok:
        hint = ""
        if any(f.marked_by is None for f in rep.foreign):
            hint = f"\n{FOREIGN_HINT}"
        failed = IntegrityError(
            f"{len(rep.errors)} error(s) in the audit log:\n  " + "\n  ".join(rep.errors[:100]) + hint
        )
    return Output(
        {
            "ok": rep.ok,
            "size": rep.size,
            "root": rep.root.hex(),
            "checkpoints": rep.checkpoints,
            "remembered_size": rep.remembered,
            "errors": rep.errors,
            "warnings": rep.warnings,
            "foreign": [f.to_json() for f in rep.foreign],
            "witnesses": rep.witnesses,
            "timestamps": rep.timestamps,
        },
        text,
        failed,
    )


FOREIGN_HINT = (
    "objects under log/ that amber did not write there: once examined, record them with "
    "`amber audit foreign KEY... --reason TEXT` (or --all)"
)


@command("foreign")
@click.argument("keys", nargs=-1)
@click.option("--all", "mark_all", is_flag=True, help="mark every foreign object not marked yet")
@click.option("--reason", help="why the objects are known to be harmless (recorded in the log)")
@json_option
def audit_foreign(session, keys, mark_all, reason, as_json):
    """List the objects under log/ that are not this log's entries or checkpoints; with KEY...
    or --all, record (an audited `foreign` event) that an admin examined them."""
    if keys and mark_all:
        raise UsageError("give object keys or --all, not both")
    r = session.open()
    if not keys and not mark_all:
        if reason is not None:
            raise UsageError("--reason goes with the keys to mark (or --all)")
        found = r.audit.foreign_objects()
        return Output([f.to_json() for f in found], [_foreign_line(f) for f in found] or ["no foreign objects"])
    if not (reason or "").strip():
        raise UsageError("give the reason with --reason TEXT: it is recorded in the audit log")
    events = r.audit.mark_foreign(keys or None, reason)
    marked = [o for ev in events for o in ev["details"]["objects"]]
    lines = [f"marked {o['key']} as foreign (event {ev['seq']})" for ev in events for o in ev["details"]["objects"]]
    return Output({"events": [ev["seq"] for ev in events], "marked": marked}, lines or ["nothing left to mark"])


def _foreign_line(f) -> str:
    state = f"marked by event {f.marked_by} ({f.reason})" if f.marked_by is not None else "not marked"
    digest = f.sha256[:16] if f.sha256 else "unreadable"
    return f"{f.key}  {f.size} bytes  sha256 {digest}  {state}: {f.problem}"


@command("checkpoint")
@click.option("--public-key", "show_key", is_flag=True, help="print the log's public key instead")
def audit_checkpoint(session, show_key):
    """Print the latest signed checkpoint (keep a copy outside the repository)."""
    r = session.open()
    if show_key:
        return Output(text=r.audit.vkey())
    note = r.latest_checkpoint()
    sys.stdout.write(note.decode())


@command("add")
@click.argument("name")
@click.option("--dir", "directory", metavar="PATH", help="a folder outside the repository (another disk, a mount)")
@click.option("--s3", metavar="BUCKET[/PREFIX]", help="an S3 bucket (its endpoint: --s3-endpoint or AMBER_S3_ENDPOINT)")
@click.option("--url", metavar="rest:https://HOST:PORT/NAME", help="an `amber serve` that cosigns each checkpoint")
@click.option(
    "--tsa", "tsa_url", metavar="URL", help="an RFC 3161 time-stamping authority that timestamps each checkpoint"
)
@click.option(
    "--tsa-cert",
    type=click.Path(dir_okay=False, exists=True),
    help="the TSA's certificate to pin, then its issuers up to the root (PEM; default: the ones it sends now, "
    "trusted on first use, when they reach a root)",
)
@click.option(
    "--server-key",
    envvar="AMBER_SERVER_KEY",
    metavar="ed25519:BASE64",
    help="the server's key to pin (default: the one it shows now, trusted on first use)",
)
@json_option
def witness_add(session, name, directory, s3, url, tsa_url, tsa_cert, server_key, as_json):
    """Record a witness: every new checkpoint of the audit log is kept there too (or, for a
    time-stamping authority, timestamped, the token kept in the repository)."""
    target = witness_target(directory, s3, url, tsa_url)
    pem = None
    if tsa_cert:
        with open(tsa_cert, "rb") as f:
            pem = f.read(1 << 20)
    r = session.open()
    ev = r.add_witness(name, target, server_key, session.s3_endpoint if s3 else None, pem)
    d = ev["details"]
    return Output(d, [f"witness {name} added (event {ev['seq']}): {d['url']}"])


@command("list")
@json_option
def witness_list(session, as_json):
    """The witnesses the audit log names and those this client remembers."""
    found = session.open().witness_list()
    return Output(found, [_witness_line(w) for w in found] or ["no witnesses"])


def _witness_line(w: dict) -> str:
    line = f"{w['name']}  {w['url']}"
    if w.get("server_key"):
        line += f"  key {w['server_key']}"
    if w.get("tsa_cert"):
        line += f"  certificate pinned ({w['tsa_cert'].count('BEGIN CERTIFICATE')} in its chain)"
    return line


witness = group(
    "witness", "Places outside the repository that keep every checkpoint of the audit log.", [witness_add, witness_list]
)


@command("trust")
@click.option("--reset", is_flag=True, required=True, help="accept the log as it is now (after a restore)")
@click.option("--reason", help="why (recorded in the audit log)")
@json_option
def audit_trust(session, reset, reason, as_json):
    """After restoring a repository from an older copy: record a `trust-reset` event naming
    the witness checkpoints it abandons, and make the witnesses accept the history from here."""
    if not (reason or "").strip():
        raise UsageError("give the reason with --reason TEXT: it is recorded in the audit log")
    ev, failed = session.open().reset_trust(reason)
    for f in failed:
        warn(f"{f} (run `amber audit trust --reset` again once it can be reached)")
    abandoned = ev["details"]["abandoned"]
    lines = [f"trust reset recorded (event {ev['seq']}): {len(abandoned)} witness checkpoint(s) abandoned"]
    lines += [f"  abandoned {a['witness']}: {a['object']}" for a in abandoned]
    return Output({"event": ev["seq"], "abandoned": abandoned, "failed": failed}, lines)


audit = group(
    "audit",
    "The tamper-evident audit log: list, verify, print the signed checkpoint, mark foreign objects, witnesses.",
    [audit_log, audit_verify, audit_checkpoint, audit_foreign, witness, audit_trust],
)
