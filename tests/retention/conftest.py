import pytest

from amber.clock import FakeClock

from .helpers import START


@pytest.fixture
def clock():
    """One fake clock for the repository, its storage and the test: locks expire when the test
    moves it, never by sleeping."""
    return FakeClock(START)
