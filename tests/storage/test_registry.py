"""Backends are found by URL scheme."""

import pytest

from amber.errors import UsageError
from amber.storage import open_storage
from amber.storage.local import LocalStorage
from amber.storage.memory import MemoryStorage


def test_plain_and_local_paths_open_local_storage(tmp_path):
    for url in (str(tmp_path / "a"), f"local:{tmp_path / 'b'}"):
        s = open_storage(url, create=True)
        assert isinstance(s, LocalStorage)
        assert s.root.startswith(str(tmp_path))


def test_memory_urls_name_one_store_each():
    a = open_storage("memory:registry-test-a")
    assert isinstance(a, MemoryStorage)
    assert open_storage("memory:registry-test-a") is a
    assert open_storage("memory:registry-test-b") is not a


@pytest.mark.parametrize("url", ["nosuchscheme:bucket/prefix", "local:"])
def test_bad_urls_are_usage_errors(url):
    with pytest.raises(UsageError):
        open_storage(url)
