"""Fixtures for amber on `s3:` repositories: one user and one fresh bucket per test."""
from __future__ import annotations

import pytest

from .helpers import S3Amber


@pytest.fixture
def s3amber(tmp_path, s3_server) -> S3Amber:
    """A user of amber with an `s3:` repository URL on a fresh Object Lock bucket, not initialised."""
    return S3Amber(tmp_path / "amber", s3_server, s3_server.new_bucket(object_lock=True))


@pytest.fixture
def s3repo(s3amber) -> S3Amber:
    """The same user with an initialised repository."""
    s3amber.init()
    return s3amber
