"""Reading the metadata a stat does not give: extended attributes (POSIX ACLs among them)
and Linux inode flags, as the node fields of FORMAT.md §10.4.

Never through a symlink: attributes are read with follow_symlinks=False, flags
through a descriptor opened O_NOFOLLOW | O_NONBLOCK, for regular files and
folders only (opening a device or a FIFO may have effects). What cannot be
read is a warning naming the entry, never silent; the entry's content is
still backed up. Attributes beyond the bounds of format/nodemeta.py are left
out with a warning, and are not even read once the count is reached.
"""

from __future__ import annotations

import errno
import os

from ..format import nodemeta
from ..restore.fsmeta import OPEN_FLAGS, UNSUPPORTED, get_flags

# gone, or unreadable by this user: the walk or the content read reports the entry already
REPORTED_ELSEWHERE = {errno.ENOENT, errno.ENOTDIR, errno.EACCES, errno.ELOOP}


class MetadataReader:
    """Reads the extra metadata of walked entries; problems go to `warnings` as text."""

    def __init__(self, warnings: list) -> None:
        self.warnings = warnings
        self._no_flags: set[int] = set()  # devices whose file system has no inode flags

    def read(self, path: str, kind: str, st) -> dict:
        """The `xattrs` and `flags` fields for one entry (empty when it has none)."""
        out: dict = {}
        if kind in ("file", "dir"):
            flags = self.flags(path, st)
            if flags:
                out["flags"] = flags
        attrs = self.xattrs(path)
        if attrs:
            out["xattrs"] = nodemeta.encode_xattrs(attrs)
        return out

    def flags(self, path: str, st) -> int:
        """The recorded inode flags of a regular file or folder (0 where there are none)."""
        if st.st_dev in self._no_flags:
            return 0
        try:
            fd = os.open(path, OPEN_FLAGS)
        except OSError as e:
            if e.errno not in REPORTED_ELSEWHERE:
                self.warnings.append(f"{path}: cannot read file flags: {e.strerror or e}")
            return 0
        try:
            if os.fstat(fd).st_ino != st.st_ino:
                return 0  # replaced since the walk saw it: its content read reports the change
            return get_flags(fd) & nodemeta.RECORDED_FLAGS
        except OSError as e:
            if e.errno in UNSUPPORTED:
                self._no_flags.add(st.st_dev)
            else:
                self.warnings.append(f"{path}: cannot read file flags: {e.strerror or e}")
            return 0
        finally:
            os.close(fd)

    def xattrs(self, path: str) -> dict[str, bytes]:
        """The entry's extended attributes by name, within the bounds of nodemeta."""
        try:
            names = os.listxattr(path, follow_symlinks=False)
        except OSError as e:
            if e.errno not in UNSUPPORTED and e.errno not in REPORTED_ELSEWHERE:
                self.warnings.append(f"{path}: cannot list extended attributes: {e.strerror or e}")
            return {}
        if not names:
            return {}
        out: dict[str, bytes] = {}
        left_out: list[str] = []
        total = 0
        for name in sorted(names):
            raw = nodemeta.name_bytes(name)
            if raw is None or len(out) >= nodemeta.MAX_XATTRS:
                left_out.append(name)
                continue
            try:
                value = os.getxattr(path, name, follow_symlinks=False)
            except OSError as e:
                if e.errno != errno.ENODATA:  # ENODATA: removed since it was listed
                    self.warnings.append(f"{path}: cannot read extended attribute {name}: {e.strerror or e}")
                continue
            if len(value) > nodemeta.MAX_XATTR_VALUE or total + len(raw) + len(value) > nodemeta.MAX_XATTR_TOTAL:
                left_out.append(name)
                continue
            total += len(raw) + len(value)
            out[name] = value
        if left_out:
            self.warnings.append(
                f"{path}: {len(left_out)} extended attribute(s) left out (at most {nodemeta.MAX_XATTRS} "
                f"attributes and {nodemeta.MAX_XATTR_TOTAL >> 10} KiB per entry): {_names(left_out)}"
            )
        return out


def _names(names: list[str], most: int = 3) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")
