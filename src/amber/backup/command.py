"""`backup --stdin-from-command`: a command's standard output stored as one file.

The command runs while its output is chunked and stored; the snapshot is made only
when it exits 0 (`finish` raises otherwise, before anything names the data). What a
failed command's output left behind is at most packs no index or snapshot names:
the next backup reuses them (repo/adopt.py) and `prune` removes them.
"""

from __future__ import annotations

import shlex
import signal
import subprocess

from ..errors import AmberError


class CommandFailed(AmberError):
    """The command could not be started or did not exit 0: no snapshot was made."""


class SourceCommand:
    """The command, started on entering; killed on leaving unless `finish` saw it end."""

    def __init__(self, argv) -> None:
        if not argv:
            raise AmberError("--stdin-from-command needs a command to run (give it after --)")
        self.argv = [str(a) for a in argv]
        self.proc: subprocess.Popen | None = None

    @property
    def name(self) -> str:
        return shlex.join(self.argv)

    def __enter__(self) -> SourceCommand:
        try:  # its stderr is ours: the user sees what it says
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        except OSError as e:
            raise CommandFailed(f"cannot run {self.name}: {e.strerror or e}; no snapshot was made") from None
        return self

    @property
    def stdout(self):
        assert self.proc is not None and self.proc.stdout is not None
        return self.proc.stdout

    def finish(self) -> None:
        """Wait for the command (its output is read to the end); CommandFailed unless it exited 0."""
        assert self.proc is not None
        self.stdout.close()
        code = self.proc.wait()
        if code < 0:
            raise CommandFailed(f"{self.name} was killed by {_signal_name(-code)}; no snapshot was made")
        if code != 0:
            raise CommandFailed(f"{self.name} exited with status {code}; no snapshot was made")

    def __exit__(self, *exc) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:  # the backup failed first: stop the command
            proc.kill()
            proc.wait()
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()


def _signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"
