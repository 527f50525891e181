"""One exception tree for amber; `exit_code` maps each to the CLI contract."""
from __future__ import annotations


class AmberError(Exception):
    """Base of every expected failure. The message is shown to the user as is."""

    exit_code = 1


class UsageError(AmberError):
    exit_code = 2


class NotFound(AmberError):
    """A key, snapshot or path that does not exist."""


class AlreadyExists(AmberError):
    """A write-once object exists already; storage never overwrites."""


class RepositoryNotFound(AmberError):
    exit_code = 10


class RepositoryExists(AmberError):
    pass


class WrongPassword(AmberError):
    exit_code = 12


class IntegrityError(AmberError):
    """Stored bytes failed authentication, a hash or a structural check."""

    exit_code = 20


class Locked(AmberError):
    """Refused because the object is under retention or legal hold."""

    exit_code = 30


class Unsupported(AmberError):
    """The backend cannot do what was asked (e.g. object lock)."""


class StorageError(AmberError):
    """The backend failed for a reason outside amber (I/O, network, full disk)."""


class PartialBackup(AmberError):
    """A snapshot was made, but some source files could not be read."""

    exit_code = 3


def exit_code_for(exc: BaseException) -> int:
    if isinstance(exc, AmberError):
        return exc.exit_code
    return 1
