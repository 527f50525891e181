"""Ransomware signals: what a backup measured against its parent, and when that is an alarm.

Pure code: the archiver counts (backup/changes.py), this module names the
counts, holds the repository's thresholds (a versioned setting, FORMAT.md
§6.1) and decides. Encryption in place shows up as changed (or renamed)
files whose new content no longer compresses, often with a ransom note and
a new extension; ordinary work changes few files and keeps them
compressible. docs/ANOMALIES.md explains each signal and its limits.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

from ..errors import UsageError

# The defaults: a share is a fraction from 0 to 1, and 0 turns a signal's alarm off.
DEFAULT_THRESHOLDS: dict[str, float] = {
    "min_files": 20,  # a share-based signal counts only with at least this many files behind it
    "changed": 0.75,  # share of the parent's files whose content changed
    "deleted": 0.5,  # share of the parent's files gone
    "added": 0,  # share of this backup's files that are new (off: copying data in is ordinary)
    "renamed": 0.1,  # share of the parent's files renamed to an extension the parent never had
    "collapsed": 0.5,  # share of the changed bytes whose compressibility collapsed
    "ransom_notes": 1,  # new files named like ransom notes
}
SHARES = ("changed", "deleted", "added", "renamed", "collapsed")
COUNTS = ("min_files", "ransom_notes")
MAX_COUNT = 1_000_000_000

# A file's stored/raw ratio at or below COMPRESSIBLE compressed; at or above INCOMPRESSIBLE it
# did not (the sealed envelope's few dozen bytes included, so tiny files count as neither).
COMPRESSIBLE = 0.9
INCOMPRESSIBLE = 0.98

# Names ransomware families leave beside what they encrypted, matched case-insensitively
# against the base name of each new file (documented in docs/ANOMALIES.md).
RANSOM_NOTES = (
    "readme_to_decrypt*",
    "*decrypt*instruction*",
    "*how_to_decrypt*",
    "*how-to-decrypt*",
    "*how to decrypt*",
    "how_to_recover*",
    "how-to-recover*",
    "how_to_restore*",
    "restore_files*",
    "restore-my-files*",
    "recover-files*",
    "recover_files*",
    "decrypt_my_files*",
    "#decrypt_my_files#*",
    "help_decrypt*",
    "help_restore*",
    "help_your_files*",
    "_help_instructions*",  # Locky
    "_locky_recover_instructions*",
    "*-decrypt.txt",
    "_readme.txt",  # STOP/Djvu
    "!!!readme!!!*",
    "!readme!*",
    "read_me_now*",
    "your_files_are_encrypted*",
    "files_encrypted*",
    "ryukreadme*",
    "ransom_note*",
    "attention!!!*",
)


def is_ransom_note(name: str) -> bool:
    low = name.lower()
    return any(fnmatch.fnmatchcase(low, pat) for pat in RANSOM_NOTES)


def thresholds(stored: dict | None) -> dict[str, float]:
    """The thresholds in force: the defaults, overridden by the repository's setting."""
    out = dict(DEFAULT_THRESHOLDS)
    out.update(stored or {})
    return out


def parse_thresholds(text: str, current: dict | None = None) -> dict[str, float]:
    """'changed=0.6,min-files=50' over `current` (else the defaults); UsageError if malformed."""
    out = thresholds(current)
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, eq, value = part.partition("=")
        name = name.strip().replace("-", "_")
        if not eq or name not in DEFAULT_THRESHOLDS:
            raise UsageError(
                f"anomaly threshold {part!r}: give NAME=VALUE with NAME one of "
                + ", ".join(n.replace("_", "-") for n in DEFAULT_THRESHOLDS)
            )
        out[name] = _value(name, value.strip())
    return out


