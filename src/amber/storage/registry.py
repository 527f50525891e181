"""Backends by URL scheme: `/path` or `local:/path`, `memory:`."""
from __future__ import annotations

import os
from typing import Callable

from ..errors import UsageError
from .base import Storage

_OPENERS: dict[str, Callable[[str, bool], Storage]] = {}


def register(scheme: str, opener: Callable[[str, bool], Storage]) -> None:
    _OPENERS[scheme] = opener


def open_storage(url: str, *, create: bool = False) -> Storage:
    scheme, sep, rest = url.partition(":")
    if sep and scheme in _OPENERS and not (len(scheme) == 1 and os.name == "nt"):
        return _OPENERS[scheme](rest, create)
    if sep and scheme.isalpha() and len(scheme) > 1 and not url.startswith(("/", ".", "~")):
        raise UsageError(f"unknown repository scheme {scheme!r} in {url!r}")
    return _OPENERS["local"](url, create)


def _local(rest: str, create: bool) -> Storage:
    from .local import LocalStorage

    if not rest:
        raise UsageError("local: needs a path")
    return LocalStorage(rest, create=create)


_MEMORY: dict[str, Storage] = {}


def _memory(rest: str, create: bool) -> Storage:
    from .memory import MemoryStorage

    return _MEMORY.setdefault(rest, MemoryStorage())


def _s3(rest: str, create: bool) -> Storage:
    from .s3 import S3Storage

    bucket, _, prefix = rest.lstrip("/").partition("/")
    return S3Storage(bucket, prefix)


register("local", _local)
register("s3", _s3)
register("memory", _memory)
