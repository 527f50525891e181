"""`amber key list|add|remove`: the password-protected key files."""

import click

from .common import new_password
from .options import command, group, json_option
from .output import Output


@command("list")
@json_option
def key_list(session, as_json):
    """List key files."""
    keys = session.open().list_keys()
    return Output(
        keys,
        [
            f"{'*' if k['current'] else ' '} {k['id'][:10]}  {k.get('created', '?')}  "
            f"{k.get('user', '?')}@{k.get('host', '?')}"
            for k in keys
        ],
    )


@command("add")
@click.option("--new-password-file", type=click.Path(dir_okay=False), help="read the new password from a file")
def key_add(session, new_password_file):
    """Add a new password (prompts, or AMBER_NEW_PASSWORD / --new-password-file)."""
    r = session.open()
    kid = r.add_key(new_password(new_password_file))
    return Output(text=f"added key {kid[:10]}")


@command("remove")
@click.argument("key_id")
def key_remove(session, key_id):
    """Remove a key file (not the one in use)."""
    kid = session.open().remove_key(key_id)
    return Output(text=f"removed key {kid[:10]}")


key = group("key", "List, add and remove the passwords that open the repository.", [key_list, key_add, key_remove])
