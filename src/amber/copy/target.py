"""What a copy works on (`CopyRepo`: the source and the destination alike) and what it reports."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..crypto.keys import MasterKeys
from ..repo.snapshots import Snapshot
from ..repo.trees import Trees
from ..retention.prune import Pruned
from ..retention.state import Protection


class CopyRepo(Pruned, Protocol):
    """What a copy reads from (the source) and writes into (the destination)."""

    keys: MasterKeys
    trees: Trees
    config: dict
    settings: Any
    warn: Callable[[str], None]

    @property
    def id(self) -> str: ...

    def load_tree(self, tree_id: str) -> list[dict]: ...

    def protection(self, snap: Snapshot) -> Protection: ...

    def find_snapshot(self, ref: str) -> Snapshot: ...

    def copy_file(self, node: dict, out: Any, what: str) -> None: ...


@dataclass
class CopyReport:
    """What a copy did: snapshots copied (source id -> destination id), skipped (copied
    before: source id -> the earlier copy), refused (source id -> why), and what moved."""

    copied: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    rechunked: bool = False
    blobs_copied: int = 0
    bytes_copied: int = 0  # plaintext bytes of the blobs moved
    bytes_added: int = 0  # stored bytes the destination gained

    def to_json(self) -> dict:
        return {
            "copied": [{"source": s, "snapshot": d} for s, d in self.copied.items()],
            "skipped": [{"source": s, "snapshot": d} for s, d in self.skipped.items()],
            "refused": [{"source": s, "error": why} for s, why in self.refused.items()],
            "rechunked": self.rechunked,
            "blobs_copied": self.blobs_copied,
            "bytes_copied": self.bytes_copied,
            "bytes_added": self.bytes_added,
        }
