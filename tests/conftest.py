"""Fixtures of the whole suite: private client state, one repository per test, the S3 server."""

import os

import pytest

from s3server import CREDENTIALS, S3Server
from sources import init_repo


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "subprocess: runs the real `amber` executable in child processes (entry point, signals, "
        "terminals, process isolation); other command-line tests run it in-process",
    )


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


@pytest.fixture
def in_subprocess(request) -> bool:
    """Whether this test's `amber` commands run as real processes (marked `subprocess`)."""
    return request.node.get_closest_marker("subprocess") is not None


@pytest.fixture
def clock():
    """The clock of `repo`: the system's here; packages that need a fake one override this."""
    return None


@pytest.fixture
def repo_path(tmp_path):
    return tmp_path / "repo"


@pytest.fixture
def repo(repo_path, clock):
    """A new repository on local storage (library level; tests/cli has its own `repo`)."""
    return init_repo(repo_path, clock)


@pytest.fixture
def outside(tmp_path):
    """A folder outside every restore target, with a file an attack would overwrite."""
    d = tmp_path / "outside"
    d.mkdir()
    (d / "victim").write_bytes(b"must stay\n")
    return d
