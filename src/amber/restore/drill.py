"""Restore drills: prove a snapshot restores, and how long a full restore would take.

A drill restores a snapshot — whole, or a deterministic sample of its files — into a scratch
folder, verifies every restored byte against the SHA-256 the snapshot recorded, measures the
time and throughput, and extrapolates the time a full restore of the snapshot would take
(the recovery time objective, RTO) from the sample's throughput. The sample is the same for
the same snapshot and size: files are ordered by a keyed hash of their path, so a drill
repeated next month reads the same files and its figures compare.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import blake3

from ..errors import UsageError

_SAMPLE = re.compile(r"^(\d+)(%?)$")
SAMPLE_KEY = b"amber restore drill sample v1\x00"


@dataclass(frozen=True, slots=True)
class Sample:
    count: int | None = None  # files
    percent: int | None = None  # of the files

    @classmethod
    def parse(cls, text: str | None) -> "Sample":
        """`N` files or `P%` of them; None: the whole snapshot."""
        if text is None:
            return cls()
        m = _SAMPLE.match(text.strip())
        if not m or int(m.group(1)) < 1 or (m.group(2) and int(m.group(1)) > 100):
            raise UsageError(f"--sample {text!r}: give a number of files (e.g. 500) or a percentage (1% to 100%)")
        return cls(percent=int(m.group(1))) if m.group(2) else cls(count=int(m.group(1)))

    @property
    def whole(self) -> bool:
        return self.count is None and self.percent is None

    def size(self, files: int) -> int:
        if self.count is not None:
            return min(self.count, files)
        if self.percent is not None:
            return max(1, (files * self.percent + 99) // 100) if files else 0
        return files

    def describe(self) -> str:
        return "all files" if self.whole else f"{self.count} files" if self.count else f"{self.percent}% of the files"


def choose(files: list[tuple[str, int]], sample: Sample, snapshot_id: str) -> list[tuple[str, int]]:
    """The sampled (path, size) pairs: the first `sample.size` by BLAKE3(snapshot id, path)."""
    if sample.whole:
        return files
    key = blake3.blake3(SAMPLE_KEY + snapshot_id.encode()).digest()
    ranked = sorted(files, key=lambda f: blake3.blake3(f[0].encode("utf-8", "surrogateescape"), key=key).digest())
    return ranked[: sample.size(len(files))]


@dataclass
class DrillReport:
    snapshot: str
    sample: str
    files: int = 0  # restored
    bytes: int = 0  # restored
    total_files: int = 0  # in the snapshot
    total_bytes: int = 0
    verified: int = 0
    seconds: float = 0.0
    errors: list[str] | None = None
    target: str = ""
    kept: bool = False  # the restored files were left in --target

    @property
    def throughput(self) -> float:
        """Bytes per second of the drill's restore (files per second for empty files only)."""
        return self.bytes / self.seconds if self.seconds > 0 else 0.0

    @property
    def rto_seconds(self) -> float:
        """The full restore's time, extrapolated from this drill's throughput (by bytes, and by
        files where the sample holds no bytes)."""
        if self.files == 0 or self.seconds <= 0:
            return 0.0
        if self.bytes > 0:
            return self.total_bytes / self.throughput
        return self.seconds * self.total_files / self.files

    @property
    def ok(self) -> bool:
        return not self.errors and self.verified == self.files

    def to_json(self) -> dict:
        return {
            "snapshot_id": self.snapshot,
            "sample": self.sample,
            "files": self.files,
            "bytes": self.bytes,
            "total_files": self.total_files,
            "total_bytes": self.total_bytes,
            "verified": self.verified,
            "seconds": round(self.seconds, 3),
            "throughput_bytes_per_s": round(self.throughput),
            "rto_seconds": round(self.rto_seconds, 1),
            "ok": self.ok,
            "errors": self.errors or [],
            "target": self.target,
            "kept": self.kept,
        }


def timer() -> float:
    return time.monotonic()
