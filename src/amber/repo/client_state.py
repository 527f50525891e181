"""What one client keeps about a repository on its own machine, outside the repository.

    $XDG_CACHE_HOME/amber/<repository id>/files-<paths>.v3  the files cache (a lost cache costs only time)
    $XDG_CACHE_HOME/amber/<repository id>/snapshots/       copies of snapshot documents as stored (sealed)
    $XDG_CACHE_HOME/amber/<repository id>/log-summary.json what a backup needs from every audit event (audit/summary.py)
    $XDG_CACHE_HOME/amber/<repository id>/log-meaning.json what `audit verify` checks events against (replay.Meaning)
    $XDG_STATE_HOME/amber/<repository id>/checkpoint       the last audit-log checkpoint this client verified
    $XDG_STATE_HOME/amber/<repository id>/clock.json       the latest time this client has seen
    $XDG_STATE_HOME/amber/<repository id>/witnesses.json   the witnesses of the audit log it knows (audit/witness.py)
    $XDG_STATE_HOME/amber/<repository id>/witness/<name>/  the checkpoints an `amber serve` witness cosigned

State is what a client must not lose to detect a rollback or a moved clock.
"""

from __future__ import annotations

import os


def cache_dir(repository_id: str) -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "amber", repository_id)


def state_file(repository_id: str, name: str) -> str:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "amber", repository_id, name)
