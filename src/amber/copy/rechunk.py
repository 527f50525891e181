"""A copy between repositories whose id keys differ: files read, cut and stored again."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable
from typing import Any

import pyfastcdc

from ..errors import IntegrityError
from ..format import tree as treefmt
from ..format.pack import BLOB_DATA, BLOB_TREE
from .mover import Mover
from .target import CopyRepo

READ_WHOLE = 8 << 20  # files up to this size are cut in one piece


class Rechunker:
    """A snapshot's trees built anew for a destination with other keys: every file read from
    the source (checked against its SHA-256), cut with the destination's chunker, stored."""

    def __init__(self, mover: Mover) -> None:
        self.mover = mover
        chunker = mover.dest.config["chunker"]
        self.min = chunker["min"]
        self.chunker = pyfastcdc.FastCDC(
            chunker["avg"], min_size=chunker["min"], max_size=chunker["max"], seed=mover.dest.keys.chunker_seed
        )

    def tree(self, root: str) -> tuple[str, str]:
        """(tree id, digest) of the rebuilt root tree; post-order on an explicit stack."""
        source = self.mover.source
        stack: list[tuple[list[dict], list[dict]]] = [(source.load_tree(root), [])]
        while True:
            nodes, out = stack[-1]
            if len(out) < len(nodes):
                node = nodes[len(out)]
                if node["type"] == "dir" and node.get("subtree"):
                    stack.append((source.load_tree(node["subtree"]), []))
                    continue
                out.append(self.file(node) if node["type"] == "file" else node)
                continue
            stack.pop()
            raw = treefmt.encode(out)
            tree_id, digest = self.mover.add(BLOB_TREE, raw), treefmt.digest(raw)
            if not stack:
                return tree_id, digest
            parent_nodes, parent_out = stack[-1]
            parent_out.append(dict(parent_nodes[len(parent_out)], subtree=tree_id, digest=digest))

    def file(self, node: dict) -> dict:
        """A file node whose content is stored again, cut with the destination's chunker."""
        content = node.get("content") or []
        if not content:
            return node
        sha = hashlib.sha256()
        stream = BlobStream(self.mover.source, content, sha)
        if node.get("size", 0) <= READ_WHOLE:
            data = stream.read_all()
            chunks: Iterable = (data,) if len(data) <= self.min else (c.data for c in self.chunker.cut_buf(data))
        else:
            chunks = (bytes(c.data) for c in self.chunker.cut_stream(stream))
        ids = [self.mover.add(BLOB_DATA, bytes(c)) for c in chunks]
        if sha.hexdigest() != node.get("sha256"):
            raise IntegrityError(f"file {node['name']!r}: its content does not match its SHA-256 in the source")
        return dict(node, content=ids)


class BlobStream(io.RawIOBase):
    """A file's content read blob by blob from the source (each verified), hashed as it goes."""

    def __init__(self, source: CopyRepo, content: list[str], sha: Any) -> None:
        self.source, self.ids, self.sha = source, list(content), sha
        self.buf, self.pos = memoryview(b""), 0

    def readable(self) -> bool:
        return True

    def blobs(self) -> Iterable[bytes]:
        """The content's blobs, one after the other (what `read_all` joins)."""
        for hid in self.ids:
            data = self.source.blobs.read(bytes.fromhex(hid))
            self.sha.update(data)
            yield data

    def read_all(self) -> bytes:
        return b"".join(self.blobs())

    def readinto(self, b: Any) -> int:
        if self.pos == len(self.buf):
            if not self.ids:
                return 0
            data = self.source.blobs.read(bytes.fromhex(self.ids.pop(0)))
            self.sha.update(data)
            self.buf, self.pos = memoryview(data), 0
        n = min(len(b), len(self.buf) - self.pos)
        b[:n] = self.buf[self.pos : self.pos + n]
        self.pos += n
        return n
