"""The library API: open or create a repository, then back up, browse, restore, check.

`Repository` is a facade. It owns the parts of one open repository — the
storage, the record layer, the blob store, trees, snapshots, lock events,
key files and the audit log — and hands the engine (backup/, restore/,
retention/, check, evidence, browse) only what each needs: every engine
module states that as a `typing.Protocol`, and this class satisfies them.
Every change first checks the audit log's history, then records its event
after the change is stored.

The facade is assembled here from one module per responsibility, each a base
class over the parts (parts.py): opening.py (init, open), keys.py, settings.py
(the config pin, the settings in force), retention.py (locks, holds, forget,
prune), snapshots.py (listing, choosing, tags), reading.py (trees and files),
auditing.py (the audit log, evidence), operations.py (backup, copy, restore,
drill) and integrity.py (check, repair). This module also names what the CLI
may use of the layers below, since the CLI imports nothing else of them.
"""

from __future__ import annotations

import datetime as _dt

from ..audit.witness import target as witness_target
from ..backup.archiver import BackupStats
from ..backup.scan import SourceScan
from ..backup.select import Listed, Selection, listed_sources
from ..backup.select import selection as source_selection
from ..browse import entry_json
from ..clock import duration_seconds
from ..copy import CopyReport
from ..evidence import EvidenceReport, verify_bundle
from ..repo.selection import SnapshotFilter, select_snapshots
from ..repo.selection import group as group
from ..repo.selection import newest as newest
from ..repo.selection import parse_group_by as parse_group_by
from ..repo.selection import tag_list as tag_list
from ..repo.snapshots import Snapshot
from ..restore.restorer import RestoreStats
from ..retention.policy import KeepPolicy
from ..storage.base import Retention
from ..storage.s3_policy import MAX_RETENTION_DAYS as MAX_RETENTION_DAYS
from ..storage.s3_policy import S3_ROLES as S3_ROLES
from ..storage.s3_policy import iam_policy as iam_policy
from .auditing import AuditOperations
from .integrity import CheckAndRepair
from .integrity import check_scope as check_scope
from .keys import KeyManagement
from .opening import CHUNK_AVG as CHUNK_AVG
from .opening import CHUNK_MAX as CHUNK_MAX
from .opening import CHUNK_MIN as CHUNK_MIN
from .opening import FORMAT_VERSION as FORMAT_VERSION
from .opening import Opening
from .operations import DataOperations
from .reading import TreeReading
from .retention import RetentionOperations
from .settings import SettingsAndPin
from .settings import parse_anomaly_thresholds as parse_anomaly_thresholds
from .settings import parse_lock_policy as parse_lock_policy
from .settings import thresholds_in_force as thresholds_in_force
from .snapshots import SnapshotListing


class Repository(
    Opening,
    KeyManagement,
    SettingsAndPin,
    RetentionOperations,
    SnapshotListing,
    TreeReading,
    AuditOperations,
    DataOperations,
    CheckAndRepair,
):
    """An open repository. Create with `Repository.init`, open with `Repository.open`."""


def open_repository(url: str, password: str, **kw) -> Repository:
    return Repository.open(url, password, **kw)


def keep_policy(
    last: int = 0,
    hourly: int = 0,
    daily: int = 0,
    weekly: int = 0,
    monthly: int = 0,
    yearly: int = 0,
    within: str | None = None,
) -> KeepPolicy:
    """A keep policy as restic spells it; `within` is a duration such as 30d."""
    span = _dt.timedelta(seconds=duration_seconds(within)) if within is not None else None
    return KeepPolicy(last, hourly, daily, weekly, monthly, yearly, span)


__all__ = [
    "Repository",
    "Snapshot",
    "open_repository",
    "select_snapshots",
    "SnapshotFilter",
    "keep_policy",
    "verify_bundle",
    "BackupStats",
    "Listed",
    "Selection",
    "SourceScan",
    "listed_sources",
    "source_selection",
    "CopyReport",
    "RestoreStats",
    "EvidenceReport",
    "KeepPolicy",
    "Retention",
    "entry_json",
    "witness_target",
]
