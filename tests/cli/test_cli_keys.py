"""amber key list / add / remove: passwords come and go, the data stays readable."""

from __future__ import annotations

from cli_helpers import PASSWORD, write

NEW = "a second password — with ünïcode"


def test_add_list_remove_keys(repo, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    write(src / "f.txt", b"kept across keys\n")
    repo.backup(src)
    keys = repo.json("key", "list")
    assert isinstance(keys, list) and len(keys) == 1
    old_id = keys[0]["id"]
    assert keys[0].get("current") is True

    r = repo.run("key", "add", env=repo.env(AMBER_NEW_PASSWORD=NEW))
    assert NEW not in r.out + r.stderr
    keys = repo.json("key", "list")
    assert len(keys) == 2
    new_id = next(k["id"] for k in keys if k["id"] != old_id)
    assert new_id[:10] in r.out, "key add names the new key"

    as_new = repo.env(AMBER_PASSWORD=NEW)
    assert repo.run("cat", "latest", src / "f.txt", env=as_new).stdout == b"kept across keys\n"
    current = {k["id"]: k.get("current") for k in repo.json("key", "list", env=as_new)}
    assert current == {old_id: False, new_id: True}

    # the key in use cannot be removed
    r = repo.run("key", "remove", new_id, env=as_new, expect=None)
    assert r.rc != 0, r
    assert len(repo.json("key", "list", env=as_new)) == 2

    repo.run("key", "remove", old_id[:12], env=as_new)
    keys = repo.json("key", "list", env=as_new)
    assert [k["id"] for k in keys] == [new_id]
    r = repo.run("snapshots", expect=12)  # the old password opens nothing now
    assert "password" in r.stderr.lower()
    repo.run("cat", "latest", src / "f.txt", expect=12)
    # the new one opens everything, writes too
    write(src / "g.txt", b"written with the new key\n")
    repo.run("backup", src, env=as_new)
    assert repo.run("cat", "latest", src / "g.txt", env=as_new).stdout == b"written with the new key\n"
    repo.run("check", "--read-data", env=as_new)


def test_key_add_from_a_file_and_remove_unknown(repo, tmp_path):
    pw = tmp_path / "new-pw"
    pw.write_text("from a file\n", encoding="utf-8")
    repo.run("key", "add", "--new-password-file", pw)
    repo.run("snapshots", env=repo.env(AMBER_PASSWORD="from a file"))
    repo.run("snapshots", env=repo.env(AMBER_PASSWORD=PASSWORD))
    r = repo.run("key", "remove", "ffffffffffffffffffff", expect=None)
    assert r.rc != 0 and r.stderr.strip(), r
    assert len(repo.json("key", "list")) == 2


def test_key_add_without_a_new_password_and_no_terminal(repo):
    r = repo.run("key", "add", env=repo.env(AMBER_NEW_PASSWORD=None), expect=None)
    assert r.rc != 0 and "password" in r.stderr.lower(), r
    assert len(repo.json("key", "list")) == 1


def test_key_commands_with_the_wrong_password(repo):
    env = repo.env(AMBER_PASSWORD="nope", AMBER_NEW_PASSWORD="x")
    repo.run("key", "add", env=env, expect=12)
    repo.run("key", "list", env=env, expect=12)
    assert len(repo.json("key", "list")) == 1
