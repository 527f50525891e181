"""Live progress on a terminal: a rich bar fed by polling a stats object."""

from __future__ import annotations

import sys
import threading
import time


class Live:
    """Polls `render()` a few times a second and shows it on stderr, only on a terminal."""

    def __init__(self, render, enabled: bool) -> None:
        self.render = render
        self.enabled = enabled and sys.stderr.isatty()
        self._stop = threading.Event()
        self._thread = None
        self._live = None

    def __enter__(self):
        if self.enabled:
            from rich.console import Console
            from rich.live import Live as RichLive

            self._live = RichLive(self.render(), console=Console(stderr=True), transient=True, refresh_per_second=4)
            self._live.__enter__()
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def _loop(self):
        while not self._stop.wait(0.25):
            try:
                self._live.update(self.render())
            except Exception:  # a display glitch must never break a backup
                pass

    def __exit__(self, *exc):
        if self._live is not None:
            self._stop.set()
            self._thread.join()
            self._live.__exit__(*exc)
        return False


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n} B"


def rate(done: float, started: float) -> str:
    el = max(time.monotonic() - started, 1e-6)
    return f"{human_bytes(done / el)}/s"


def bar(done: float, total: float | None, text: str):
    """One line: a bar (pulsing while the total is unknown), then the text."""
    from rich.progress_bar import ProgressBar
    from rich.table import Table

    line = Table.grid(padding=(0, 1))
    line.add_column(width=30)
    line.add_column()
    if total:
        line.add_row(ProgressBar(total=total, completed=min(done, total), width=30), text)
    else:
        line.add_row(ProgressBar(total=None, pulse=True, width=30), text)
    return line
