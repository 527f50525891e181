"""What every command shares: repository and password selection, output, errors."""
from __future__ import annotations

import functools
import getpass
import json
import os
import sys

import click

from ..errors import AmberError, UsageError, exit_code_for


def default_repository() -> str:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "amber", "default")


def repo_url(ctx: click.Context) -> str:
    obj = ctx.find_root().obj or {}
    endpoint = ctx.params.get("s3_endpoint") or obj.get("s3_endpoint")
    if endpoint:
        os.environ["AMBER_S3_ENDPOINT"] = endpoint
    url = ctx.params.get("repo") or obj.get("repo") or os.environ.get("AMBER_REPOSITORY")
    if url:
        return url
    url = default_repository()
    if not obj.get("announced"):
        click.echo(f"using the default repository at {url}", err=True)
        obj["announced"] = True
    return url


def password(confirm: bool = False) -> str:
    pw = os.environ.get("AMBER_PASSWORD")
    if pw is not None:
        return pw
    path = os.environ.get("AMBER_PASSWORD_FILE")
    if path:
        try:
            with open(os.path.expanduser(path), encoding="utf-8") as f:
                return f.read().rstrip("\r\n")
        except OSError as e:
            raise AmberError(f"cannot read AMBER_PASSWORD_FILE {path}: {e.strerror}") from None
    if sys.stdin.isatty():
        pw = getpass.getpass("enter password for repository: ")
        if confirm and getpass.getpass("enter password again: ") != pw:
            raise UsageError("the passwords do not match")
        return pw
    raise AmberError("no password: set AMBER_PASSWORD or AMBER_PASSWORD_FILE, or run on a terminal")


def open_repo(ctx: click.Context):
    from ..repository import Repository

    repo = Repository.open(repo_url(ctx), password())
    repo.warn = lambda msg: click.echo(f"warning: {msg}", err=True)
    return repo


def print_json(obj) -> None:
    # ensure_ascii: names that are not UTF-8 travel as \udcXX escapes, as in trees
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=True, default=str))
    sys.stdout.write("\n")


def show_progress(json_mode: bool) -> bool:
    return not json_mode and sys.stderr.isatty()


repo_option = click.option("-r", "--repo", metavar="URL", help="repository (default: $AMBER_REPOSITORY, "
                           "else the default local repository)")


s3_endpoint_option = click.option("--s3-endpoint", metavar="URL",
                                  help="S3 endpoint for s3: repositories (default: $AMBER_S3_ENDPOINT)")


def command(group, name=None, **kw):
    """A subcommand that takes --repo too, with errors mapped to exit codes."""
    def deco(fn):
        @functools.wraps(fn)
        def wrapped(*a, **k):
            k.pop("s3_endpoint", None)  # read from ctx.params by repo_url
            return fn(*a, **k)
        wrapped = repo_option(s3_endpoint_option(wrapped))
        return group.command(name, **kw)(click.pass_context(wrapped))
    return deco


def fail(exc: BaseException) -> int:
    msg = str(exc) or type(exc).__name__
    click.echo(f"amber: {msg}", err=True)
    return exit_code_for(exc)
