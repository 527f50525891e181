"""Backends by URL scheme: `/path` or `local:/path`, `memory:`, `s3:BUCKET/PREFIX`,
`rest:https://HOST:PORT/NAME`.

An opener gets the rest of the URL, whether to create the repository's
folder, and the options the caller passed (`s3_endpoint` for S3, `cacert` for rest). Backends
are imported when first opened, so a local repository never loads boto3.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from ..errors import UsageError
from .base import Storage

Opener = Callable[[str, bool, Mapping[str, str]], Storage]
_OPENERS: dict[str, Opener] = {}


def register(scheme: str, opener: Opener) -> None:
    _OPENERS[scheme] = opener


def open_storage(url: str, *, create: bool = False, options: Mapping[str, str] | None = None) -> Storage:
    scheme, sep, rest = url.partition(":")
    opts = dict(options or {})
    if sep and scheme in _OPENERS and not (len(scheme) == 1 and os.name == "nt"):
        return _OPENERS[scheme](rest, create, opts)
    if sep and scheme.isalpha() and len(scheme) > 1 and not url.startswith(("/", ".", "~")):
        raise UsageError(f"unknown repository scheme {scheme!r} in {url!r}")
    return _OPENERS["local"](url, create, opts)


def _local(rest: str, create: bool, options: Mapping[str, str]) -> Storage:
    from .local import LocalStorage

    if not rest:
        raise UsageError("local: needs a path")
    return LocalStorage(rest, create=create)


_MEMORY: dict[str, Storage] = {}


def _memory(rest: str, create: bool, options: Mapping[str, str]) -> Storage:
    from .memory import MemoryStorage

    return _MEMORY.setdefault(rest, MemoryStorage())


def _s3(rest: str, create: bool, options: Mapping[str, str]) -> Storage:
    from .s3 import S3Storage

    bucket, _, prefix = rest.lstrip("/").partition("/")
    return S3Storage(bucket, prefix, endpoint=options.get("s3_endpoint"))


def _rest(rest: str, create: bool, options: Mapping[str, str]) -> Storage:
    from .rest import RestStorage

    return RestStorage(rest, create=create, cacert=options.get("cacert"), token=options.get("token"))


register("local", _local)
register("s3", _s3)
register("memory", _memory)
register("rest", _rest)
