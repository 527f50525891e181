"""The limits a bundle is held to, in one place (docs/EVIDENCE.md)."""

from __future__ import annotations

import re
import struct
import zipfile
import zlib

FORMAT = "amber-evidence-1"
MAX_MEMBERS = 100_000
MAX_MEMBER = 64 << 30  # a file: streamed and hashed, never held in memory
MAX_META = 64 << 20  # manifest.json, event.json, each tree: read into memory
MAX_KEY = 4 << 10  # public-key.txt
# Deflate cannot expand more than 1032 to 1; a member that claims more is a bomb or a lie.
MAX_RATIO = 1032
SMALL = 64 << 10  # below this, a member's ratio is not worth judging
METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
MAX_CHECKPOINT_TRIES = 1000  # stored checkpoints tried, newest first, by an export
FIXED_MEMBERS = ("manifest.json", "event.json", "checkpoint.txt", "public-key.txt")
COPY_MEMBER = "copy-event.json"  # a copied snapshot's `copy` event in the exporting log
FILE_MEMBER = re.compile(r"files/(?:0|[1-9][0-9]{0,5})")
TREE_MEMBER = re.compile(r"trees/[0-9a-f]{64}\.json")
TIMESTAMP_MEMBER = re.compile(r"timestamps/[A-Za-z0-9_-]{1,100}\.tsr")  # a TSA witness's token of checkpoint.txt
HEX64 = re.compile(r"[0-9a-f]{64}")
REPOSITORY_ID = re.compile(r"[0-9a-f]{32}")
MAX_PROOF = 64  # an inclusion proof in a tree of fewer than 2**64 leaves
MAX_TEXT = 64 << 10  # a host, user, tag or snapshot path
MAX_PATH = 1 << 20  # a file's path inside the snapshot
# What the stdlib's zip reader raises on hostile bytes: each means a damaged member or archive.
ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    OSError,
    EOFError,
    ValueError,
    RuntimeError,
    NotImplementedError,
    struct.error,
    zlib.error,
    IndexError,
    KeyError,
    OverflowError,
)
