"""An amber user whose repository is `rest:https://127.0.0.1:PORT/NAME` on a test server."""

from __future__ import annotations

import os
import sys
from pathlib import Path

_CLI_TESTS = str(Path(__file__).resolve().parent.parent / "cli")
if _CLI_TESTS not in sys.path:
    sys.path.insert(0, _CLI_TESTS)

from cli_helpers import Amber  # noqa: E402


class RestAmber(Amber):
    """One user of amber on a `rest:` repository, with a token of some role."""

    def __init__(self, base: Path, server, name: str, token: str, **kw) -> None:
        super().__init__(base, **kw)
        self.server = server
        self.name = name
        self.token = token
        self.url = server.url(name)

    def env(self, **overrides) -> dict:
        rest = {
            "AMBER_REPOSITORY": self.url,
            "AMBER_TOKEN": self.token,
            "AMBER_CACERT": str(self.server.certs["ca"]),
            "LD_PRELOAD": None,
        }
        rest.update(overrides)
        return super().env(**rest)

    def objects(self, sub: str = "") -> list[str]:
        """Keys under `sub` as the server's folder holds them (what an operator sees)."""
        top = self.server.root / self.name
        out = []
        for folder, dirs, files in os.walk(top / sub if sub else top):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            out += [os.path.relpath(os.path.join(folder, f), top) for f in files if not f.startswith(".")]
        return sorted(out)
