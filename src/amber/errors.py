"""One exception tree for amber; each class carries the exit code of the CLI contract.

Messages say what went wrong in the library's words. Where the user can do
something about it, `remedy` names it symbolically (see REMEDIES); the CLI
turns that into a hint naming its own flags, so the library never does.
"""

from __future__ import annotations

# What a user can do about an error. The CLI maps each to a hint in its own words.
REMEDIES = frozenset(
    {
        "init",  # create the repository first
        "check",  # run a check to see what is damaged
        "audit-verify",  # verify the audit log
        "bypass-governance",  # an administrator may bypass governance retention
        "trust-clock",  # the clock was checked by a person: proceed anyway
        "keep-rule",  # give at least one keep rule
        "hold-reason",  # a legal hold needs a reason
        "lock-period",  # give exactly one of a duration or an end date
        "retention-mode",  # the mode is governance or compliance
        "stdin-name",  # the name given to data read from standard input
        "backup-paths",  # give something to back up
        "repair-config",  # put the config pinned by the init event back
    }
)


class AmberError(Exception):
    """Base of every expected failure. The message is shown to the user as is."""

    exit_code = 1

    def __init__(self, message: str = "", *, remedy: str | None = None) -> None:
        super().__init__(message)
        if remedy is not None and remedy not in REMEDIES:
            raise ValueError(f"unknown remedy {remedy!r}")
        self.remedy = remedy


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


class TokenRefused(WrongPassword):
    """A repository server did not accept the token: wrong, revoked or expired (HTTP 401)."""


class NotAllowed(AmberError):
    """The key or token lacks the right: a backup token asked to delete (HTTP 403)."""

    exit_code = 13


class IntegrityError(AmberError):
    """Stored bytes failed authentication, a hash or a structural check."""

    exit_code = 20


class SignerUnverified(AmberError):
    """Evidence that is consistent, but whose signer nobody vouched for: it was checked only
    against the key it carries itself, which anyone who made it could have put there."""

    exit_code = 21


class CheckpointError(IntegrityError, ValueError):
    """A checkpoint note or verifier key that is malformed or whose signature does not verify."""


class ProofError(IntegrityError, ValueError):
    """A Merkle inclusion or consistency proof that does not verify, or is malformed."""


class RestoreFailed(IntegrityError):
    """A restore finished, but some files could not be written or did not verify.

    `problems` lists each one; `stats` is the restore's own account of what it wrote.
    """

    def __init__(self, problems: list[str], stats: object = None, verified: bool = False) -> None:
        self.problems = list(problems)
        self.stats = stats
        self.verified = verified
        lines = self.problems[:50]
        more = len(self.problems) - len(lines)
        msg = f"{len(self.problems)} problem(s) during restore:\n  " + "\n  ".join(lines)
        if more > 0:
            msg += f"\n  … and {more} more"
        super().__init__(msg)


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


class AnomalyAlarm(AmberError):
    """A snapshot was made, but its changes against the parent look like ransomware
    (backup/anomaly.py); the parent is held unless the backup was told not to."""

    exit_code = 4


def exit_code_for(exc: BaseException) -> int:
    if isinstance(exc, AmberError):
        return exc.exit_code
    return 1
