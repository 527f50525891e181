import os

import click

from ..errors import IntegrityError
from .common import command, open_repo, print_json
from .main import cli


@cli.group("evidence")
def evidence():
    """Export and verify evidence bundles that prove files came from a snapshot."""


@command(evidence, "export")
@click.argument("snapshot")
@click.argument("paths", nargs=-1, required=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="the bundle (.zip) to write")
def evidence_export(ctx, repo, snapshot, paths, output):
    """Write the files at PATHS of SNAPSHOT, with their proofs, to one zip file."""
    from ..evidence import export

    r = open_repo(ctx)
    snap = r.find_snapshot(snapshot)
    tmp = output + ".tmp"
    try:
        m = export(r, snap, list(paths), tmp)
        os.replace(tmp, output)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    click.echo(f"wrote {output}: {len(m['files'])} file(s) of snapshot {snap.short_id}, event "
               f"{m['log']['seq']} of a log of {m['log']['tree_size']}")
    click.echo(f"verify with: amber evidence verify {output} --public-key '{r.audit.vkey()}'")


@command(evidence, "verify")
@click.argument("bundle", type=click.Path(dir_okay=False, exists=True))
@click.option("--public-key", "public_key", metavar="KEY",
              help="the log's verifier key (or a file holding it), obtained independently of the bundle")
@click.option("--json", "as_json", is_flag=True)
def evidence_verify(ctx, repo, bundle, public_key, as_json):
    """Check a bundle offline: no repository and no password needed."""
    from ..evidence import verify_bundle

    if public_key and os.path.isfile(public_key):
        with open(public_key, encoding="utf-8") as f:
            public_key = f.read().strip()
    rep = verify_bundle(bundle, public_key)
    if as_json:
        print_json({"ok": rep.ok, "key_from_bundle": rep.key_from_bundle,
                    "checks": [{"ok": ok, "check": what} for ok, what in rep.checks],
                    "snapshot": rep.manifest.get("snapshot"), "files": [
                        {k: f.get(k) for k in ("path", "size", "sha256", "mode", "mtime_ns")}
                        for f in rep.manifest.get("files", []) if isinstance(f, dict)]})
    else:
        s = rep.manifest.get("snapshot") or {}
        if s:
            click.echo(f"snapshot {str(s.get('id'))[:8]} of {s.get('time')} on {s.get('hostname')}")
        for ok, what in rep.checks:
            click.echo(f"  {'ok  ' if ok else 'FAIL'}  {what}")
        if rep.key_from_bundle:
            click.echo("note: the public key was taken from the bundle itself; pass --public-key with a key "
                       "obtained independently for the proof to mean anything", err=True)
    if not rep.ok:
        raise IntegrityError("evidence does not verify:\n  " + "\n  ".join(rep.failures()))
    if not as_json:
        click.echo("evidence verified")
