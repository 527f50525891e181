"""The `rest:` backend against the whole storage contract, WORM cases included, through a real
`amber serve` process on 127.0.0.1 with real TLS. The server judges locks by its own clock: where
faketime is installed, the contract's `advance` moves that clock (libfaketime's timestamp file)."""

from __future__ import annotations

import datetime as dt
import functools
import itertools

import pytest
from serverproc import LIBFAKETIME, ServeProcess, release_immutable

from amber.clock import FakeClock
from amber.server.admin import add_token
from amber.storage.rest import RestStorage
from amber.testing import StorageContract

_names = itertools.count()


class TestRestStorage(StorageContract):
    time_travel = LIBFAKETIME is not None

    @pytest.fixture(scope="class")
    @classmethod
    def server(cls, tmp_path_factory, certs):
        server = ServeProcess(tmp_path_factory.mktemp("serve") / "root", certs, fake_clock=True).start()
        yield server
        server.stop()
        release_immutable(server.root)

    @pytest.fixture
    def clock(self, server):
        self.server = server
        return FakeClock(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=server.offset))

    def advance(self, clock, seconds):
        """Move the test's clock, and set the server's to the same time (not merely by the same
        amount: the real time that passed since would be added to it)."""
        super().advance(clock, seconds)
        self.server.set_offset((clock.now() - dt.datetime.now(dt.UTC)).total_seconds())

    def make_storage(self, tmp_path, clock):
        name = f"repo{next(_names)}"
        _, token = add_token(str(self.server.root), name, "admin", None)
        url = f"{self.server.base}/{name}"
        return RestStorage(url, token=token, cacert=str(self.server.certs["ca"]), create=True, clock=clock)

    def client_factory(self, storage):
        return functools.partial(RestStorage, storage.url, token=storage.token, cacert=storage.cacert)
