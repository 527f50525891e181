"""A directory on a local filesystem.

Writes go to a temporary file in the target folder, are fsynced, then hard
linked into place: `link` fails if the name exists, so put-if-absent holds even
between processes. Stored files are made read-only. Names beginning with `.`
are amber's own (temporaries) and never listed.
"""
from __future__ import annotations

import errno
import os
import secrets

from ..errors import AlreadyExists, NotFound, StorageError
from .base import Capabilities, ObjectInfo, Storage, check_delete, check_key


class LocalStorage(Storage):
    capabilities = Capabilities(object_lock=False, legal_hold=False, conditional_put=True)

    def __init__(self, root: str, *, create: bool = False) -> None:
        self.root = os.path.abspath(os.path.expanduser(root))
        if create:
            os.makedirs(self.root, exist_ok=True)

    def _path(self, key: str) -> str:
        return os.path.join(self.root, *check_key(key).split("/"))

    def put(self, key, data, *, retention=None):
        if retention is not None:
            self.set_retention(key, retention)  # raises Unsupported until locks land here
        path = self._path(key)
        folder = os.path.dirname(path)
        if os.path.lexists(path):
            raise AlreadyExists(key)
        try:
            os.makedirs(folder, exist_ok=True)
            tmp = os.path.join(folder, f".tmp-{os.getpid()}-{secrets.token_hex(6)}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
            try:
                try:
                    view = memoryview(data)
                    while view:
                        n = os.write(fd, view)
                        view = view[n:]
                    os.fsync(fd)
                finally:
                    os.close(fd)
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    raise AlreadyExists(key) from None
            finally:
                try:
                    os.unlink(tmp)
                except FileNotFoundError:
                    pass
            _fsync_dir(folder)
        except OSError as e:
            raise _storage_error(e, key) from None

    def get(self, key, offset=0, length=None):
        path = self._path(key)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise NotFound(key) from None
        except OSError as e:
            raise _storage_error(e, key) from None
        try:
            if length is None:
                length = os.fstat(fd).st_size - offset
            out = os.pread(fd, length, offset) if length > 0 else b""
            while len(out) < length:  # pread may return short on some filesystems
                more = os.pread(fd, length - len(out), offset + len(out))
                if not more:
                    break
                out += more
            return out
        finally:
            os.close(fd)

    def stat(self, key):
        try:
            st = os.stat(self._path(key))
        except FileNotFoundError:
            raise NotFound(key) from None
        return ObjectInfo(key, st.st_size)

    def list(self, prefix=""):
        base = prefix.rstrip("/")
        start = self._path(base) if base else self.root
        if prefix and not prefix.endswith("/"):
            raise ValueError("list prefixes name a folder and end with '/'")
        stack = [(start, base)]
        while stack:
            folder, key_prefix = stack.pop()
            try:
                entries = list(os.scandir(folder))
            except (FileNotFoundError, NotADirectoryError):
                continue
            entries.sort(key=lambda e: e.name)
            for entry in reversed(entries):
                if entry.name.startswith("."):
                    continue
                key = f"{key_prefix}/{entry.name}" if key_prefix else entry.name
                if entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, key))
            for entry in entries:
                if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                    continue
                key = f"{key_prefix}/{entry.name}" if key_prefix else entry.name
                yield ObjectInfo(key, entry.stat(follow_symlinks=False).st_size)

    def delete(self, key, *, bypass_governance=False):
        info = self.stat(key)
        check_delete(info, self.clock.now(), bypass_governance)
        try:
            os.unlink(self._path(key))
        except FileNotFoundError:
            raise NotFound(key) from None
        except OSError as e:
            raise _storage_error(e, key) from None

    def describe(self):
        return f"local:{self.root}"


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _storage_error(e: OSError, key: str) -> StorageError:
    if e.errno == errno.ENOSPC:
        return StorageError(f"no space left on the repository's device while writing {key}")
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return StorageError(f"permission denied writing {key}: {e.strerror}")
    return StorageError(f"storage error on {key}: {e.strerror or e}")
