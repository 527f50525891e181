"""The in-memory backend against the storage contract."""

from amber.storage.memory import MemoryStorage
from amber.testing import StorageContract


class TestMemoryStorage(StorageContract):
    def make_storage(self, tmp_path, clock):
        return MemoryStorage(clock=clock)
