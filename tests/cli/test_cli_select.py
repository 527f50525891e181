"""amber backup's source selection as restic defines it, on crafted trees, through the real CLI:
--files-from(-verbatim, -raw), --exclude-file, --iexclude, --exclude-caches, --exclude-if-present,
--exclude-larger-than, --one-file-system, --dry-run and --stdin-from-command. Each test compares
what the snapshot holds (`ls --json`) with what restic would have stored."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from cli_helpers import IS_ROOT, NON_UTF8_NAME, Amber, write

CACHE_SIGNATURE = b"Signature: 8a477f597d28d172789f06886806bc55"


def make(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        write(p, data)
    return root


def stored(repo: Amber, snapshot: str = "latest") -> set[str]:
    """The paths a snapshot holds."""
    return {e["path"] for e in repo.json("ls", snapshot)}


def below(repo: Amber, root: Path, snapshot: str = "latest") -> set[str]:
    """The snapshot's paths under `root`, relative to it."""
    prefix = f"{root}/"
    return {p[len(prefix) :] for p in stored(repo, snapshot) if p.startswith(prefix)}


def snapshot_count(repo: Amber) -> int:
    return len(repo.snapshots())


# -- --files-from, --files-from-verbatim, --files-from-raw ------------------------------------------


def test_files_from_globs_comments_and_blank_lines_with_paths_and_repeats(repo, tmp_path):
    src = make(
        tmp_path / "src",
        {
            "docs/a.txt": b"a",
            "docs/b.txt": b"b",
            "docs/.hidden.txt": b"h",
            "docs/c.md": b"c",
            "photos/x.jpg": b"x",
            "other/o": b"o",
            "arg/given": b"g",
            "#notcomment/f": b"f",
        },
    )
    list1 = tmp_path / "list1"
    list1.write_text(
        f"# a comment\n\n   \n  {src}/docs/*.txt  \n{src}/photos\r\n  # indented comment\n", encoding="utf-8"
    )
    list2 = tmp_path / "list2"
    list2.write_text(f"{src}/other/o\n", encoding="utf-8")
    r = repo.backup(src / "arg", args=("--files-from", list1, "--files-from", list2))
    assert r["files_new"] == 6, r
    got = below(repo, src)
    # Go's filepath.Glob: `*` matches names starting with a dot too
    assert {"docs/a.txt", "docs/b.txt", "docs/.hidden.txt", "photos/x.jpg", "other/o", "arg/given"} <= got, got
    assert not {"docs/c.md", "#notcomment", "#notcomment/f"} & got, got
    snap = repo.snapshots()[-1]
    assert str(src / "arg") in snap["paths"] and str(src / "docs" / "a.txt") in snap["paths"], snap["paths"]


def test_files_from_relative_paths_are_relative_to_the_working_folder(repo, tmp_path):
    src = make(tmp_path / "src", {"one/f": b"1", "two/g": b"2"})
    (tmp_path / "list").write_text("one\n./two/g\n", encoding="utf-8")
    repo.backup(args=("--files-from", tmp_path / "list"), cwd=src)
    assert {"one", "one/f", "two/g"} <= below(repo, src)


def test_files_from_standard_input(repo, tmp_path):
    src = make(tmp_path / "src", {"a": b"a", "b": b"b"})
    repo.run("backup", "--files-from", "-", input=f"{src}/a\n".encode())
    got = below(repo, src)
    assert "a" in got and "b" not in got, got


def test_listed_paths_that_do_not_exist_are_named_and_give_exit_3(repo, tmp_path):
    src = make(tmp_path / "src", {"here/f": b"f", "there.txt": b"t"})
    gone1, gone2, pattern = src / "gone", src / "no" / "such.txt", src / "*.none"
    (tmp_path / "list").write_text(f"{src}/here\n{gone1}\n{pattern}\n", encoding="utf-8")
    (tmp_path / "verbatim").write_text(f"{src}/there.txt\n{gone2}\n", encoding="utf-8")
    r = repo.run(
        "backup", "--files-from", tmp_path / "list", "--files-from-verbatim", tmp_path / "verbatim", "--json", expect=3
    )
    doc = r.json()
    for name in (gone1, gone2, pattern):
        assert f"warning: {name} does not exist, skipping" in r.stderr, r
    assert sorted(doc["missing"]) == sorted(map(str, (gone1, gone2, pattern))), doc
    assert {"here/f", "there.txt"} <= below(repo, src, doc["snapshot_id"])
    # human output says it too
    r = repo.run("backup", "--files-from", tmp_path / "list", expect=3)
    assert "1 listed path(s) do not exist" in r.stderr or "2 listed path(s) do not exist" in r.stderr, r


