"""Fixtures of the server's tests: certificates, a running `amber serve`, tokens."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from serverproc import ServeProcess, make_certificates, release_immutable


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def serve(tmp_path, certs):
    """A running server over a root of its own; stopped (and its files made removable) after."""
    server = ServeProcess(tmp_path / "root", certs).start()
    yield server
    server.stop()
    release_immutable(server.root)
