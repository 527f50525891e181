"""`amber upgrade`: a repository of format 1 takes format 2 by adding objects only."""

from .options import command, json_option
from .output import Output


@command("upgrade")
@json_option
def upgrade(session, as_json):
    """Upgrade the repository to format 2, where file content, trees and snapshots are sealed to a
    content key only full keys hold, so `key add --role backup` can make write-only keys. Adds a
    key file for this password (the one used is revoked, replaced by it) and an `upgrade` event;
    data written before stays readable by every key."""
    r = session.open()
    out = r.upgrade()
    text = [f"upgraded to format 2; key {out['key'][:10]} replaces key {out['replaced'][:10]} for this password"]
    if out["other_keys"]:
        text.append(
            f"{len(out['other_keys'])} other key file(s) hold the keys of format 1: they read only data written "
            "before the upgrade; replace them (`key add`, then `key remove`)"
        )
    text.append("data written before the upgrade stays sealed under keys every key file holds, write-only ones too")
    return Output(out, text)
