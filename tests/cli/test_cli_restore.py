"""amber restore: byte-exact trees with modes, mtimes, owners, symlinks and hard links."""

from __future__ import annotations

import os

from cli_helpers import NON_UTF8_NAME, OLD_NS, assert_same_tree, restored_root, sha256_file, tree_state, write


def test_full_restore_is_exact(repo, tree, tmp_path):
    root = tree["root"]
    sid = repo.backup(root)["snapshot_id"]
    target = tmp_path / "restore"
    r = repo.run("restore", sid, "--target", target)
    assert r.stderr == "", f"no progress or noise on stderr in a pipe:\n{r!r}"
    out = restored_root(target, root)
    assert os.path.isdir(out), "files land under --target at their absolute source path"
    assert_same_tree(root, out)
    # spot checks on what is easy to get wrong
    bout = os.fsencode(out)
    assert os.readlink(os.path.join(bout, b"dangling-link")) == b"does/not/exist"
    assert os.readlink(os.path.join(bout, b"absolute-link")) == b"/nonexistent/absolute/target"
    assert os.path.islink(os.path.join(bout, b"dir-link"))
    a = os.stat(os.path.join(bout, b"hardlink-a.txt"))
    b = os.stat(os.path.join(bout, b"nested", b"hardlink-b.txt"))
    assert (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino) and a.st_nlink == 2, "hard links must stay linked"
    assert os.stat(os.path.join(bout, b"suid-tool")).st_mode & 0o7777 == 0o4755
    assert os.path.isdir(os.path.join(bout, b"empty-dir")) and not os.listdir(os.path.join(bout, b"empty-dir"))
    assert os.path.isfile(os.path.join(bout, NON_UTF8_NAME))
    assert os.lstat(os.path.join(bout, b"big.bin")).st_mtime_ns == os.lstat(tree["big"]).st_mtime_ns


def test_restore_verify_and_json(repo, tree, tmp_path):
    root = tree["root"]
    repo.backup(root)
    target = tmp_path / "verified"
    doc = repo.json("restore", "latest", "--target", target, "--verify")
    assert isinstance(doc, dict)
    assert_same_tree(root, restored_root(target, root))
    human = repo.run("restore", "latest", "--target", tmp_path / "verified-2", "--verify")
    assert human.stderr == ""
    assert_same_tree(root, restored_root(tmp_path / "verified-2", root))


def test_restore_include(repo, tree, tmp_path):
    root = tree["root"]
    repo.backup(root)
    # one file
    t1 = tmp_path / "only-big"
    repo.run("restore", "latest", "--target", t1, "--include", tree["big"])
    out = restored_root(t1, root)
    assert sha256_file(os.path.join(out, b"big.bin")) == sha256_file(tree["big"])
    files = [os.path.join(d, f) for d, _, fs in os.walk(t1) for f in fs]
    assert files == [os.path.join(os.fsdecode(out), "big.bin")], files
    # a folder and a file together
    t2 = tmp_path / "nested-and-small"
    nested = os.path.join(root, "nested")
    repo.run("restore", "latest", "--target", t2, "--include", nested, "--include", tree["small"])
    out2 = restored_root(t2, root)
    assert_same_tree(nested, os.path.join(out2, b"nested"))
    assert open(os.path.join(out2, b"small.txt"), "rb").read() == b"hello amber\n"
    assert not os.path.exists(os.path.join(out2, b"big.bin"))
    assert not os.path.exists(os.path.join(out2, b"empty-dir"))


def test_restore_include_that_matches_nothing_is_an_error(repo, tree, tmp_path):
    root = tree["root"]
    repo.backup(root)
    r = repo.run(
        "restore", "latest", "--target", tmp_path / "none", "--include", os.path.join(root, "no-such-file"), expect=None
    )
    assert r.rc != 0 and "no-such-file" in r.stderr, f"a mistyped --include must not pass for a restore:\n{r!r}"


def test_restore_an_older_snapshot(repo, tree, tmp_path):
    root = tree["root"]
    before = tree_state(root)
    first = repo.backup(root)["snapshot_id"]
    write(tree["small"], b"changed after the first snapshot\n")
    os.utime(tree["small"], ns=(OLD_NS, OLD_NS))
    os.remove(tree["leaf"])
    write(os.path.join(root, "later.txt"), b"later")
    repo.backup(root)
    target = tmp_path / "old"
    repo.run("restore", first, "--target", target, "--verify")
    restored = tree_state(restored_root(target, root))
    # the leaf's folder mtime changed in the source after the first backup; compare files and links
    assert {k: v for k, v in restored.items() if v and isinstance(v, dict) and v["type"] != "dir"} == {
        k: v for k, v in before.items() if v and isinstance(v, dict) and v["type"] != "dir"
    }
    assert restored["__hardlinks__"] == before["__hardlinks__"]


def test_restore_over_an_existing_restore(repo, tree, tmp_path):
    root = tree["root"]
    repo.backup(root)
    target = tmp_path / "twice"
    repo.run("restore", "latest", "--target", target)
    out = restored_root(target, root)
    # scribble over a restored file, then restore again: the snapshot wins
    p = os.path.join(out, b"small.txt")
    os.chmod(p, 0o644)
    write(p, b"scribbled")
    repo.run("restore", "latest", "--target", target, "--verify")
    assert_same_tree(root, out)


def test_restore_only_the_second_name_of_a_hard_link(repo, tree, tmp_path):
    root = tree["root"]
    repo.backup(root)
    target = tmp_path / "one-name"
    second = os.path.join(root, "nested", "hardlink-b.txt")
    repo.run("restore", "latest", "--target", target, "--include", second, "--verify")
    out = restored_root(target, second)
    assert open(out, "rb").read() == b"one inode, two names\n"
    assert not os.path.exists(restored_root(target, os.path.join(root, "hardlink-a.txt")))


def test_restore_of_nested_backup_paths(repo, tree, tmp_path):
    root = tree["root"]
    nested = os.path.join(root, "nested")
    repo.backup(root, nested)
    snap = repo.snapshots()[0]
    assert sorted(snap["paths"]) == sorted([root, nested])
    target = tmp_path / "nested-paths"
    repo.run("restore", "latest", "--target", target, "--verify")
    assert_same_tree(root, restored_root(target, root))


def test_restore_onto_a_file_is_an_error(repo, tree, tmp_path):
    repo.backup(tree["root"])
    blocker = tmp_path / "a-file"
    write(blocker, b"in the way")
    r = repo.run("restore", "latest", "--target", blocker, expect=None)
    assert r.rc not in (0, 20) and r.stderr.strip(), r
    assert open(blocker, "rb").read() == b"in the way"
