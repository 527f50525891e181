"""The one way a command's result reaches the user: JSON, human text, or an error on stderr.

A command returns an `Output`; the command decorator hands it to `render`. With
`--json`, stdout holds exactly one JSON document (`print_json`) and nothing
else; without it, the human text. Errors are printed by `fail` alone, with a
hint in the CLI's own words (naming its flags) for the library's `remedy`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from ..errors import exit_code_for

# What to tell a user for each of the library's remedies (amber.errors.REMEDIES).
HINTS = {
    "init": "run `amber init` first",
    "check": "run `amber check` to see what is damaged",
    "audit-verify": "run `amber audit verify`",
    "bypass-governance": "an administrator may pass --bypass-governance",
    "trust-clock": "check the clock, then pass --trust-clock",
    "keep-rule": "give at least one --keep-* rule",
    "hold-reason": "give it with --reason TEXT",
    "lock-period": "give exactly one of --for DURATION or --until DATE",
    "retention-mode": "--mode and --retention-mode take governance or compliance",
    "stdin-name": "choose another with --stdin-name NAME",
    "backup-paths": "give at least one path (or --stdin)",
    "repair-config": "run `amber repair config` to put the pinned config back",
}


@dataclass(frozen=True, slots=True)
class Output:
    """What a command shows: `data` for --json, `text` otherwise (lines, or a function that
    echoes them), then `error` raised for its exit code once the output is out."""

    data: Any = None
    text: str | list[str] | Callable[[], None] | None = None
    error: BaseException | None = None


def render(out: Output | None, as_json: bool = False) -> None:
    if out is None:
        return
    if as_json:
        print_json(out.data)
    elif callable(out.text):
        out.text()
    elif isinstance(out.text, str):
        click.echo(out.text)
    elif out.text is not None:
        for line in out.text:
            click.echo(line)
    if out.error is not None:
        raise out.error


def print_json(obj) -> None:
    # ensure_ascii: names that are not UTF-8 travel as \udcXX escapes, as in trees
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=True, default=str))
    sys.stdout.write("\n")


def warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


def show_progress(json_mode: bool) -> bool:
    return not json_mode and sys.stderr.isatty()


def fail(exc: BaseException) -> int:
    """Print an error (and what the user can do about it) on stderr; return its exit code."""
    msg = str(exc) or type(exc).__name__
    hint = HINTS.get(getattr(exc, "remedy", None) or "")
    if hint:
        msg = f"{msg} ({hint})"
    click.echo(f"amber: {msg}", err=True)
    return exit_code_for(exc)
