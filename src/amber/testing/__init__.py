"""Test support shipped with amber: the storage contract and fault-injecting storage.

A backend's test module subclasses `StorageContract` and says how to make one
instance of the backend; every case of the contract then runs against it::

    from amber.testing import StorageContract

    class TestMyStorage(StorageContract):
        def make_storage(self, tmp_path, clock):
            return MyStorage(tmp_path / "store", clock=clock)

`StorageContract` needs pytest; the fault-injecting wrappers in `amber.testing.faults` do not.
Production wrappers (such as `AppendOnlyStorage`) live in `amber.storage.wrappers`.
"""

from __future__ import annotations

from .faults import FailingStorage, InjectedFault

__all__ = ["StorageContract", "FailingStorage", "InjectedFault"]


def __getattr__(name: str):
    if name == "StorageContract":
        import pytest

        pytest.register_assert_rewrite(f"{__name__}.contract")  # readable assertion failures
        from .contract import StorageContract

        return StorageContract
    raise AttributeError(name)
