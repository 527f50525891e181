"""Fixtures for the audit-log and evidence tests: one repository on local storage per
test, and this client's memory (the remembered checkpoint under XDG_STATE_HOME, the
files cache under XDG_CACHE_HOME) private to the test."""
from __future__ import annotations

import pytest

from audit_helpers import init_repo


@pytest.fixture(autouse=True)
def _private_state(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture
def repo_path(tmp_path):
    return tmp_path / "repo"


@pytest.fixture
def repo(repo_path):
    return init_repo(repo_path)
