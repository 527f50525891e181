"""Whether a backup's run marker (FORMAT.md §17.4) belongs to a process that is still alive.

A run marker is write-once, so a backup that dies leaves it behind; prune
used to wait RUN_TIMEOUT (24 h) for any marker no snapshot names. A marker
now names its process: host name, machine id, kernel boot id, pid namespace,
pid and the process's start time (in clock ticks since boot, from
/proc/<pid>/stat). On the host that wrote it (same host name and machine
id), the run is dead when the kernel was booted since (the boot id differs,
and a machine id tells this machine from others of its name), or, in the
same pid namespace, when no process has that pid or the one that has it
started at another time (the pid was reused). A marker from another host,
or one that names too little to tell, stays respected until it is
RUN_TIMEOUT old — or, when its marker announces heartbeats (`beat`: their
interval), until no heartbeat was seen for MISSED_BEATS intervals: a long
backup stays respected past RUN_TIMEOUT, and a dead one is noticed within
half an hour. Nothing here reads the repository: `Heartbeat` is handed the
function that writes one.
"""

from __future__ import annotations

import datetime as _dt
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import AmberError

MAX_TEXT = 256  # characters of host, boot_id and machine_id in a marker
BEAT_EVERY = 300  # seconds between a running backup's heartbeats
MISSED_BEATS = 6  # a run of another host silent for this many intervals is presumed dead


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read().strip()[:MAX_TEXT] or None
    except OSError:
        return None


def pid_start(pid: int) -> int | None:
    """When process `pid` started, in clock ticks since boot (field 22 of /proc/<pid>/stat)."""
    stat = _read(f"/proc/{pid}/stat")
    if stat is None or ")" not in stat:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def _pidns() -> int | None:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None


def pid_alive(pid: int, started: int | None) -> bool:
    """Whether `pid` runs here and, when `started` is known, is the process that started then."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    except (OverflowError, ValueError):
        return False
    return started is None or pid_start(pid) in (None, started)


@dataclass(frozen=True, slots=True)
class Host:
    """This machine, as a run marker names it."""

    host: str
    machine_id: str | None
    boot_id: str | None
    pidns: int | None

    @classmethod
    def current(cls) -> "Host":
        return cls(
            socket.gethostname()[:MAX_TEXT],
            _read("/etc/machine-id"),
            _read("/proc/sys/kernel/random/boot_id"),
            _pidns(),
        )

    def marker(self, pid: int) -> dict:
        """The fields a run marker of process `pid` of this host carries (those known)."""
        doc = {"host": self.host, "pid": pid, "machine_id": self.machine_id, "boot_id": self.boot_id}
        doc.update(pidns=self.pidns, pid_start=pid_start(pid))
        return {k: v for k, v in doc.items() if v is not None}

    def is_dead(self, doc: dict, alive: Callable[[int, int | None], bool] = pid_alive) -> bool:
        """Whether the run of marker `doc` is known dead: written on this host by a process that
        is gone. False whenever it cannot be told (another host, fields missing)."""
        return self.verdict(doc, alive) is False

    def verdict(self, doc: dict, alive: Callable[[int, int | None], bool] = pid_alive) -> bool | None:
        """True: the run's process runs on this host; False: it is gone; None: cannot be told
        here (another host, another pid namespace, fields missing)."""
        if doc.get("host") != self.host or doc.get("machine_id") != self.machine_id or self.boot_id is None:
            return None
        if doc.get("boot_id") is None:
            return None
        if doc["boot_id"] != self.boot_id:
            # rebooted since: every process of that boot is gone. Without a machine id, two
            # machines of one host name (containers) would look like one host rebooted
            return False if self.machine_id is not None else None
        if doc.get("pidns") is None or doc.get("pidns") != self.pidns or "pid" not in doc:
            return None
        return alive(doc["pid"], doc.get("pid_start"))


def silent_too_long(doc: dict, last_seen: _dt.datetime, now: _dt.datetime) -> bool | None:
    """For a marker announcing heartbeats, whether its run has been silent MISSED_BEATS
    intervals since `last_seen` (its marker's or latest heartbeat's time); None when the
    marker announces none (then RUN_TIMEOUT applies)."""
    beat = doc.get("beat")
    if not beat:
        return None
    return now - last_seen > _dt.timedelta(seconds=beat * MISSED_BEATS)


class Heartbeat:
    """Calls `beat()` every `every` seconds on a daemon thread, from `start()` to `stop()`.
    A beat that fails (storage away for a while) is skipped: the next one may pass."""

    def __init__(self, beat: Callable[[], None], every: float | None = None) -> None:
        self.beat, self.every = beat, every or BEAT_EVERY
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="amber-heartbeat", daemon=True)

    def start(self) -> "Heartbeat":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.beat()
            except (AmberError, OSError):
                continue
