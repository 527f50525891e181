"""Fixtures for the `amber` command-line tests: a private user of amber per test.

Commands run in this process unless the test is marked `subprocess`."""

from __future__ import annotations

import pytest

from cli_helpers import AMBER, Amber, make_tree


@pytest.fixture(scope="session")
def amber_exe() -> str:
    if not AMBER:
        pytest.fail("no `amber` executable next to the interpreter or on PATH")
    return AMBER


@pytest.fixture
def amber(tmp_path, amber_exe, in_subprocess) -> Amber:
    """A user of amber with no repository yet."""
    return Amber(tmp_path / "amber", subprocess=in_subprocess)


@pytest.fixture
def repo(amber) -> Amber:
    """A user of amber with a new repository (made cheaply: `amber init` has tests of its own)."""
    amber.create()
    return amber


@pytest.fixture
def tree(tmp_path) -> dict:
    """A source tree of every kind of entry, names that are not UTF-8 included."""
    return make_tree(tmp_path / "src")


@pytest.fixture
def utf8_tree(tmp_path) -> dict:
    """The same tree with only UTF-8 names, for comparing JSON listings entry by entry."""
    return make_tree(tmp_path / "src", non_utf8=False, big=3 << 20)
