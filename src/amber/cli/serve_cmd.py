"""`amber serve`: the repository server, its tokens and its journal (docs/SERVER.md)."""

from __future__ import annotations

import re

import click

from ..clock import duration_seconds, parse_date
from ..errors import UsageError
from .options import json_option
from .output import Output, render

root_option = click.option(
    "--root", metavar="DIR", required=True, type=click.Path(file_okay=False), help="the folder of the repositories"
)
_SIZE_RE = re.compile(r"^(\d+)\s*([KMGT]?)i?B?$", re.IGNORECASE)


def _size(text: str) -> int:
    m = _SIZE_RE.match(text.strip())
    if not m:
        raise click.BadParameter(f"{text!r}: a size such as 512M or 2G")
    return int(m.group(1)) * 1024 ** " KMGT".index(m.group(2).upper() or " ")


@click.group("serve", invoke_without_command=True)
@click.option("--root", metavar="DIR", type=click.Path(file_okay=False), help="the folder of the repositories")
@click.option("--listen", metavar="HOST:PORT", default="127.0.0.1:8443", show_default=True)
@click.option(
    "--tls-cert", metavar="FILE", type=click.Path(dir_okay=False, exists=True), help="certificate chain (PEM)"
)
@click.option("--tls-key", metavar="FILE", type=click.Path(dir_okay=False, exists=True), help="its private key (PEM)")
@click.option("--insecure-http", is_flag=True, help="plain HTTP on an address that is not loopback")
@click.option("--max-object-size", default="4G", show_default=True, help="the largest object accepted")
@click.option(
    "--io-timeout",
    type=click.FloatRange(min=0.1),
    default=60.0,
    show_default=True,
    help="seconds a client may stall while sending a body",
)
@click.option("--max-retention", default="10y", show_default=True, help="the longest lock a client may set")
@click.pass_context
def serve(ctx, root, listen, tls_cert, tls_key, insecure_http, max_object_size, io_timeout, max_retention):
    """Serve the repositories under --root to rest:https://HOST:PORT/NAME clients."""
    if ctx.invoked_subcommand is not None:
        return
    if not root:
        raise click.UsageError("amber serve needs --root DIR")
    from ..server.app import Limits
    from ..server.run import serve as run

    limits = Limits(_size(max_object_size), io_timeout, duration_seconds(max_retention))
    run(root, listen, tls_cert, tls_key, insecure_http, limits)


@serve.group("token")
def token():
    """Tokens of the server: add, list, revoke."""


@token.command("add")
@root_option
@click.option("--repo", "repo", metavar="NAME", required=True, help="the repository the token is for")
@click.option("--role", type=click.Choice(["backup", "auditor", "admin"]), required=True)
@click.option("--expires", metavar="DATE", help="the token stops working then (ISO 8601)")
@json_option
def token_add(root, repo, role, expires, as_json):
    """Make a token and print it once; only its hash is kept."""
    from ..server.admin import add_token

    until = parse_date(expires) if expires else None
    record, secret = add_token(root, repo, role, until)
    data = {"id": record.id, "token": secret, "role": record.role, "repo": record.repo, "expires": record.expires}
    render(Output(data, [secret, f"token {record.id}: {role} on {repo}; it is shown only this once"]), as_json)


@token.command("list")
@root_option
@json_option
def token_list(root, as_json):
    """Ids, repositories and roles of every token (never a token)."""
    from ..server.admin import list_tokens

    tokens = [t.public() for t in list_tokens(root)]
    lines = [
        f"{t['id']}  {t['repo']:<20} {t['role']:<8} created {t['created']}"
        + (f"  expires {t['expires']}" if t["expires"] else "")
        + (f"  REVOKED {t['revoked']}" if t["revoked"] else "")
        for t in tokens
    ]
    render(Output(tokens, lines or ["no tokens"]), as_json)


@token.command("revoke")
@root_option
@click.argument("token_id", metavar="ID")
@json_option
def token_revoke(root, token_id, as_json):
    """Revoke a token: a running server refuses it from its next request on."""
    from ..server.admin import revoke_token

    t = revoke_token(root, token_id).public()
    render(Output(t, [f"token {t['id']} ({t['role']} on {t['repo']}) revoked at {t['revoked']}"]), as_json)


@serve.command("journal")
@root_option
@click.option("--repo", "repo", metavar="NAME", help="only this repository's records")
@json_option
def journal(root, repo, as_json):
    """Print the server's journal after verifying its hash chain and signatures (exit 20 if not)."""
    from ..server.admin import journal_records

    if repo is not None and not repo:
        raise UsageError("--repo needs a name")
    records, key = journal_records(root, repo)

    def text():
        for r in records:
            who = f"{r.get('token', '-')}/{r.get('role', '-')}" if r.get("token") else r.get("remote", "-")
            click.echo(f"{r['seq']:>6} {r['time']} {r['op']:<17} {r.get('repo', '-'):<16} {who:<22} {r.get('key', '')}")
        click.echo(f"journal verified: {len(records)} record(s) shown, signed by {key}", err=True)

    render(Output({"server_key": key, "records": records}, text), as_json)
