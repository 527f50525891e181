"""`check` and the `repair` commands.

`check` adds to the engine's report what only the facade knows (problems with
key files, the config and its pin, the storage's lock posture), records the
damage it found and the packs it read clean. Each repair is dry-run capable and
refuses, when not a dry run, a repository whose config or log history is unsound.
"""

from __future__ import annotations

import datetime as _dt
import os
import socket
from typing import TYPE_CHECKING

from .. import repair as repairing
from .. import trust
from ..check import CheckReport, check
from ..clock import duration_seconds, to_iso
from ..errors import AmberError, UsageError
from ..repo import verified
from ..repo.snapshots import Snapshot
from .parts import RepositoryParts

if TYPE_CHECKING:
    from . import Repository


class CheckAndRepair(RepositoryParts):
    """`check` and the `repair` commands."""

    def check(
        self,
        read_data: bool = False,
        progress=None,
        record: bool = True,
        *,
        read_data_subset: str | None = None,
        since: str | None = None,
        rng=None,
    ) -> CheckReport:
        """`read_data_subset` (N/M, P%, SIZE) and `since` (a DURATION) imply `read_data`
        (repo/verified.py); the packs read clean are recorded as verified."""
        self.require_read("check (it reads every snapshot's trees)")
        subset, window = check_scope(read_data_subset, since)
        read_data = read_data or subset is not None or window is not None
        rep = check(self, read_data=read_data, progress=progress, subset=subset, since=window, rng=rng)
        rep.damage_recorded = self.record_damage("check --read-data" if read_data else "check")
        recorded = {q for _b, q in self.damage.notes}  # a damage record wins over a clean read
        clean = [(p, n) for p, n in rep.clean_packs.items() if p not in recorded]
        names: list[str] = []
        if clean and record:  # a record counts only when this check's event names it
            now = to_iso(self.clock.now())
            rep.packs_verified_recorded, names = verified.record(
                self.records, clean, now, socket.gethostname(), self.warn
            )
        errors, warnings = trust.keys_and_config_problems(self, self._password)
        rep.errors.extend(errors)
        rep.warnings.extend(warnings)
        rep.warnings.extend(self.lock_posture())
        if record:
            try:
                self.log_event(
                    "check",
                    read_data=read_data,
                    read_subset=rep.read_subset,
                    packs_read=rep.packs_read,
                    packs_skipped_verified=rep.packs_skipped_verified,
                    ok=rep.ok,
                    errors=len(rep.errors),
                    damaged_packs=rep.damaged_packs[:100],
                    damage_recorded=rep.damage_recorded,
                    damage_healed=len(rep.damage_healed),
                    damage_unhealed=len(rep.damage_unhealed),
                    verified_records=names,
                )
            except AmberError as e:  # a read-only client can check without recording it
                self.warn(f"the check was not recorded in the audit log: {e}")
        return rep

    def repair_packs(
        self, *, source: "Repository | None" = None, path: str | None = None, dry_run: bool = False
    ) -> repairing.PacksReport:
        """Store lost blobs again (repair.py), from another repository with this one's id key
        or from files under `path`."""
        self.require_admin("repair packs")
        if (source is None) == (path is None):
            raise UsageError("repair packs needs --from REPOSITORY or --from-path PATH")
        if not dry_run:
            self.require_sound("repair packs")
            self.audit.check_history()
        if source is not None:
            repairing.require_same_ids(self, source)
            offer = repairing.offer_from_repository(source)
            where = source.storage.describe()
        else:
            offer = repairing.offer_from_path(self.keys, self.config["chunker"], os.path.abspath(path or ""))
            where = os.path.abspath(path or "")
        return repairing.repair_packs(self, offer, where, dry_run=dry_run)

    def repair_index(self, *, dry_run: bool = False):
        """Index files made again from the packs' headers; unreadable ones superseded (repair.py)."""
        self.require_admin("repair the index")
        if not dry_run:
            self.require_sound("repair the index")
            self.audit.check_history()
        return repairing.repair_index(self, dry_run=dry_run)

    def repair_snapshots(self, snaps: list[Snapshot] | None = None, *, dry_run: bool = False):
        """New snapshots without the files whose data is lost (repair.py); the originals stay."""
        self.require_admin("repair snapshots")
        if not dry_run:
            self.require_sound("repair snapshots")
            self.audit.check_history()
        chosen = snaps if snaps is not None else [s for s in self.snapshots() if s.readable]
        return repairing.repair_snapshots(self, chosen, dry_run=dry_run)


def check_scope(read_data_subset: str | None, since: str | None) -> tuple[verified.Subset | None, _dt.timedelta | None]:
    """`check --read-data-subset` and `--since` parsed; UsageError (exit 2) if malformed."""
    subset = verified.parse_subset(read_data_subset) if read_data_subset is not None else None
    window = _dt.timedelta(seconds=duration_seconds(since)) if since is not None else None
    return subset, window
