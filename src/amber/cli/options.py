"""Decorators every command shares: the repository options, --json, error-free rendering.

A command module defines plain click commands with `command()`; cli/main.py
registers them all in one list. No command module imports main.
"""

from __future__ import annotations

import functools

import click

from ..repository import SnapshotFilter
from .common import Session
from .output import render

repo_option = click.option(
    "-r", "--repo", metavar="URL", help="repository (default: $AMBER_REPOSITORY, else the default local repository)"
)

s3_endpoint_option = click.option(
    "--s3-endpoint", metavar="URL", help="S3 endpoint for s3: repositories (default: $AMBER_S3_ENDPOINT)"
)

json_option = click.option("--json", "as_json", is_flag=True, help="print one JSON document to stdout")

password_command_option = click.option(
    "--password-command",
    metavar="CMD",
    help="a command whose first line of output is the password (default: $AMBER_PASSWORD_COMMAND)",
)

_FILTERS = (
    click.option(
        "--host", "-H", "filter_hosts", multiple=True, metavar="H", help="only snapshots of this host (repeatable)"
    ),
    click.option(
        "--path",
        "filter_paths",
        multiple=True,
        metavar="P",
        help="only snapshots including this path (repeatable: all)",
    ),
    click.option(
        "--tag",
        "filter_tags",
        multiple=True,
        metavar="T[,T...]",
        help="only snapshots with all these tags (repeatable: any of the lists)",
    ),
)


def split_tags(values) -> list[str]:
    """The tags of repeated, comma-separated --tag/--add/... values, in order, each once (as
    restic reads them: `--tag a,b` is two tags)."""
    return list(dict.fromkeys(t.strip() for v in values for t in v.split(",") if t.strip()))


def snapshot_filter(fn):
    """--host, --path and --tag, given to the command as one `chosen` SnapshotFilter (restic's
    semantics: they narrow what `latest` means, or the snapshots a listing shows)."""

    @functools.wraps(fn)
    def run(*args, filter_hosts=(), filter_paths=(), filter_tags=(), **params):
        return fn(*args, chosen=SnapshotFilter.of(filter_hosts, filter_paths, filter_tags), **params)

    for option in reversed(_FILTERS):
        run = option(run)
    return run


def command(name: str | None = None, **kw):
    """A command that takes --repo and --s3-endpoint too. The function gets a `Session`
    first, then its own parameters, and returns an `Output` (or None) to render."""

    def deco(fn):
        @functools.wraps(fn)
        def run(ctx: click.Context, repo=None, s3_endpoint=None, password_command=None, **params):
            session = Session(ctx)
            try:
                out = fn(session, **params)
            finally:
                session.close(ctx.command_path.partition(" ")[2] or ctx.info_name or "amber")
            render(out, params.get("as_json", False))

        return click.command(name, **kw)(
            click.pass_context(repo_option(s3_endpoint_option(password_command_option(run))))
        )

    return deco


def group(name: str, help: str, commands) -> click.Group:
    g = click.Group(name, help=help)
    for c in commands:
        g.add_command(c)
    return g
