"""backup/select.py: restic's sizes, glob matching, and the device rule of --one-file-system."""

from __future__ import annotations

import os

import pytest

from amber.backup.select import Selection, TagRule, parse_size, selection
from amber.errors import UsageError


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("0", 0),
        ("1024", 1024),
        ("1k", 1024),
        ("1K", 1024),
        ("2M", 2 << 20),
        ("3g", 3 << 30),
        ("1T", 1 << 40),
        ("7b", 7),
    ],
)
def test_restic_sizes(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "k", "-1", "1.5M", "1kb", "1 k k", "0x10"])
def test_bad_sizes(text):
    with pytest.raises(UsageError):
        parse_size(text)


def test_globs_match_name_full_path_and_trailing_components():
    sel = selection(excludes=["*.log", "/srv/cache", "build/out", "/abs/*/x/"], iexcludes=["*.JPG"])
    assert sel.excluded("/a/b/c.log", "c.log")
    assert sel.excluded("/srv/cache", "cache") and not sel.excluded("/other/srv/cache", "cache")
    assert sel.excluded("/p/build/out", "out") and not sel.excluded("/p/build/outer", "outer")
    assert sel.excluded("/abs/q/x", "x")
    assert sel.excluded("/p/photo.jpg", "photo.jpg") and sel.excluded("/p/PHOTO.Jpg", "PHOTO.Jpg")
    assert not sel.excluded("/p/keep.txt", "keep.txt")


def test_tag_rule_specs():
    assert TagRule.parse(".nobackup") == TagRule(".nobackup", b"")
    assert TagRule.parse("CACHEDIR.TAG:Signature: x") == TagRule("CACHEDIR.TAG", b"Signature: x")
    for bad in ("", ":x", "a/b"):
        with pytest.raises(UsageError):
            TagRule.parse(bad)


def test_one_file_system_device_rule_on_proc():
    """/proc is a filesystem of its own: under the rule for /, it is a mount point (kept
    empty), while /etc (on /'s filesystem) is kept."""
    root, proc = os.lstat("/"), os.lstat("/proc")
    if root.st_dev == proc.st_dev:
        pytest.skip("/proc is not a filesystem of its own here")
    rule = Selection(one_file_system=True).folder("/", (), root)
    assert rule.verdict(proc) == "empty"
    assert rule.verdict(os.lstat("/etc")) == "keep"
    assert Selection().folder("/", (), root).verdict(proc) == "keep"
    on_proc = Selection(one_file_system=True).folder("/", (), root)
    assert on_proc.verdict(os.lstat("/proc/self/status")) == "drop"  # a file on another filesystem


def test_restic_component_matching():
    """restic's filter.Match: components matched in a window anywhere (from the start for
    `/...`), `**` for any number of them; a folder's pattern also matches what is below it."""
    sel = selection(excludes=["foo/bar", "/srv/*/tmp", "/a/**/z", "x/**"])
    assert sel.excluded("/p/foo/bar", "bar")
    assert sel.excluded("/p/foo/bar/below", "below")  # a path given below an excluded folder
    assert not sel.excluded("/p/foo/baz", "baz")
    assert sel.excluded("/srv/one/tmp", "tmp") and sel.excluded("/srv/one/tmp/f", "f")
    assert not sel.excluded("/other/srv/one/tmp", "tmp")
    assert sel.excluded("/a/z", "z") and sel.excluded("/a/b/c/z", "z") and not sel.excluded("/b/a/z", "z")
    assert sel.excluded("/q/x/y", "y") and sel.excluded("/q/x", "x")
