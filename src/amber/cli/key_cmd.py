import click

from .common import command, open_repo, password, print_json
from .main import cli


@cli.group("key")
def key():
    """List, add and remove the passwords that open the repository."""


@command(key, "list")
@click.option("--json", "as_json", is_flag=True)
def key_list(ctx, repo, as_json):
    """List key files."""
    r = open_repo(ctx)
    keys = r.list_keys()
    if as_json:
        print_json(keys)
        return
    for k in keys:
        mark = "*" if k["current"] else " "
        click.echo(f"{mark} {k['id'][:10]}  {k.get('created', '?')}  {k.get('user', '?')}@{k.get('host', '?')}")


@command(key, "add")
@click.option("--new-password-file", type=click.Path(dir_okay=False), help="read the new password from a file")
def key_add(ctx, repo, new_password_file):
    """Add a new password (prompts, or AMBER_NEW_PASSWORD / --new-password-file)."""
    import getpass
    import os
    import sys

    r = open_repo(ctx)
    if new_password_file:
        with open(new_password_file, encoding="utf-8") as f:
            new = f.read().rstrip("\r\n")
    elif os.environ.get("AMBER_NEW_PASSWORD") is not None:
        new = os.environ["AMBER_NEW_PASSWORD"]
    elif sys.stdin.isatty():
        new = getpass.getpass("enter new password: ")
        if getpass.getpass("enter new password again: ") != new:
            raise click.UsageError("the passwords do not match")
    else:
        raise click.UsageError("give the new password with AMBER_NEW_PASSWORD or --new-password-file")
    kid = r.add_key(new)
    click.echo(f"added key {kid[:10]}")


@command(key, "remove")
@click.argument("key_id")
def key_remove(ctx, repo, key_id):
    """Remove a key file (not the one in use)."""
    r = open_repo(ctx)
    kid = r.remove_key(key_id)
    click.echo(f"removed key {kid[:10]}")


_ = password
