import pytest

from .helpers import init_repo


@pytest.fixture
def repo_path(tmp_path):
    return tmp_path / "repo"


@pytest.fixture
def repo(repo_path):
    return init_repo(repo_path)
