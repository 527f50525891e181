"""Fixtures of the whole suite: private client state, one repository per test, the S3 servers."""

import os
import tempfile
import uuid
from pathlib import Path

import pytest

import cephrgw

from s3server import CREDENTIALS, S3_SERVERS, S3Server
from sources import init_repo


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "subprocess: runs the real `amber` executable in child processes (entry point, signals, "
        "terminals, process isolation); other command-line tests run it in-process",
    )
    config.addinivalue_line(
        "markers", "entries_only: a test of the audit log's layout before tiles (log/entries/<slot>)"
    )


@pytest.fixture(scope="session", params=S3_SERVERS)
def s3_server(request):
    """Every S3 test runs twice: on moto (AWS's semantics, as documented) and on Ceph RGW (a real
    Object Lock enforcer, which ignores `If-None-Match` on versioned buckets). `server.kind` says
    which, for the few expectations that differ."""
    return request.getfixturevalue(f"{request.param}_server")


@pytest.fixture(scope="session")
def moto_server():
    pytest.importorskip("boto3")
    pytest.importorskip("moto")
    for k, v in CREDENTIALS.items():
        os.environ[k] = v
    server = S3Server().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def rgw_server(request):
    """A single-node Ceph RGW (tests/cephrgw.py), one for the whole run: the pytest-xdist workers
    share it through a folder named after the run; the last worker to finish stops it."""
    pytest.importorskip("boto3")
    if cephrgw.missing():
        pytest.skip(
            f"Ceph RGW is not installed (missing {', '.join(cephrgw.missing())}; quickstart.py test installs it)"
        )
    for k, v in CREDENTIALS.items():
        os.environ[k] = v
    if os.environ.get("AMBER_TEST_RGW"):  # a cluster started by `python tests/cephrgw.py start DIR`
        yield cephrgw.CephRGW.load(Path(os.environ["AMBER_TEST_RGW"]))
        return
    workerinput = getattr(request.config, "workerinput", None)
    run = workerinput["testrunuid"] if workerinput else uuid.uuid4().hex
    run_dir = Path(tempfile.gettempdir()) / f"amber-rgw-{run}"
    owner = os.getppid() if workerinput else os.getpid()  # xdist's controller, or this process
    try:
        server = cephrgw.acquire(run_dir, owner)
    except RuntimeError as e:
        pytest.fail(str(e))
    yield server
    cephrgw.release(run_dir)


@pytest.fixture(autouse=True)
def _private_client_state(tmp_path_factory, monkeypatch):
    """Each test gets its own files cache and remembered checkpoints, never the real home's."""
    base = tmp_path_factory.mktemp("client")
    monkeypatch.setenv("XDG_STATE_HOME", str(base / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(base / "cache"))


@pytest.fixture
def legacy_log(monkeypatch):
    """Repositories made in the test keep the audit log in the layout before tiles
    (`log/entries/<slot>`), as amber versions before tiles wrote it: the tests of that layout."""
    monkeypatch.setenv("AMBER_LOG_LAYOUT", "entries")


@pytest.fixture(params=["entries", "tiles"])
def each_log_layout(request, monkeypatch) -> str:
    """Run a test on both audit-log layouts; one marked `entries_only` on the layout before tiles."""
    if request.param == "entries":
        monkeypatch.setenv("AMBER_LOG_LAYOUT", "entries")
    elif request.node.get_closest_marker("entries_only"):
        pytest.skip("a test of the layout before tiles")
    return request.param


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