def _value(name: str, text: str) -> float:
    try:
        if name in COUNTS:
            v = int(text)
            if not 0 <= v <= MAX_COUNT:
                raise ValueError
            return v
        share = float(text[:-1]) / 100 if text.endswith("%") else float(text)
        if not 0 <= share <= 1:
            raise ValueError
        return round(share, 6)
    except ValueError:
        kind = "a whole number" if name in COUNTS else "a share from 0 to 1 (or a percentage)"
        raise UsageError(f"anomaly threshold {name}={text!r}: not {kind}") from None


@dataclass
class Measured:
    """The counts behind the signals, gathered by the archiver (backup/changes.py)."""

    files_parent: int = 0
    files: int = 0
    changed: int = 0  # content differs from the parent's file at the same path
    deleted: int = 0
    added: int = 0
    renamed: int = 0  # deleted files whose stem reappeared, in the same folder, with another extension
    renamed_to: dict = field(default_factory=dict)  # new extension -> renames to it
    bytes_changed: int = 0  # new bytes stored for changed and renamed files
    bytes_collapsed: int = 0  # ... of those whose old version compressed and the new one did not
    files_collapsed: int = 0
    ransom_notes: list = field(default_factory=list)  # paths
    parent_extensions: set = field(default_factory=set)
    unmeasured: list = field(default_factory=list)  # what could not be measured, and why


@dataclass(frozen=True)
class Anomalies:
    parent: str
    signals: dict
    reasons: list
    unmeasured: list
    held: str | None = None

    @property
    def alarm(self) -> bool:
        return bool(self.reasons)

    def to_json(self) -> dict:
        return {
            "alarm": self.alarm,
            "parent": self.parent,
            "signals": self.signals,
            "reasons": self.reasons,
            "held": self.held,
            "unmeasured": self.unmeasured,
        }


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def signals(m: Measured) -> dict:
    """The measured signals, by name (numbers only: the `anomaly` event's contract)."""
    new_ext = sum(n for ext, n in m.renamed_to.items() if ext not in m.parent_extensions)
    return {
        "files_parent": m.files_parent,
        "files": m.files,
        "files_changed": m.changed,
        "files_deleted": m.deleted,
        "files_added": m.added,
        "files_renamed": new_ext,
        "changed": _share(m.changed, m.files_parent),
        "deleted": _share(m.deleted, m.files_parent),
        "added": _share(m.added, m.files),
        "renamed": _share(new_ext, m.files_parent),
        "bytes_changed": m.bytes_changed,
        "bytes_collapsed": m.bytes_collapsed,
        "files_collapsed": m.files_collapsed,
        "collapsed": _share(m.bytes_collapsed, m.bytes_changed),
        "ransom_notes": len(m.ransom_notes),
    }


def evaluate(parent: str, m: Measured, limits: dict) -> Anomalies:
    """The signals of one backup and a reason for each threshold crossed."""
    s = signals(m)
    t = thresholds(limits)
    top = max(m.renamed_to.items(), key=lambda kv: kv[1])[0] if m.renamed_to else ""
    behind = {
        "changed": (s["files_changed"], "of the files changed content"),
        "deleted": (s["files_deleted"], "of the files were deleted"),
        "added": (s["files_added"], "of the files are new"),
        "renamed": (s["files_renamed"], f"of the files were renamed to new extensions (most to {top!r})"),
        "collapsed": (s["files_collapsed"], "of the changed bytes stopped compressing, as encrypted data does"),
    }
    reasons = [
        f"{s[name]:.0%} {what} ({files} files; threshold {t[name]:.0%})"
        for name, (files, what) in behind.items()
        if t[name] and s[name] >= t[name] and files >= t["min_files"]
    ]
    if t["ransom_notes"] and s["ransom_notes"] >= t["ransom_notes"]:
        shown = ", ".join(m.ransom_notes[:3]) + (" ..." if len(m.ransom_notes) > 3 else "")
        reasons.append(f"{s['ransom_notes']} new file(s) named like a ransom note: {shown}")
    return Anomalies(parent, s, reasons, list(m.unmeasured))
