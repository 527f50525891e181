"""Fixtures for amber on `s3:` repositories: one user and one fresh bucket per test."""

from __future__ import annotations

import pytest

from .helpers import S3Amber


@pytest.fixture
def s3amber(tmp_path, s3_server, in_subprocess) -> S3Amber:
    """A user of amber with an `s3:` repository URL on a fresh Object Lock bucket, not initialised."""
    return S3Amber(tmp_path / "amber", s3_server, s3_server.new_bucket(object_lock=True), subprocess=in_subprocess)


@pytest.fixture
def s3repo(s3amber) -> S3Amber:
    """The same user with a new repository (made cheaply: `amber init` on S3 is tested in test_s3_cli.py)."""
    s3amber.create()
    return s3amber
