"""Test support shipped with amber: the storage contract and fault-injecting storage.

A backend's test module subclasses `StorageContract` and says how to make one
instance of the backend; every case of the contract then runs against it::

    from amber.testing import StorageContract

    class TestMyStorage(StorageContract):
        def make_storage(self, tmp_path, clock):
            return MyStorage(tmp_path / "store", clock=clock)

`StorageContract` needs pytest; the wrappers in `amber.testing.faults` do not.
"""
from __future__ import annotations

from .faults import AppendOnlyStorage, FailingStorage, InjectedFault

__all__ = ["StorageContract", "AppendOnlyStorage", "FailingStorage", "InjectedFault"]


def __getattr__(name: str):
    if name == "StorageContract":
        import pytest

        pytest.register_assert_rewrite(f"{__name__}.contract")  # readable assertion failures
        from .contract import StorageContract

        return StorageContract
    raise AttributeError(name)
