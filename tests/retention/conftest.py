import pytest

from amber.clock import FakeClock

from .helpers import START, init_repo


@pytest.fixture
def clock():
    return FakeClock(START)


@pytest.fixture
def repo_path(tmp_path):
    return tmp_path / "repo"


@pytest.fixture
def repo(repo_path, clock):
    return init_repo(repo_path, clock)
