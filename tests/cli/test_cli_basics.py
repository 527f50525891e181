"""Usage, init, repository and password selection, snapshot references, exit codes."""

from __future__ import annotations

import json
import os

import pytest

from cli_helpers import PASSWORD, Amber, write

# -- usage -------------------------------------------------------------------


@pytest.mark.subprocess
def test_help_and_version(amber):
    r = amber.run("--help")
    for name in ("init", "backup", "snapshots", "ls", "cat", "diff", "find", "restore", "check", "key"):
        assert name in r.out
    assert "amber" in amber.run("--version").out


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["frobnicate"], marks=pytest.mark.subprocess),
        ["snapshot"],  # close to a command, but not one
        ["snapshots", "--frobnicate"],
        ["backup", "--no-such-flag", "/tmp"],
        ["ls", "--long-listing-please", "latest"],
        ["check", "--read-everything"],
        ["key", "rotate"],
    ],
)
def test_unknown_command_or_flag_is_usage_error(repo, args):
    r = repo.run(*args, expect=2)
    assert r.stderr.strip(), "a usage error must say what is wrong"
    assert r.stdout == b""


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["restore", "latest"], marks=pytest.mark.subprocess),  # --target is required
        ["cat", "latest"],  # PATH is required
        ["diff", "latest"],  # two snapshots
        ["ls"],  # SNAPSHOT is required
        ["find"],  # PATTERN is required
        ["backup"],  # nothing to back up
        ["backup", "--stdin", "/etc"],  # --stdin takes no paths
    ],
)
def test_missing_or_conflicting_arguments_are_usage_errors(repo, args):
    r = repo.run(*args, expect=2)
    assert r.stderr.strip()


# -- init ----------------------------------------------------------------------


def test_init_creates_a_repository_and_refuses_a_second_time(amber):
    r = amber.run("init")
    assert (amber.repo / "config").is_file()
    assert list((amber.repo / "keys").iterdir())
    assert PASSWORD not in r.out + r.stderr, "the password must never be echoed"
    again = amber.run("init", expect=None)
    assert again.rc != 0, f"a second init must fail:\n{again!r}"
    assert again.stderr.strip()
    # the first repository is untouched and still opens
    assert amber.snapshots() == []


def test_init_json_is_one_document(amber):
    doc = amber.json("init")
    assert isinstance(doc, dict) and doc


def test_init_twice_with_the_repo_flag(amber, tmp_path):
    other = tmp_path / "other-repo"
    amber.run("-r", other, "init")
    r = amber.run("init", "-r", other, expect=None)
    assert r.rc != 0, r


# -- repository selection ----------------------------------------------------------


def test_repo_flag_overrides_the_environment(amber, tmp_path):
    other = tmp_path / "elsewhere"
    amber.run("--repo", other, "init")
    env = amber.env(AMBER_REPOSITORY=tmp_path / "does-not-exist")
    amber.run("--repo", other, "snapshots", env=env)
    amber.run("snapshots", "-r", f"local:{other}", env=env)
    amber.run("snapshots", env=env, expect=10)


def test_default_repository_lives_under_xdg_data_home(amber, tmp_path):
    env = amber.env(AMBER_REPOSITORY=None)
    r = amber.run("init", env=env)
    default = amber.data / "amber" / "default"
    assert (default / "config").is_file()
    assert str(default) in r.stderr + r.out, "amber must say it uses the default repository"
    src = tmp_path / "d"
    src.mkdir()
    write(src / "f", b"x")
    r = amber.run("backup", src, env=env)
    assert str(default) in r.stderr
    snaps = amber.json("snapshots", env=env, quiet=False)
    assert len(snaps) == 1


def test_password_file(repo, tmp_path):
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n", encoding="utf-8")
    env = repo.env(AMBER_PASSWORD=None, AMBER_PASSWORD_FILE=pw)
    repo.run("snapshots", env=env)
    pw.write_text("not it\n", encoding="utf-8")
    repo.run("snapshots", env=env, expect=12)
    missing = repo.run(
        "snapshots", env=repo.env(AMBER_PASSWORD=None, AMBER_PASSWORD_FILE=tmp_path / "nope"), expect=None
    )
    assert missing.rc not in (0, 12) and "nope" in missing.stderr


# -- errors: password and repository --------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["snapshots"], marks=pytest.mark.subprocess),
        ["snapshots", "--json"],
        ["ls", "latest"],
        ["check"],
        ["key", "list"],
        ["find", "*"],
        ["restore", "latest", "--target", "/tmp/amber-never-written"],
    ],
)
def test_wrong_password_exits_12(repo, args):
    r = repo.run(*args, env=repo.env(AMBER_PASSWORD="not the password"), expect=12)
    assert "password" in r.stderr.lower()
    assert r.stdout == b""


def test_wrong_password_backup_exits_12_and_writes_nothing(repo, tmp_path):
    src = tmp_path / "s"
    src.mkdir()
    write(src / "f", b"data")
    before = sorted(p.relative_to(repo.repo) for p in repo.repo.rglob("*"))
    repo.run("backup", src, env=repo.env(AMBER_PASSWORD="wrong"), expect=12)
    after = sorted(p.relative_to(repo.repo) for p in repo.repo.rglob("*"))
    assert before == after


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["snapshots"], marks=pytest.mark.subprocess),
        ["check"],
        ["ls", "latest"],
        ["key", "list"],
        ["backup", "/etc/hostname"],
        ["cat", "latest", "/x"],
    ],
)
def test_missing_repository_exits_10(amber, tmp_path, args):
    missing = tmp_path / "no-such-repo"
    r = amber.run(*args, env=amber.env(AMBER_REPOSITORY=missing), expect=10)
    assert str(missing) in r.stderr


