import pytest

from .helpers import init_repo


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Keep the files cache of every test in its own folder, never in ~/.cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture
def repo_path(tmp_path):
    return tmp_path / "repo"


@pytest.fixture
def repo(repo_path):
    return init_repo(repo_path)
