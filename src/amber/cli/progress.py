"""Live progress on a terminal: a rich bar fed by polling a stats object.

`frame` draws the lines of a bar that tells the time: a percentage of a known
total, an ETA from the rate so far, and the current file, never wider than an
80-column terminal (a long path is cut in its middle).
"""

from __future__ import annotations

import os
import sys
import threading
import time

MAX_WIDTH = 80  # progress fits an 80-column terminal, however wide the one it is shown on


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
            try:  # the last frame: what was done in the end
                self._live.update(self.render())
            except Exception:  # a display glitch must never break a command
                pass
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


def width() -> int:
    """The columns progress may use: the terminal's (on stderr), at most MAX_WIDTH."""
    try:
        cols = os.get_terminal_size(sys.stderr.fileno()).columns
    except (OSError, ValueError):
        cols = 0
    return min(cols or MAX_WIDTH, MAX_WIDTH)


def clock(seconds: float) -> str:
    """m:ss, or h:mm:ss from an hour on."""
    s = max(int(seconds + 0.5), 0)
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def eta(done: float, total: float | None, started: float) -> str:
    """The time left at the rate so far (`--:--` while there is no rate or no total)."""
    if not total or done <= 0:
        return "ETA --:--"
    if done >= total:
        return "ETA 0:00"
    elapsed = time.monotonic() - started
    return f"ETA {clock(elapsed * (total - done) / done)}"


def middle(text: str, cols: int) -> str:
    """`text` cut in its middle to `cols` characters (names that are not UTF-8 shown with
    a replacement character: the terminal cannot take them)."""
    text = os.fsencode(text).decode("utf-8", "replace")
    if len(text) <= cols:
        return text
    if cols <= 1:
        return text[:cols]
    head = (cols - 1) // 2
    return text[:head] + "\u2026" + text[len(text) - (cols - 1 - head) :]


def frame(done: float, total: float | None, text: str, started: float, current: str = "", final: bool = False):
    """A bar with the percentage of `total` done, `text` and the ETA, then the current file.

    `total` None: not known yet (the bar pulses, no percentage); `final`: the work is
    over, whatever the total said (100%)."""
    from rich.text import Text

    cols = width()
    if final:
        total = max(total or 0, done) or 1
        done = total
    known = bool(total)
    pct = f"{100 * min(done, total) / total:5.1f}% " if known else ""  # type: ignore[operator]
    head = f"{pct}{text} {eta(done, total, started)}"
    bar_cols = max(0, min(30, cols - len(head) - 1))
    line = Text(no_wrap=True, overflow="crop")
    if bar_cols:
        filled = int(bar_cols * min(done, total) / total) if known else 0  # type: ignore[operator]
        line.append("\u2501" * filled, style="magenta")
        line.append(("\u2501" if known else "\u254c") * (bar_cols - filled), style="grey37")
        line.append(" ")
    line.append(head[: cols - bar_cols - (1 if bar_cols else 0)])
    if current:
        line.append("\n" + middle(current, cols))
    return line