@pytest.mark.parametrize("args", [["snapshots"], ["check", "--read-data"], ["backup", "/etc/hostname"]])
def test_empty_folder_is_not_a_repository_exits_10(amber, tmp_path, args):
    empty = tmp_path / "empty"
    empty.mkdir()
    r = amber.run(*args, env=amber.env(AMBER_REPOSITORY=empty), expect=10)
    assert r.stderr.strip()
    assert list(empty.iterdir()) == [], "opening must not create anything"


@pytest.mark.parametrize(
    "args", [pytest.param(["snapshots"], marks=pytest.mark.subprocess), ["init"], ["backup", "/etc/hostname"]]
)
def test_no_password_and_no_terminal(repo, tmp_path, args):
    env = repo.env(AMBER_PASSWORD=None, AMBER_PASSWORD_FILE=None)
    if args == ["init"]:
        env["AMBER_REPOSITORY"] = str(tmp_path / "fresh")
    r = repo.run(*args, env=env, expect=None)  # stdin is /dev/null: no terminal to prompt on
    assert r.rc != 0, r
    assert "password" in r.stderr.lower(), r
    assert "AMBER_PASSWORD" in r.stderr, "the message should say how to give a password"
    if args == ["init"]:
        assert not (tmp_path / "fresh" / "config").exists()


# -- snapshot references -------------------------------------------------------------


def test_latest_in_an_empty_repository(repo):
    for args in (
        ["ls", "latest"],
        ["cat", "latest", "/etc/hostname"],
        ["diff", "latest", "latest"],
        ["restore", "latest", "--target", str(repo.base / "t")],
    ):
        r = repo.run(*args, expect=1)
        assert "snapshot" in r.stderr.lower(), r


def test_snapshot_references(repo, tmp_path):
    src = tmp_path / "s"
    src.mkdir()
    write(src / "f.txt", b"content\n")
    sid = repo.backup(src)["snapshot_id"]
    f = str(src / "f.txt")
    for ref in (sid, sid[:8], sid[:12], "latest"):
        assert repo.run("cat", ref, f).stdout == b"content\n", ref
    # too short: a prefix needs at least 8 hex characters
    r = repo.run("cat", sid[:7], f, expect=2)
    assert "8" in r.stderr
    repo.run("ls", sid[:1], expect=2)
    # not hex
    repo.run("ls", "zzzzzzzz", expect=2)
    repo.run("ls", "", expect=2)
    # a well-formed prefix that names no snapshot
    other = "0123456789abcdef" if not sid.startswith("01234567") else "fedcba9876543210"
    r = repo.run("ls", other, expect=1)
    assert other in r.stderr


def test_unique_prefix_after_several_snapshots(repo, tmp_path):
    src = tmp_path / "s"
    src.mkdir()
    ids = []
    for i in range(3):
        write(src / "f.txt", f"version {i}\n".encode())
        os.utime(src / "f.txt", ns=(10**18 + i, 10**18 + i))
        ids.append(repo.backup(src)["snapshot_id"])
    for i, sid in enumerate(ids):
        assert repo.run("cat", sid[:8], src / "f.txt").stdout == f"version {i}\n".encode()


# -- the password prompt on a terminal ------------------------------------------------


def _with_terminal(amber: Amber, args, answers, env) -> tuple[int, bytes, str]:
    """Run amber with a pseudo-terminal as its controlling terminal and stdin; type `answers`."""
    import fcntl
    import select
    import subprocess
    import termios
    import time

    try:
        master, slave = os.openpty()
    except OSError as e:
        pytest.skip(f"no pseudo-terminal here: {e}")

    def make_controlling_terminal():
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    p = subprocess.Popen(
        amber.cmd(*args),
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
        preexec_fn=make_controlling_terminal,
    )
    os.close(slave)
    try:
        for answer in answers:
            seen = b""
            deadline = time.monotonic() + 30
            while b"password" not in seen.lower() and time.monotonic() < deadline and p.poll() is None:
                ready, _, _ = select.select([master], [], [], 0.05)
                if ready:
                    try:
                        seen += os.read(master, 4096)
                    except OSError:
                        break
            assert b"password" in seen.lower(), f"no password prompt on the terminal: {seen!r}"
            assert answer.encode() not in seen, "the password must not be echoed"
            os.write(master, answer.encode() + b"\n")
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)
    err_text = err.decode("utf-8", "replace")
    assert "Traceback" not in err_text, err_text
    return p.returncode, out, err_text


@pytest.mark.subprocess
def test_password_prompt_on_a_terminal(amber, tmp_path):
    env = amber.env(AMBER_PASSWORD=None)
    rc, out, err = _with_terminal(amber, ["init"], ["typed secret", "typed secret"], env)
    assert rc == 0, (out, err)
    rc, out, err = _with_terminal(amber, ["snapshots", "--json"], ["typed secret"], env)
    assert rc == 0 and json.loads(out) == [], (out, err)
    rc, out, err = _with_terminal(amber, ["snapshots"], ["not it"], env)
    assert rc == 12, (out, err)
    amber.run("snapshots", env=amber.env(AMBER_PASSWORD="typed secret"))


@pytest.mark.subprocess
def test_init_prompt_with_mismatched_passwords(amber):
    env = amber.env(AMBER_PASSWORD=None)
    rc, out, err = _with_terminal(amber, ["init"], ["one thing", "another"], env)
    assert rc != 0 and err.strip(), (rc, out, err)
    assert not (amber.repo / "config").exists()
