"""`amber init/backup/snapshots/restore/check` against `rest:https://127.0.0.1:PORT/NAME`, with
tokens of each role, and the errors a user sees for a wrong token, a wrong role or an untrusted
certificate."""

from __future__ import annotations

import pytest
from rest_helpers import RestAmber

from cli_helpers import make_source, sha256_file

pytestmark = pytest.mark.subprocess


@pytest.fixture
def tokens(serve):
    return {role: serve.token("office", role)["token"] for role in ("admin", "backup", "auditor")}


def _user(tmp_path, serve, token, name="office"):
    return RestAmber(tmp_path / "user", serve, name, token, subprocess=True)


def _tree(tmp_path):
    return make_source(
        tmp_path / "src", {"a.txt": b"alpha\n" * 1000, "sub/b.bin": bytes(range(256)) * 4096, "sub/empty": b""}
    )


def test_init_backup_restore_check_through_the_server(tmp_path, serve, tokens):
    admin = _user(tmp_path, serve, tokens["admin"])
    admin.run("init")
    src = _tree(tmp_path)
    backup = RestAmber(tmp_path / "user", serve, "office", tokens["backup"], subprocess=True)
    done = backup.backup(src, args=("--retain", "7d", "--retention-mode", "compliance"))
    (snap,) = backup.snapshots()
    assert snap["id"] == done["snapshot_id"] and snap["retention"]["mode"] == "compliance"
    auditor = RestAmber(tmp_path / "user", serve, "office", tokens["auditor"], subprocess=True)
    auditor.run("restore", "latest", "--target", tmp_path / "out", "--verify")
    for rel in ("a.txt", "sub/b.bin", "sub/empty"):
        assert sha256_file(tmp_path / "out" / src.lstrip("/") / rel) == sha256_file(f"{src}/{rel}")
    r = auditor.run("check")
    assert "not recorded" in r.stderr  # an auditor may read everything and write nothing
    admin.run("check")
    assert "snapshots/" + done["snapshot_id"] in backup.objects("snapshots")
    assert not (serve.root / "office" / ".locks").exists()  # lock records are the server's own


def test_cacert_flag_and_untrusted_certificate(tmp_path, serve, tokens):
    admin = _user(tmp_path, serve, tokens["admin"])
    r = admin.run("init", expect=1, env=admin.env(AMBER_CACERT=None))
    assert "not trusted" in r.stderr and "--cacert" in r.stderr
    admin.run("--cacert", serve.certs["ca"], "init", env=admin.env(AMBER_CACERT=None))
    admin.run("snapshots")


def test_wrong_and_revoked_tokens_exit_12(tmp_path, serve, tokens):
    admin = _user(tmp_path, serve, tokens["admin"])
    admin.run("init")
    wrong = _user(tmp_path, serve, tokens["admin"][:-4] + "AAAA")
    r = wrong.run("snapshots", expect=12)
    assert "refused the token" in r.stderr
    r = _user(tmp_path, serve, "").run("snapshots", expect=12, env=wrong.env(AMBER_TOKEN=None))
    assert "AMBER_TOKEN" in r.stderr
    extra = serve.token("office", "auditor")
    reader = _user(tmp_path, serve, extra["token"])
    reader.run("snapshots")
    serve.amber("serve", "token", "revoke", "--root", serve.root, extra["id"])
    r = reader.run("snapshots", expect=12)  # the running server refuses it at once
    assert "revoked" in r.stderr


def test_token_file(tmp_path, serve, tokens):
    admin = _user(tmp_path, serve, tokens["admin"])
    admin.run("init")
    f = tmp_path / "token"
    f.write_text(tokens["auditor"] + "\n")
    admin.run("snapshots", env=admin.env(AMBER_TOKEN=None, AMBER_TOKEN_FILE=f))


def test_wrong_role_exits_13(tmp_path, serve, tokens):
    r = _user(tmp_path, serve, tokens["backup"]).run("init", expect=13)
    assert "backup role, which may not create" in r.stderr
    _user(tmp_path, serve, tokens["admin"]).run("init")
    src = _tree(tmp_path)
    r = _user(tmp_path, serve, tokens["auditor"]).run("backup", src, expect=13)
    assert "auditor role, which may not add" in r.stderr
    other = serve.token("branch", "admin")["token"]  # a token of another repository
    r = _user(tmp_path, serve, other).run("snapshots", expect=13)
    assert "is for repository 'branch'" in r.stderr


def test_a_repository_the_server_does_not_have(tmp_path, serve):
    token = serve.token("ghost", "admin")["token"]
    r = _user(tmp_path, serve, token, name="ghost").run("snapshots", expect=10)
    assert "no repository 'ghost'" in r.stderr


def test_token_list_never_shows_a_token(serve, tokens):
    listed = serve.amber("serve", "token", "list", "--root", serve.root, "--json").stdout
    for secret in tokens.values():
        assert secret not in listed
    assert {"admin", "backup", "auditor"} <= {line["role"] for line in __import__("json").loads(listed)}
    stored = (serve.root / ".amber-server" / "tokens.json").read_text()
    for secret in tokens.values():
        assert secret not in stored


def test_a_token_that_cannot_be_one_is_usage(tmp_path, serve, tokens):
    _user(tmp_path, serve, tokens["admin"]).run("init")
    r = _user(tmp_path, serve, "t\u00f6ken with spaces").run("snapshots", expect=2)
    assert "printable ASCII" in r.stderr
