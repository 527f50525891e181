"""What `amber serve token …` and `amber serve journal` do, on the server's own machine.

They work on the server root directly (no running server needed, none disturbed):
token changes are journaled and signed like every other change, and a running
server sees them at its next request.
"""

from __future__ import annotations

import datetime as _dt
import os
from typing import Any

from ..clock import SystemClock
from ..errors import NotFound
from .journal import Journal, verify_journal
from .key import ServerKey
from .state import ServerPaths
from .tokens import Token, TokenStore

LOCAL = "local"  # the remote address journaled for a change made on the server's machine


def _journal(paths: ServerPaths) -> Journal:
    return Journal(paths.journal, ServerKey.load_or_create(paths))


def add_token(root: str, repo: str, role: str, expires: _dt.datetime | None) -> tuple[Token, str]:
    """A new token for `repo` with `role`: its record and the token itself (shown once)."""
    paths = ServerPaths(root)
    paths.ensure()
    token, secret = TokenStore(paths).add(repo, role, expires, SystemClock().now())
    _journal(paths).append(
        "token-add", repo=repo, remote=LOCAL, token_id=token.id, token_role=role, expires=token.expires
    )
    return token, secret


def revoke_token(root: str, tid: str) -> Token:
    paths = ServerPaths(root)
    token = TokenStore(paths).revoke(tid, SystemClock().now())
    _journal(paths).append("token-revoke", repo=token.repo, remote=LOCAL, token_id=token.id, token_role=token.role)
    return token


def list_tokens(root: str) -> list[Token]:
    return TokenStore(ServerPaths(root)).list()


def journal_records(root: str, repo: str | None = None) -> tuple[list[dict[str, Any]], str]:
    """Every record (of `repo`) after verifying the whole journal, and the key that signed it;
    `IntegrityError` names the first bad record."""
    paths = ServerPaths(root)
    if not os.path.exists(paths.key):
        raise NotFound(f"{paths.root} holds no amber server state (no {paths.key})")
    journal = _journal(paths)
    return verify_journal(journal, repo), journal.key.public_text()
