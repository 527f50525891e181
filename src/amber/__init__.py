"""amber: immutable, deduplicated, encrypted backups.

The public API: open or create a `Repository`, and the errors it raises.
Everything else is internal and may change between versions.

    import amber

    repo = amber.open_repository("/srv/backup", password)
    result = repo.backup(["/home"])
    for snap in repo.snapshots():
        ...
"""

from .errors import (
    AlreadyExists,
    AmberError,
    AnomalyAlarm,
    CheckpointError,
    IntegrityError,
    Locked,
    NotAllowed,
    NotFound,
    PartialBackup,
    ProofError,
    RepositoryExists,
    RepositoryNotFound,
    RestoreFailed,
    SignerUnverified,
    StorageError,
    TokenRefused,
    Unsupported,
    UsageError,
    WrongPassword,
)
from .version import __version__

# The library itself loads on first use: a process that needs only part of amber
# (a backup's worker processes, `amber --version`) does not import all of it.
_LIBRARY = {
    "Repository": "repository",
    "open_repository": "repository",
    "verify_bundle": "repository",
    "Snapshot": "repo.snapshots",
}


def __getattr__(name: str):
    module = _LIBRARY.get(name)
    if module is None:
        raise AttributeError(f"module 'amber' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "__version__",
    "Repository",
    "Snapshot",
    "open_repository",
    "verify_bundle",
    "AmberError",
    "AnomalyAlarm",
    "AlreadyExists",
    "CheckpointError",
    "IntegrityError",
    "Locked",
    "NotAllowed",
    "NotFound",
    "PartialBackup",
    "ProofError",
    "RepositoryExists",
    "RepositoryNotFound",
    "RestoreFailed",
    "SignerUnverified",
    "StorageError",
    "TokenRefused",
    "Unsupported",
    "UsageError",
    "WrongPassword",
]
