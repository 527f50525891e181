"""What a backup reads: the paths given, as a tree of selections, and owner names."""

from __future__ import annotations

import grp
import os
import pwd

from ..errors import NotFound


class Names:
    """uid/gid → name, looked up once each (None where the system has no name for it)."""

    def __init__(self) -> None:
        self.users: dict[int, str | None] = {}
        self.groups: dict[int, str | None] = {}

    def user(self, uid: int) -> str | None:
        return _lookup(self.users, uid, lambda: pwd.getpwuid(uid).pw_name)

    def group(self, gid: int) -> str | None:
        return _lookup(self.groups, gid, lambda: grp.getgrgid(gid).gr_name)


def _lookup(known: dict[int, str | None], num: int, name) -> str | None:
    if num not in known:
        try:
            known[num] = name()
        except KeyError:
            known[num] = None
    return known[num]


def selection_tree(paths: list[str]) -> dict:
    """Absolute paths → nested dict of components; None marks a path taken whole."""
    root: dict = {}
    for p in sorted(paths, key=len):
        parts = [x for x in p.split("/") if x]
        node = root
        for i, part in enumerate(parts):
            if node is None:
                break  # an ancestor is taken whole already
            if i == len(parts) - 1:
                node[part] = None
            else:
                node = node.setdefault(part, {})
    return root


def normalize_paths(paths) -> list[str]:
    out = []
    for p in paths:
        ap = os.path.normpath(os.path.abspath(os.path.expanduser(p)))
        if not os.path.lexists(ap):
            raise NotFound(f"{p}: no such file or directory")
        out.append(ap)
    return sorted(set(out))
