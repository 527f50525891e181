"""libfuse 3's low-level API (fuse_lowlevel.h of libfuse 3.14), bound with ctypes.

Only what lowlevel.py uses: a session with its operations table, the replies, the
directory entries with attributes, and `fuse_lowlevel_notify_store`, which puts a
file's content into the kernel's page cache. The layouts follow the 3.14 headers
(struct fuse_lowlevel_ops is passed with its size, so libfuse ignores what it does
not know); `struct stat` and `struct statvfs` are mfusepy's, for this machine.
Nothing here needs a compiler or libfuse's headers: libfuse3.so.3 is enough.
"""

from __future__ import annotations

import ctypes
import ctypes.util

from mfusepy import c_stat, c_statvfs  # type: ignore[import-untyped]  # this platform's struct stat, statvfs

c_ino = ctypes.c_uint64  # fuse_ino_t
c_req = ctypes.c_void_p  # fuse_req_t
c_off = ctypes.c_int64

# fuse_common.h: capabilities asked at init
CAP_AUTO_INVAL_DATA = 1 << 12
CAP_READDIRPLUS = 1 << 13
CAP_READDIRPLUS_AUTO = 1 << 14
CAP_IOCTL_DIR = 1 << 11
CAP_CACHE_SYMLINKS = 1 << 23
BUF_NO_SPLICE = 1 << 1  # fuse_buf_copy_flags


class FuseArgs(ctypes.Structure):
    _fields_ = [("argc", ctypes.c_int), ("argv", ctypes.POINTER(ctypes.c_char_p)), ("allocated", ctypes.c_int)]


class EntryParam(ctypes.Structure):  # struct fuse_entry_param
    _fields_ = [
        ("ino", c_ino),
        ("generation", ctypes.c_uint64),
        ("attr", c_stat),
        ("attr_timeout", ctypes.c_double),
        ("entry_timeout", ctypes.c_double),
    ]


class Ctx(ctypes.Structure):  # struct fuse_ctx
    _fields_ = [("uid", ctypes.c_uint32), ("gid", ctypes.c_uint32), ("pid", ctypes.c_int32), ("umask", ctypes.c_uint32)]


class ForgetData(ctypes.Structure):  # struct fuse_forget_data
    _fields_ = [("ino", c_ino), ("nlookup", ctypes.c_uint64)]


class ConnInfo(ctypes.Structure):  # struct fuse_conn_info
    _fields_ = [
        ("proto_major", ctypes.c_uint),
        ("proto_minor", ctypes.c_uint),
        ("max_write", ctypes.c_uint),
        ("max_read", ctypes.c_uint),
        ("max_readahead", ctypes.c_uint),
        ("capable", ctypes.c_uint),
        ("want", ctypes.c_uint),
        ("max_background", ctypes.c_uint),
        ("congestion_threshold", ctypes.c_uint),
        ("time_gran", ctypes.c_uint),
        ("reserved", ctypes.c_uint * 22),
    ]


class Buf(ctypes.Structure):  # struct fuse_buf
    _fields_ = [
        ("size", ctypes.c_size_t),
        ("flags", ctypes.c_int),
        ("mem", ctypes.c_void_p),
        ("fd", ctypes.c_int),
        ("pos", c_off),
    ]


class BufVec(ctypes.Structure):  # struct fuse_bufvec, with one buffer
    _fields_ = [("count", ctypes.c_size_t), ("idx", ctypes.c_size_t), ("off", ctypes.c_size_t), ("buf", Buf * 1)]


