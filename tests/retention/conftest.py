import pytest

from amber.clock import FakeClock

from .helpers import START, init_repo


@pytest.fixture(autouse=True)
def _private_state(tmp_path, monkeypatch):
    """Files cache and clock-guard memory of every test in its own folders."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


@pytest.fixture
def clock():
    return FakeClock(START)


@pytest.fixture
def repo_path(tmp_path):
    return tmp_path / "repo"


@pytest.fixture
def repo(repo_path, clock):
    return init_repo(repo_path, clock)
