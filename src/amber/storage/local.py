"""A directory on a local filesystem.

Writes go to a temporary file in the target folder, are fsynced, then hard
linked into place: `link` fails if the name exists, so put-if-absent holds even
between processes. Stored files are made read-only. Names beginning with `.`
are amber's own (temporaries, lock records) and never listed.

Retention and legal holds live in write-once records under
`.locks/<key>/<seq>` (or under `records_root`, where a server keeps them out of
the repository's folder), each a small JSON document with the object's whole
protection state. Records are added with put-if-absent and never changed.
The state is the fold of all records in order, and the fold itself enforces
the rules, so a record written by hand cannot shorten a compliance period:
compliance keeps the latest `until` ever recorded, and governance is
shortened only by a record that says it bypassed governance.
"""

from __future__ import annotations

import datetime as _dt
import errno
import json
import os
import secrets
import stat

from ..clock import from_iso, to_iso
from ..errors import AlreadyExists, AmberError, NotFound, StorageError
from . import rules
from .base import GOVERNANCE, Capabilities, ObjectInfo, Retention, Storage

LOCKS = ".locks"


class LocalStorage(Storage):
    capabilities = Capabilities(object_lock=True, legal_hold=True, conditional_put=True)

    def __init__(self, root: str, *, create: bool = False, clock=None, records_root: str | None = None) -> None:
        self.root = os.path.abspath(os.path.expanduser(root))
        self.records_root = records_root or os.path.join(self.root, LOCKS)
        if clock is not None:
            self.clock = clock
        if create:
            os.makedirs(self.root, exist_ok=True)

    def _path(self, key: str) -> str:
        return os.path.join(self.root, rules.check_key(key).replace("/", os.sep))

    def path(self, key: str) -> str:
        """The file that holds `key` (a server streams it from there)."""
        return self._path(key)

    def put(self, key, data, *, retention=None):
        if os.path.lexists(self._path(key)):
            raise AlreadyExists(key)
        folder = os.path.dirname(self._path(key))
        try:
            os.makedirs(folder, exist_ok=True)
            tmp = os.path.join(folder, f".tmp-{os.getpid()}-{secrets.token_hex(6)}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        except OSError as e:
            raise _storage_error(e, key) from None
        try:
            try:
                view = memoryview(data)
                while view:
                    n = os.write(fd, view)
                    view = view[n:]
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as e:
            _unlink_quietly(tmp)
            raise _storage_error(e, key) from None
        self.put_file(key, tmp, retention=retention)

    def put_file(self, key: str, tmp: str, *, retention: Retention | None = None) -> None:
        """Store the complete, fsynced file `tmp` under `key` unless the key exists, then remove
        `tmp` either way. `tmp` must be on the repository's filesystem (a hard link is made):
        `link` fails if the name exists, so put-if-absent holds between processes, and a reader
        never sees a partial object."""
        path = self._path(key)
        folder = os.path.dirname(path)
        try:
            try:
                os.makedirs(folder, exist_ok=True)
                os.chmod(tmp, 0o444)
                os.link(tmp, path)
            except FileExistsError:
                raise AlreadyExists(key) from None
            finally:
                _unlink_quietly(tmp)
            _fsync_dir(folder)
            if retention is not None:
                # only the writer that created the object sets its first retention; a crash in
                # between leaves an object no snapshot references yet (the snapshot is written last)
                self._add_record(key, {"retention": {"mode": retention.mode, "until": to_iso(retention.until)}})
        except OSError as e:
            raise _storage_error(e, key) from None

    def put_over(self, key: str, data: bytes) -> None:
        """Replace an object's bytes atomically, keeping its retention and hold records: only for
        putting back content the repository pins elsewhere (the config its init event pins) over
        bytes written behind amber's back. Never a way to change what amber wrote."""
        path = self._path(key)
        tmp = os.path.join(os.path.dirname(path), f".tmp-{os.getpid()}-{secrets.token_hex(6)}")
        try:
            with open(tmp, "xb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o444)
            os.replace(tmp, path)
            _fsync_dir(os.path.dirname(path))
        except OSError as e:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise _storage_error(e, key) from None

    def get(self, key, offset=0, length=None):
        path = self._path(key)
        try:
            fd = os.open(path, os.O_RDONLY)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(key) from None
        except OSError as e:
            raise _storage_error(e, key) from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise NotFound(key)
            if length is None:
                length = st.st_size - offset
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
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(key) from None
        if not stat.S_ISREG(st.st_mode):
            raise NotFound(key)
        retention, hold = self._protection(key)
        return ObjectInfo(key, st.st_size, retention, hold, _mtime(st))

    # -- retention and legal hold ------------------------------------------------

    def _records_dir(self, key: str) -> str:
        return os.path.join(self.records_root, *rules.check_key(key).split("/"))

    def _records(self, key: str) -> list[dict]:
        folder = self._records_dir(key)
        try:
            names = sorted((n for n in os.listdir(folder) if n.isdigit()), key=int)
        except (FileNotFoundError, NotADirectoryError):
            return []
        out = []
        for n in names:
            try:
                with open(os.path.join(folder, n), "rb") as f:
                    rec = json.loads(f.read(65536))
                if isinstance(rec, dict):
                    out.append(rec)
            except (OSError, ValueError):
                continue  # an unreadable record adds no protection and removes none
        return out

    def _protection(self, key: str) -> tuple[Retention | None, bool]:
        """Fold the records: compliance only grows, governance shrinks only by bypass."""
        retention: Retention | None = None
        hold = False
        for rec in self._records(key):
            if "legal_hold" in rec:
                hold = bool(rec["legal_hold"])
            r = rec.get("retention")
            if not isinstance(r, dict):
                continue
            try:
                new = Retention(r["mode"], from_iso(r["until"]))
            except (KeyError, ValueError, TypeError, AmberError):
                continue
            retention = rules.fold_retention(retention, new, bool(rec.get("bypass_governance")))
        return retention, hold

    def _add_record(self, key: str, rec: dict) -> None:
        folder = self._records_dir(key)
        rec = dict(rec, time=to_iso(self.clock.now()))
        raw = json.dumps(rec, sort_keys=True).encode()
        os.makedirs(folder, exist_ok=True)
        for _ in range(100):
            existing = [int(n) for n in os.listdir(folder) if n.isdigit()]
            seq = max(existing, default=0) + 1
            tmp = os.path.join(folder, f".tmp-{os.getpid()}-{secrets.token_hex(6)}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
            try:
                os.write(fd, raw)
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(tmp, os.path.join(folder, f"{seq:08d}"))
                return
            except FileExistsError:
                continue  # another writer took this number: read again, retry
            finally:
                os.unlink(tmp)
        raise StorageError(f"{key}: could not add a lock record (too much contention)")

    def set_retention(self, key, retention, *, bypass_governance=False):
        info = self.stat(key)
        rules.check_retention_change(key, info.retention, retention, self.clock.now(), bypass_governance)
        rec = {"retention": {"mode": retention.mode, "until": to_iso(retention.until)}}
        if bypass_governance and info.retention is not None and info.retention.mode == GOVERNANCE:
            rec["bypass_governance"] = True
        try:
            self._add_record(key, rec)
        except OSError as e:
            raise _storage_error(e, key) from None

    def set_legal_hold(self, key, on):
        self.stat(key)
        try:
            self._add_record(key, {"legal_hold": bool(on)})
        except OSError as e:
            raise _storage_error(e, key) from None

    def list(self, prefix=""):
        base = rules.check_prefix(prefix)[:-1] if prefix else ""
        start = self._path(base) if base else self.root
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
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # deleted since the folder was read: it is no longer listed
                yield ObjectInfo(key, st.st_size, modified=_mtime(st))

    def delete(self, key, *, bypass_governance=False):
        info = self.stat(key)
        rules.check_delete(info, self.clock.now(), bypass_governance)
        try:
            os.unlink(self._path(key))
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(key) from None
        except OSError as e:
            raise _storage_error(e, key) from None
        folder = self._records_dir(key)
        if os.path.isdir(folder):  # the object is gone: its expired records go with it
            for n in os.listdir(folder):
                try:
                    os.unlink(os.path.join(folder, n))
                except OSError:
                    pass
            try:
                os.rmdir(folder)
            except OSError:
                pass

    def describe(self):
        return f"local:{self.root}"


def _mtime(st) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(st.st_mtime, _dt.UTC)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


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