_fi = ctypes.c_void_p  # struct fuse_file_info *: not read (files are never opened)
INIT = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.POINTER(ConnInfo))
LOOKUP = ctypes.CFUNCTYPE(None, c_req, c_ino, ctypes.c_char_p)
FORGET = ctypes.CFUNCTYPE(None, c_req, c_ino, ctypes.c_uint64)
GETATTR = ctypes.CFUNCTYPE(None, c_req, c_ino, _fi)
READLINK = ctypes.CFUNCTYPE(None, c_req, c_ino)
OPEN = ctypes.CFUNCTYPE(None, c_req, c_ino, _fi)
READ = ctypes.CFUNCTYPE(None, c_req, c_ino, ctypes.c_size_t, c_off, _fi)
STATFS = ctypes.CFUNCTYPE(None, c_req, c_ino)
GETXATTR = ctypes.CFUNCTYPE(None, c_req, c_ino, ctypes.c_char_p, ctypes.c_size_t)
LISTXATTR = ctypes.CFUNCTYPE(None, c_req, c_ino, ctypes.c_size_t)
IOCTL = ctypes.CFUNCTYPE(
    None,
    c_req,
    c_ino,
    ctypes.c_uint,
    ctypes.c_void_p,
    _fi,
    ctypes.c_uint,
    ctypes.c_void_p,
    ctypes.c_size_t,
    ctypes.c_size_t,
)
FORGET_MULTI = ctypes.CFUNCTYPE(None, c_req, ctypes.c_size_t, ctypes.POINTER(ForgetData))
READDIRPLUS = ctypes.CFUNCTYPE(None, c_req, c_ino, ctypes.c_size_t, c_off, _fi)

# struct fuse_lowlevel_ops, in its order (3.14); unused slots stay NULL
OPS = [
    "init", "destroy", "lookup", "forget", "getattr", "setattr", "readlink", "mknod", "mkdir", "unlink",
    "rmdir", "symlink", "rename", "link", "open", "read", "write", "flush", "release", "fsync", "opendir",
    "readdir", "releasedir", "fsyncdir", "statfs", "setxattr", "getxattr", "listxattr", "removexattr",
    "access", "create", "getlk", "setlk", "bmap", "ioctl", "poll", "write_buf", "retrieve_reply",
    "forget_multi", "flock", "fallocate", "readdirplus", "copy_file_range", "lseek",
]  # fmt: skip


class LowlevelOps(ctypes.Structure):
    _fields_ = [(name, ctypes.c_void_p) for name in OPS]


def load(path: str | None = None) -> ctypes.CDLL:
    """libfuse 3 (`path`, else libfuse3.so.3) with the prototypes lowlevel.py calls; OSError
    if it is missing, AttributeError if it lacks one of them."""
    lib = ctypes.CDLL(path or ctypes.util.find_library("fuse3") or "libfuse3.so.3")
    sig = {
        "fuse_session_new": (
            ctypes.c_void_p,
            [ctypes.POINTER(FuseArgs), ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p],
        ),
        "fuse_session_mount": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_char_p]),
        "fuse_session_loop": (ctypes.c_int, [ctypes.c_void_p]),
        "fuse_session_unmount": (None, [ctypes.c_void_p]),
        "fuse_session_destroy": (None, [ctypes.c_void_p]),
        "fuse_session_exit": (None, [ctypes.c_void_p]),
        "fuse_set_signal_handlers": (ctypes.c_int, [ctypes.c_void_p]),
        "fuse_remove_signal_handlers": (None, [ctypes.c_void_p]),
        "fuse_req_ctx": (ctypes.POINTER(Ctx), [c_req]),
        "fuse_reply_err": (ctypes.c_int, [c_req, ctypes.c_int]),
        "fuse_reply_none": (None, [c_req]),
        "fuse_reply_entry": (ctypes.c_int, [c_req, ctypes.POINTER(EntryParam)]),
        "fuse_reply_attr": (ctypes.c_int, [c_req, ctypes.POINTER(c_stat), ctypes.c_double]),
        "fuse_reply_readlink": (ctypes.c_int, [c_req, ctypes.c_char_p]),
        "fuse_reply_buf": (ctypes.c_int, [c_req, ctypes.c_char_p, ctypes.c_size_t]),
        "fuse_reply_statfs": (ctypes.c_int, [c_req, ctypes.POINTER(c_statvfs)]),
        "fuse_reply_xattr": (ctypes.c_int, [c_req, ctypes.c_size_t]),
        "fuse_reply_ioctl": (ctypes.c_int, [c_req, ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]),
        "fuse_add_direntry_plus": (
            ctypes.c_size_t,
            [c_req, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.POINTER(EntryParam), c_off],
        ),
        "fuse_lowlevel_notify_store": (
            ctypes.c_int,
            [ctypes.c_void_p, c_ino, c_off, ctypes.POINTER(BufVec), ctypes.c_int],
        ),
    }
    for name, (restype, argtypes) in sig.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    return lib
