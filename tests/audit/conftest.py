"""Fixtures for the audit-log and evidence tests: one repository on local storage per
test; this client's memory (remembered checkpoint, files cache) is private to every test
through tests/conftest.py."""
from __future__ import annotations

import pytest

from audit_helpers import init_repo


@pytest.fixture
def repo_path(tmp_path):
    return tmp_path / "repo"


@pytest.fixture
def repo(repo_path):
    return init_repo(repo_path)
