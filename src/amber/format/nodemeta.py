"""Extended attributes and file flags in tree nodes (FORMAT.md §10.4): encoding and bounds.

Pure: no I/O. A node carries `xattrs` ({name: base64 value}, POSIX ACLs among
them as `system.posix_acl_access` / `system.posix_acl_default`) and `flags`
(the Linux inode flags of FS_IOC_GETFLAGS that `chattr` sets) only when it
has some. The bounds below are what a reader accepts from a tree and what a
backup stores of one file; anything beyond them is refused on read and
warned about and left out on backup, so a hostile tree or snapshot can never
make a reader hold more than MAX_XATTR_TOTAL per node.
"""

from __future__ import annotations

import base64
import binascii

MAX_XATTR_NAME = 255  # bytes: Linux's XATTR_NAME_MAX
MAX_XATTR_VALUE = 64 << 10  # bytes: Linux's XATTR_SIZE_MAX, the largest value it stores
MAX_XATTRS = 1024  # attributes of one entry
MAX_XATTR_TOTAL = 256 << 10  # bytes of names and values of one entry

# The inode flags recorded (lsattr letter, bit); others (extents, inline data,
# encrypted, verity, ...) describe how a file system stores the file and are not
# carried over. Immutable and append-only are set last on restore.
FLAGS = {
    "s": 0x00000001,  # secure deletion
    "u": 0x00000002,  # undeletable
    "c": 0x00000004,  # compressed
    "S": 0x00000008,  # synchronous updates
    "i": 0x00000010,  # immutable
    "a": 0x00000020,  # append only
    "d": 0x00000040,  # no dump
    "A": 0x00000080,  # no atime updates
    "m": 0x00000400,  # do not compress
    "j": 0x00004000,  # data journalling
    "t": 0x00008000,  # no tail merging
    "D": 0x00010000,  # synchronous directory updates
    "T": 0x00020000,  # top of directory hierarchy
    "C": 0x00800000,  # no copy on write
    "P": 0x20000000,  # project hierarchy
}
RECORDED_FLAGS = sum(FLAGS.values())
IMMUTABLE = FLAGS["i"]
APPEND = FLAGS["a"]
NODUMP = FLAGS["d"]


def letters(flags: int) -> str:
    """`flags` as lsattr's letters, in the order of FLAGS (for messages and listings)."""
    return "".join(ch for ch, bit in FLAGS.items() if flags & bit)


def encode_xattrs(attrs: dict[str, bytes]) -> dict[str, str]:
    """The node field for a file's attributes (names as os.listxattr gives them)."""
    return {name: base64.b64encode(value).decode("ascii") for name, value in attrs.items()}


def decode_xattrs(field: dict[str, str]) -> dict[str, bytes]:
    """The attributes of a node whose `xattrs` passed `xattrs_problem`."""
    return {name: base64.b64decode(value) for name, value in field.items()}


def name_bytes(name: str) -> bytes | None:
    """An attribute name as the file system spells it (surrogateescape), None if it cannot be one."""
    try:
        raw = name.encode("utf-8", "surrogateescape")
    except UnicodeError:
        return None
    if not raw or len(raw) > MAX_XATTR_NAME or b"\x00" in raw or raw.decode("utf-8", "surrogateescape") != name:
        return None
    return raw


def xattrs_problem(field: object) -> str | None:
    """What is wrong with a node's `xattrs` (None if nothing): an object of at most
    MAX_XATTRS names, each a valid name, each value canonical base64 of at most
    MAX_XATTR_VALUE bytes, names and values at most MAX_XATTR_TOTAL bytes in all."""
    if type(field) is not dict or not field:
        return "`xattrs` is not a non-empty object"
    if len(field) > MAX_XATTRS:
        return f"`xattrs` holds {len(field)} attributes, more than {MAX_XATTRS}"
    total = 0
    for name, value in field.items():
        raw = name_bytes(name)
        if raw is None:
            return f"`xattrs` has an invalid attribute name {_show(name)}"
        if type(value) is not str or len(value) > 4 * ((MAX_XATTR_VALUE + 2) // 3):
            return f"`xattrs` value of {_show(name)} is not base64 of at most {MAX_XATTR_VALUE} bytes"
        try:
            data = binascii.a2b_base64(value, strict_mode=True)
        except (binascii.Error, ValueError):
            return f"`xattrs` value of {_show(name)} is not base64"
        if base64.b64encode(data).decode("ascii") != value:
            return f"`xattrs` value of {_show(name)} is not canonical base64"
        if len(data) > MAX_XATTR_VALUE:
            return f"`xattrs` value of {_show(name)} is longer than {MAX_XATTR_VALUE} bytes"
        total += len(raw) + len(data)
    if total > MAX_XATTR_TOTAL:
        return f"`xattrs` hold {total} bytes, more than {MAX_XATTR_TOTAL}"
    return None


def flags_problem(field: object) -> str | None:
    """What is wrong with a node's `flags` (None if nothing): recorded bits only, not zero."""
    if type(field) is not int or field <= 0 or field & ~RECORDED_FLAGS:
        return f"`flags` is {_show(field)}, not a set of recorded inode flags"
    return None


def _show(v: object) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."
