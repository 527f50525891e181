import os

import pytest

from s3server import CREDENTIALS, S3Server


@pytest.fixture(scope="session")
def s3_server():
    pytest.importorskip("boto3")
    pytest.importorskip("moto")
    for k, v in CREDENTIALS.items():
        os.environ[k] = v
    server = S3Server().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _private_client_state(tmp_path_factory, monkeypatch):
    """Each test gets its own files cache and remembered checkpoints, never the real home's."""
    base = tmp_path_factory.mktemp("client")
    monkeypatch.setenv("XDG_STATE_HOME", str(base / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(base / "cache"))
