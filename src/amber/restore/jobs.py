"""What a restore keeps per file while it writes, and the figures it reports."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


@dataclass
class RestoreStats:
    files: int = 0
    files_done: int = 0
    dirs: int = 0
    bytes_total: int = 0
    bytes_written: int = 0
    errors: list = field(default_factory=list)
    warnings: list = field(default_factory=list)  # damage repaired on the way (parity)
    verified: int = 0
    current: str = ""
    started: float = field(default_factory=time.monotonic)


class FileJob:
    """One regular file being written: its blobs still to come, its descriptor, its state."""

    __slots__ = ("path", "node", "remaining", "fd", "tmp", "lock", "failed", "written")

    def __init__(self, path: str, node: dict, blobs: int) -> None:
        self.path = path
        self.node = node
        self.remaining = blobs
        self.fd: int | None = None
        self.tmp: str | None = None  # the temporary name it is written under
        self.lock = threading.Lock()
        self.failed = False
        self.written: tuple[int, int] | None = None  # (device, inode) once renamed into place
