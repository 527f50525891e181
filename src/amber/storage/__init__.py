"""Where bytes live: the Storage interface, the rules every backend shares, the backends by URL scheme."""

from .base import COMPLIANCE, GOVERNANCE, Capabilities, ObjectInfo, Retention, Storage, StorageWrapper
from .registry import open_storage, register

__all__ = [
    "Capabilities",
    "ObjectInfo",
    "Retention",
    "Storage",
    "StorageWrapper",
    "open_storage",
    "register",
    "GOVERNANCE",
    "COMPLIANCE",
]
