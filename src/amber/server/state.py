"""Where the server keeps what is its own, beside the repositories under DIR.

    DIR/NAME/...                 one repository's objects, as the local backend keeps them
    DIR/NAME/.incoming/          uploads still being received (never listed, removed at start)
    DIR/.amber-server/key        the server's Ed25519 private key (0600)
    DIR/.amber-server/key.pub    its public key, as text
    DIR/.amber-server/tokens.json  token ids, repositories, roles and hashes (never a token)
    DIR/.amber-server/journal.jsonl  the signed, hash-chained journal of every change
    DIR/.amber-server/locks/NAME/<key>/<seq>  lock and hold records, out of every client's reach

Nothing under a name starting with "." is addressable by a client: repository
names and keys never start with one.
"""

from __future__ import annotations

import os
import re

from ..errors import UsageError

STATE = ".amber-server"
INCOMING = ".incoming"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def check_repo_name(name: str) -> str:
    """A repository name: one path segment of letters, digits, `_` and `-`, at most 64 long."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise UsageError(f"invalid repository name {name!r}: letters, digits, '_' and '-', at most 64")
    return name


class ServerPaths:
    """The paths of one server root (`amber serve --root DIR`)."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(os.path.expanduser(root))
        self.state = os.path.join(self.root, STATE)

    def ensure(self) -> None:
        """Create the root and the state folder (0700) if they are missing."""
        os.makedirs(self.root, exist_ok=True)
        os.makedirs(self.state, mode=0o700, exist_ok=True)
        os.makedirs(self.locks_root, mode=0o700, exist_ok=True)

    @property
    def key(self) -> str:
        return os.path.join(self.state, "key")

    @property
    def public_key(self) -> str:
        return os.path.join(self.state, "key.pub")

    @property
    def tokens(self) -> str:
        return os.path.join(self.state, "tokens.json")

    @property
    def journal(self) -> str:
        return os.path.join(self.state, "journal.jsonl")

    @property
    def locks_root(self) -> str:
        return os.path.join(self.state, "locks")

    def repo(self, name: str) -> str:
        return os.path.join(self.root, check_repo_name(name))

    def repo_locks(self, name: str) -> str:
        return os.path.join(self.locks_root, check_repo_name(name))

    def incoming(self, name: str) -> str:
        return os.path.join(self.repo(name), INCOMING)
