"""`amber copy` to and from `rest:` repositories on `amber serve`, each side with its own token."""

from __future__ import annotations

import os

from rest_helpers import RestAmber

from cli_helpers import Amber, tree_state, write


def test_copy_between_two_rest_repositories_and_to_local(tmp_path, serve):
    office = RestAmber(tmp_path / "office", serve, "office", serve.token("office", "admin")["token"], password="o")
    office.run("init")
    write(tmp_path / "d" / "ledger.csv", os.urandom(400_000))
    write(tmp_path / "d" / "notes.txt", b"notes\n")
    sid = office.backup(tmp_path / "d", args=("--retain", "3d"))["snapshot_id"]

    offsite = RestAmber(tmp_path / "offsite", serve, "offsite", serve.token("offsite", "admin")["token"])
    env = offsite.env(AMBER_FROM_PASSWORD="o", AMBER_FROM_TOKEN=office.token)
    offsite.run("init", "--copy-params-from", office.url, env=env)
    out = offsite.run("copy", "--from", office.url, "--json", env=env).json()
    cid = out["copied"][0]["snapshot"]
    assert out["refused"] == [] and not out["rechunked"]
    copied = offsite.snapshots()[0]
    assert (
        copied["retention"]["mode"] == "governance" and copied["content_root"] == office.snapshots()[0]["content_root"]
    )
    assert offsite.run("copy", "--from", office.url, "--json", env=env).json()["copied"] == []
    offsite.run("check", "--read-data")

    local = Amber(tmp_path / "local")
    local_env = local.env(
        AMBER_FROM_PASSWORD=offsite.password, AMBER_TOKEN=offsite.token, AMBER_CACERT=serve.certs["ca"]
    )
    local.run("init", env=local_env)
    out = local.run("copy", "--from", offsite.url, "--json", env=local_env)
    assert "chunked again" in out.stderr
    lid = out.json()["copied"][0]["snapshot"]
    a, b = tmp_path / "a", tmp_path / "b"
    office.run("restore", sid, "--target", a)
    local.run("restore", lid, "--target", b, "--verify")
    inner = str(tmp_path / "d").lstrip("/")
    assert tree_state(b / inner) == tree_state(a / inner)
    assert cid