def test_nothing_listed_exists_is_exit_1_and_no_snapshot(repo, tmp_path):
    (tmp_path / "list").write_text(f"{tmp_path}/nope\n", encoding="utf-8")
    r = repo.run("backup", "--files-from", tmp_path / "list", expect=1)
    assert f"{tmp_path}/nope does not exist" in r.stderr and "nothing to back up" in r.stderr, r
    assert snapshot_count(repo) == 0
    # an empty list names nothing at all
    (tmp_path / "empty").write_bytes(b"# only a comment\n\n")
    repo.run("backup", "--files-from", tmp_path / "empty", expect=1)
    assert snapshot_count(repo) == 0


def test_files_from_verbatim_takes_lines_literally(repo, tmp_path):
    names = ["#hash start", "  spaced  ", "star*.txt", "[x].txt"]
    src = make(tmp_path / "src", {n: n.encode() for n in names} | {"starZ.txt": b"z", "x.txt": b"x"})
    (tmp_path / "list").write_text("".join(f"{src}/{n}\n" for n in names) + "\n", encoding="utf-8")
    repo.backup(args=("--files-from-verbatim", tmp_path / "list"))
    got = below(repo, src)
    assert set(names) <= got and not {"starZ.txt", "x.txt"} & got, got


def test_files_from_raw_takes_any_bytes_including_non_utf8_and_newlines(repo, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    bsrc = os.fsencode(src)
    odd = [NON_UTF8_NAME, b"new\nline.txt", b"plain.txt"]
    for n in odd:
        write(os.path.join(bsrc, n), n)
    write(os.path.join(bsrc, b"left-out"), b"no")
    (tmp_path / "raw").write_bytes(b"".join(os.path.join(bsrc, n) + b"\0" for n in odd))
    doc = repo.backup(args=("--files-from-raw", tmp_path / "raw"))
    assert doc["files_new"] == 3, doc
    got = below(repo, src)
    assert {os.fsdecode(n) for n in odd} <= got and "left-out" not in got, got
    latin = os.path.join(bsrc, NON_UTF8_NAME)
    assert repo.run("cat", "latest", latin).stdout == NON_UTF8_NAME


def test_files_from_lines_with_non_utf8_names(repo, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    bsrc = os.fsencode(src)
    write(os.path.join(bsrc, NON_UTF8_NAME), b"latin")
    write(os.path.join(bsrc, b"caf\xe9-dir", b"inner"), b"inner")
    (tmp_path / "list").write_bytes(
        os.path.join(bsrc, NON_UTF8_NAME) + b"\n" + os.path.join(bsrc, b"caf\xe9-*") + b"\n"
    )
    (tmp_path / "verbatim").write_bytes(os.path.join(bsrc, b"missing-\xff") + b"\n")
    r = repo.run(
        "backup", "--files-from", tmp_path / "list", "--files-from-verbatim", tmp_path / "verbatim", "--json", expect=3
    )
    assert "missing-" in r.stderr and "does not exist" in r.stderr, r
    got = below(repo, src, r.json()["snapshot_id"])
    assert {os.fsdecode(NON_UTF8_NAME), os.fsdecode(b"caf\xe9-dir/inner")} <= got, got


@pytest.mark.parametrize("flag", ["--files-from", "--files-from-verbatim", "--files-from-raw", "--exclude-file"])
def test_unreadable_list_files_are_exit_1_naming_them(repo, tmp_path, flag):
    src = make(tmp_path / "src", {"f": b"f"})
    missing = tmp_path / "no-such-list"
    r = repo.run("backup", src, flag, missing, expect=1)
    assert f"cannot read the list {missing}" in r.stderr, r
    r = repo.run("backup", src, flag, tmp_path, expect=1)  # a folder
    assert f"cannot read the list {tmp_path}" in r.stderr, r
    assert snapshot_count(repo) == 0


# -- exclusion rules -------------------------------------------------------------------------------


def test_exclude_file_and_iexclude(repo, tmp_path, monkeypatch):
    src = make(
        tmp_path / "src",
        {
            "keep.txt": b"k",
            "a.log": b"l",
            "sub/b.log": b"l",
            "build/out/x.o": b"o",
            "other/build/out/y.o": b"o",
            "build/keep": b"k",
            "Photo.JPG": b"p",
            "pic.jpg": b"p",
            "deep/Pic.JpG": b"p",
            "env-named/z": b"z",
            "spaced.tmp": b"t",
        },
    )
    pats = tmp_path / "excludes"
    pats.write_text("# comment\n\n*.log\n  build/out  \n$NAMED_DIR\n", encoding="utf-8")
    more = tmp_path / "more"
    more.write_text("*.tmp\n", encoding="utf-8")
    env = repo.env(NAMED_DIR=str(src / "env-named"))
    r = repo.run(
        "backup", src, "--exclude-file", pats, "--exclude-file", more, "--iexclude", "*.jpg", "--json", env=env
    )
    got = below(repo, src, r.json()["snapshot_id"])
    assert {"keep.txt", "build", "build/keep", "other/build"} <= got, got
    gone = {"a.log", "sub/b.log", "build/out", "other/build/out", "Photo.JPG", "pic.jpg", "deep/Pic.JpG"}
    assert not (gone | {"env-named", "spaced.tmp"}) & got, got
    # --exclude stays case-sensitive
    r = repo.run("backup", src, "--exclude", "*.jpg", "--json")
    got = below(repo, src, r.json()["snapshot_id"])
    assert "Photo.JPG" in got and "deep/Pic.JpG" in got and "pic.jpg" not in got


def test_exclude_caches_keeps_only_the_tag_of_a_tagged_folder(repo, tmp_path):
    src = make(
        tmp_path / "src",
        {
            "cache/CACHEDIR.TAG": CACHE_SIGNATURE + b"\n# made by a tool\n",
            "cache/data.bin": b"d",
            "cache/sub/more": b"m",
            "fake/CACHEDIR.TAG": b"Signature: not the right one",
            "fake/kept": b"k",
            "normal/file": b"n",
        },
    )
    r = repo.backup(src, args=("--exclude-caches",))
    got = below(repo, src, r["snapshot_id"])
    assert {"cache", "cache/CACHEDIR.TAG", "fake/CACHEDIR.TAG", "fake/kept", "normal/file"} <= got, got
    assert not {"cache/data.bin", "cache/sub", "cache/sub/more"} & got, got
    # a tagged folder given as the path itself keeps its tag only
    r = repo.backup(src / "cache", args=("--exclude-caches",))
    assert below(repo, src / "cache", r["snapshot_id"]) == {"CACHEDIR.TAG"}


def test_exclude_if_present_with_and_without_header(repo, tmp_path):
    src = make(
        tmp_path / "src",
        {
            "a/.nobackup": b"",
            "a/secret": b"s",
            "a/sub/deep": b"d",
            "b/.marker": b"SKIP-ME please",
            "b/x": b"x",
            "c/.marker": b"keep me",
            "c/y": b"y",
            "d/z": b"z",
        },
    )
    r = repo.backup(src, args=("--exclude-if-present", ".nobackup", "--exclude-if-present", ".marker:SKIP-ME"))
    got = below(repo, src, r["snapshot_id"])
    assert {"a", "a/.nobackup", "b", "b/.marker", "c/.marker", "c/y", "d/z"} <= got, got
    assert not {"a/secret", "a/sub", "a/sub/deep", "b/x"} & got, got
    repo.run("backup", src, "--exclude-if-present", ":HEADER", expect=2)


def test_exclude_larger_than_with_restic_sizes(repo, tmp_path):
    src = make(
        tmp_path / "src", {"exact": b"x" * 1024, "over": b"x" * 1025, "small": b"s", "big/huge": b"h" * (3 << 20)}
    )
    got = below(repo, src, repo.backup(src, args=("--exclude-larger-than", "1k"))["snapshot_id"])
    assert {"exact", "small", "big"} <= got and not {"over", "big/huge"} & got, got
    got = below(repo, src, repo.backup(src, args=("--exclude-larger-than", "1025"))["snapshot_id"])
    assert {"exact", "over", "small"} <= got and "big/huge" not in got, got
    got = below(repo, src, repo.backup(src, args=("--exclude-larger-than", "2M"))["snapshot_id"])
    assert "big/huge" not in got and "over" in got
    got = below(repo, src, repo.backup(src, args=("--exclude-larger-than", "1G"))["snapshot_id"])
    assert "big/huge" in got
    # a file given itself is held to the limit too
    repo.backup(src / "over", src / "small", args=("--exclude-larger-than", "1k"))
    assert str(src / "over") not in stored(repo) and str(src / "small") in stored(repo)


@pytest.mark.parametrize("size", ["", "4q", "-1", "1.5M", "k", "1kb", "12 34"])
def test_bad_size_is_usage_error(repo, tmp_path, size):
    src = make(tmp_path / "src", {"f": b"f"})
    r = repo.run("backup", src, "--exclude-larger-than", size, expect=2)
    assert "is not a size" in r.stderr, r
    assert snapshot_count(repo) == 0


def test_one_file_system_stops_at_mount_points(repo, tmp_path):
    if not IS_ROOT or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root")
    src = make(tmp_path / "src", {"outside": b"o", "mnt/under-the-mount": b"u"})
    mnt = src / "mnt"
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "amber-test", str(mnt)], capture_output=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {p.stderr.decode(errors='replace')}")
    try:
        write(mnt / "mounted-file", b"m")
        (mnt / "mounted-dir").mkdir()
        got = below(repo, src, repo.backup(src, args=("--one-file-system",))["snapshot_id"])
        assert {"outside", "mnt"} <= got, got
        assert not {"mnt/mounted-file", "mnt/mounted-dir"} & got, got
        got = below(repo, src, repo.backup(src)["snapshot_id"])  # without the flag, the mount is crossed
        assert {"mnt/mounted-file", "mnt/mounted-dir"} <= got, got
        # the mount point given itself is backed up whole: its own filesystem is allowed
        got = below(repo, mnt, repo.backup(mnt, args=("--one-file-system",))["snapshot_id"])
        assert {"mounted-file", "mounted-dir"} <= got, got
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


# -- --dry-run ---------------------------------------------------------------------------------------


def repository_state(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def test_dry_run_writes_nothing_and_reports_what_would_be_stored(repo, tmp_path):
    src = make(tmp_path / "src", {"a": b"a" * 5000, "dir/b": os.urandom(200_000), "skip.tmp": b"t"})
    before = repository_state(repo.repo)
    doc = repo.backup(src, args=("--dry-run", "--exclude", "*.tmp"))
    assert repository_state(repo.repo) == before, "a dry run wrote into the repository"
    assert doc["dry_run"] is True and doc["snapshot_id"] is None, doc
    assert doc["files_new"] == 2 and doc["files_changed"] == 0 and doc["files_unmodified"] == 0, doc
    assert doc["bytes_total"] == 205_000 and doc["bytes_read"] == 205_000, doc
    assert doc["bytes_added"] > 200_000, doc  # random data does not compress
    assert snapshot_count(repo) == 0
    events = repo.json("audit", "log")
    assert [e["type"] for e in events] == ["init"], events
    # -v lists each file with what would happen to it
    r = repo.run("backup", src, "--dry-run", "-v")
    assert f"new        {src}/a" in r.out and f"new        {src}/dir/b" in r.out, r
    assert "skip.tmp" in r.out and "nothing was written" in r.out
    doc = repo.backup(src, args=("--dry-run", "-v", "--exclude", "*.tmp"))
    assert sorted((f["path"], f["status"], f["size"]) for f in doc["files"]) == [
        (f"{src}/a", "new", 5000),
        (f"{src}/dir/b", "new", 200_000),
    ]
    # after a real backup, the same tree would add nothing new
    repo.backup(src, args=("--exclude", "*.tmp"))
    write(src / "a", b"b" * 6000)
    doc = repo.backup(src, args=("--dry-run", "--exclude", "*.tmp"))
    assert doc["files_unmodified"] == 1 and doc["files_changed"] == 1 and doc["files_new"] == 0, doc
    assert doc["bytes_read"] == 6000 and doc["bytes_added"] < 10_000, doc
    assert snapshot_count(repo) == 1


def test_verbose_backup_lists_each_file(repo, tmp_path):
    src = make(tmp_path / "src", {"a": b"a", "b": b"b"})
    r = repo.run("backup", src, "-v")
    assert f"new        {src}/a" in r.out and f"new        {src}/b" in r.out, r
    doc = repo.backup(src, args=("-v",))
    assert sorted(f["path"] for f in doc["files"]) == [f"{src}/a", f"{src}/b"], doc
    assert {f["status"] for f in doc["files"]} == {"unmodified"}, doc


def test_verbose_listing_agrees_with_the_parent_counts(repo, tmp_path):
    """Files written just before a backup are not in its files cache, so the next backup reads
    them again; -v and --json list them as the summary counts them, against the parent."""
    src = tmp_path / "src"
    for name, data in {"a": b"a" * 100, "dir/b": b"b" * 200, "c": b"c" * 300}.items():
        write(src / name, data, mtime_ns=None)  # mtime now: too recent for the files cache
    repo.backup(src)
    time.sleep(1)
    r = repo.run("backup", src, "-v")
    for name in ("a", "dir/b", "c"):
        assert f"unmodified {src}/{name}\n" in r.out, r
    assert "Files: 0 new, 0 changed, 3 unmodified" in r.out, r
    assert "changed    " not in r.out and "new        " not in r.out, r
    doc = repo.backup(src, args=("-v",))
    assert {f["status"] for f in doc["files"]} == {"unmodified"} and len(doc["files"]) == 3, doc
    write(src / "dir" / "b", b"B" * 250, mtime_ns=None)
    write(src / "d", b"d", mtime_ns=None)
    for args in (("-v", "--dry-run"), ("-v",)):  # the dry run first: it stores nothing
        doc = repo.backup(src, args=args)
        got = {f["path"]: f["status"] for f in doc["files"]}
        assert got == {
            f"{src}/a": "unmodified",
            f"{src}/c": "unmodified",
            f"{src}/dir/b": "changed",
            f"{src}/d": "new",
        }, (args, doc)
        assert (doc["files_new"], doc["files_changed"], doc["files_unmodified"]) == (1, 1, 2), doc
    r = repo.run("backup", src, "-v", "--dry-run")
    assert f"unmodified {src}/dir/b\n" in r.out and f"unmodified {src}/d\n" in r.out, r


def test_iexclude_file(repo, tmp_path):
    src = make(tmp_path / "src", {"a.TXT": b"a", "b.txt": b"b", "c.md": b"c"})
    (tmp_path / "pats").write_text("# upper case, matched in any case\n*.TxT\n", encoding="utf-8")
    got = below(repo, src, repo.backup(src, args=("--iexclude-file", tmp_path / "pats"))["snapshot_id"])
    assert got == {"c.md"}, got


def test_dry_run_with_stdin_is_usage_error(repo):
    repo.run("backup", "--stdin", "--dry-run", input=b"x", expect=2)


# -- --stdin-from-command ------------------------------------------------------------------------------


def test_stdin_from_command_stores_its_output(repo):
    # --json comes before `--`: what follows is the command
    cmd = ("sh", "-c", "printf 'dump\\n'; printf 'end'")
    doc = repo.run("backup", "--json", "--stdin-from-command", "--stdin-name", "db.sql", "--", *cmd).json()
    assert doc["files_new"] == 1 and doc["bytes_read"] == 8, doc
    snap = repo.snapshots()[-1]
    assert snap["paths"] == ["/db.sql"], snap
    assert repo.run("cat", "latest", "/db.sql").stdout == b"dump\nend"
    repo.run("backup", "--stdin-from-command", "--", "echo", "hello")
    assert repo.snapshots()[-1]["paths"] == ["/stdin"]


def test_stdin_from_command_that_fails_makes_no_snapshot(repo, tmp_path):
    repo.run("backup", "--stdin-from-command", "--", "echo", "first")
    events = len(repo.json("audit", "log"))
    r = repo.run("backup", "--stdin-from-command", "--", "sh", "-c", "head -c 100000 /dev/urandom; exit 7", expect=1)
    assert "exited with status 7" in r.stderr and "head -c 100000" in r.stderr, r
    assert "no snapshot was made" in r.stderr
    r = repo.run("backup", "--stdin-from-command", "--", "sh", "-c", "kill -KILL $$", expect=1)
    assert "killed by SIGKILL" in r.stderr, r
    r = repo.run("backup", "--stdin-from-command", "--", str(tmp_path / "no-such-program"), expect=1)
    assert "cannot run" in r.stderr and "no-such-program" in r.stderr, r
    assert snapshot_count(repo) == 1
    assert len(repo.json("audit", "log")) == events
    repo.run("check")


@pytest.mark.parametrize(
    "args",
    [
        ("--stdin-from-command",),
        ("--stdin-from-command", "--stdin", "--", "true"),
        ("--stdin-from-command", "--dry-run", "--", "true"),
    ],
)
def test_stdin_from_command_usage_errors(repo, args):
    repo.run("backup", *args, expect=2)


def test_json_fields_stay_one_document(repo, tmp_path):
    src = make(tmp_path / "src", {"f": b"f"})
    doc = repo.backup(src, args=("--exclude-caches", "--one-file-system", "--exclude-larger-than", "1M"))
    assert json.loads(json.dumps(doc))["snapshot_id"]
