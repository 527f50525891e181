"""`amber key list|add|remove|passwd`: the password-protected key files."""

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
            f"{'*' if k['current'] else ' '} {k['id'][:10]}  {k.get('role', 'full'):<6}  {k.get('created', '?')}  "
            f"{k.get('user', '?')}@{k.get('host', '?')}"
            + (f"  revoked {k['revoked']}" if k.get("revoked") else "")
            + (f"  invalid: {k['error']}" if k.get("error") else "")
            for k in keys
        ],
    )


@command("add")
@click.option("--new-password-file", type=click.Path(dir_okay=False), help="read the new password from a file")
@click.option(
    "--role",
    type=click.Choice(["full", "backup"]),
    default="full",
    show_default=True,
    help="backup: a write-only key that adds snapshots but reads nothing back",
)
def key_add(session, new_password_file, role):
    """Add a new password (prompts, or AMBER_NEW_PASSWORD / --new-password-file)."""
    r = session.open()
    kid = r.add_key(new_password(new_password_file), role=role)
    return Output(text=f"added {role} key {kid[:10]}")


@command("remove")
@click.argument("key_id")
def key_remove(session, key_id):
    """Revoke and remove a key file (not the one in use; `key passwd` replaces that one).
    A locked key file stays until its lock ends, revoked."""
    r = session.open()
    kid = r.remove_key(key_id)
    if kid in r.key_ring.ids():
        return Output(text=f"revoked key {kid[:10]}; its file stays until its lock ends")
    return Output(text=f"revoked and removed key {kid[:10]}")


@command("passwd")
@click.option("--new-password-file", type=click.Path(dir_okay=False), help="read the new password from a file")
def key_passwd(session, new_password_file):
    """Change the password in use: a new key file for the same keys, the old one revoked
    (prompts, or AMBER_NEW_PASSWORD / --new-password-file)."""
    r = session.open()
    old = r.key_id
    kid = r.change_password(new_password(new_password_file))
    return Output(text=f"added key {kid[:10]}; revoked key {old[:10]}")


key = group(
    "key",
    "List, add, remove and change the passwords that open the repository.",
    [key_list, key_add, key_remove, key_passwd],
)
