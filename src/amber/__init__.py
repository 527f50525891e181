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
    CheckpointError,
    IntegrityError,
    Locked,
    NotFound,
    PartialBackup,
    ProofError,
    RepositoryExists,
    RepositoryNotFound,
    RestoreFailed,
    SignerUnverified,
    StorageError,
    Unsupported,
    UsageError,
    WrongPassword,
)
from .repo.snapshots import Snapshot
from .repository import Repository, open_repository, verify_bundle
from .version import __version__

__all__ = [
    "__version__",
    "Repository",
    "Snapshot",
    "open_repository",
    "verify_bundle",
    "AmberError",
    "AlreadyExists",
    "CheckpointError",
    "IntegrityError",
    "Locked",
    "NotFound",
    "PartialBackup",
    "ProofError",
    "RepositoryExists",
    "RepositoryNotFound",
    "RestoreFailed",
    "SignerUnverified",
    "StorageError",
    "Unsupported",
    "UsageError",
    "WrongPassword",
]
