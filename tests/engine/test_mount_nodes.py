"""The node ids a libfuse 3 mount gives the kernel (mount/lowlevel.py Nodes): counted with
every lookup, dropped when the kernel forgets them all, never given twice."""

from __future__ import annotations

import errno

import pytest

from amber.mount.lowlevel import Nodes


def test_a_path_keeps_its_id_while_the_kernel_knows_it():
    nodes = Nodes()
    assert nodes.path(1) == "/" and nodes.known("/") == 1
    a = nodes.upcoming("/a")
    assert nodes.known("/a") is None  # not given yet
    assert nodes.give("/a") == a
    assert nodes.give("/a") == a  # a second lookup: the same id, counted twice
    b = nodes.give("/b")
    assert b != a and nodes.path(b) == "/b"
    nodes.forget(a, 1)
    assert nodes.path(a) == "/a" and nodes.known("/a") == a  # one lookup still counted
    nodes.forget(a, 1)
    assert nodes.known("/a") is None
    with pytest.raises(OSError) as e:
        nodes.path(a)
    assert e.value.errno == errno.ESTALE


def test_ids_are_never_given_twice_and_the_root_is_never_forgotten():
    nodes = Nodes()
    first = nodes.give("/a")
    nodes.forget(first, 5)  # more than was counted: gone, and no harm
    again = nodes.give("/a")
    assert again != first  # a store to the old id reaches nothing
    seen = {1, first, again}
    for n in range(100):
        ino = nodes.give(f"/f{n}")
        assert ino not in seen
        seen.add(ino)
        nodes.forget(ino, 1)
    nodes.forget(1, 10)
    assert nodes.path(1) == "/"
    nodes.forget(12345, 1)  # an id never given: ignored
    assert len(nodes) == 2  # the root and /a


def test_content_is_stored_only_for_the_file_the_kernel_was_told_of():
    nodes = Nodes()
    ino = nodes.give("/s/a", {"st_size": 10, "st_mtime": 5})
    assert nodes.told("/s/a", 10, 5) == ino
    assert nodes.told("/s/a", 11, 5) is None  # the name stands for another file now
    assert nodes.told("/s/a", 10, 6) is None
    assert nodes.told("/s/b", 10, 5) is None  # never told
    nodes.give("/s/a", {"st_size": 11, "st_mtime": 5})  # told again, with what it is now
    assert nodes.told("/s/a", 11, 5) == ino
    nodes.forget(ino, 2)
    assert nodes.told("/s/a", 11, 5) is None
