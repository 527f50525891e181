"""What every command shares: which repository, with which password and storage options."""

from __future__ import annotations

import getpass
import os
import shlex
import subprocess
import sys

import click

from ..errors import AmberError, UsageError, WrongPassword
from ..repository import Repository
from .output import warn


def default_repository() -> str:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "amber", "default")


class Session:
    """The repository a command was pointed at: --repo/--s3-endpoint given before or after
    the command name (--cacert before it), else the environment, else the default repository
    (announced once)."""

    def __init__(self, ctx: click.Context) -> None:
        self.root = ctx.find_root()
        if self.root.obj is None:
            self.root.obj = {}
        obj = self.root.obj
        self.repo = ctx.params.get("repo") or obj.get("repo")
        self.s3_endpoint = ctx.params.get("s3_endpoint") or obj.get("s3_endpoint")
        self.cacert = obj.get("cacert")
        self.password_command = ctx.params.get("password_command") or obj.get("password_command")
        self.opened: Repository | None = None

    def url(self) -> str:
        url = self.repo or os.environ.get("AMBER_REPOSITORY")
        if url:
            return url
        url = default_repository()
        if not self.root.obj.get("announced"):
            click.echo(f"using the default repository at {url}", err=True)
            self.root.obj["announced"] = True
        return url

    def storage_options(self) -> dict | None:
        options = {"s3_endpoint": self.s3_endpoint, "cacert": self.cacert}
        return {k: v for k, v in options.items() if v} or None

    def open(self) -> Repository:
        self.opened = Repository.open(
            self.url(), password(command=self.password_command), storage_options=self.storage_options(), warn=warn
        )
        return self.opened

    def close(self, command: str) -> None:
        """Record the damage the command's reads found (repo/damage.py), whatever its outcome."""
        if self.opened is not None:
            self.opened.record_damage(command)


MAX_PASSWORD_FILE = 4096  # bytes: a password file longer than this (or one that never ends) is refused


def read_password_file(path: str, what: str) -> str:
    """The password in a file: UTF-8, at most 4 KiB, without its final line break."""
    try:
        with open(os.path.expanduser(path), "rb") as f:
            raw = f.read(MAX_PASSWORD_FILE + 1)
    except OSError as e:
        raise AmberError(f"cannot read {what} {path}: {e.strerror}") from None
    if len(raw) > MAX_PASSWORD_FILE:
        raise UsageError(f"{what} {path} is longer than {MAX_PASSWORD_FILE} bytes: not a password file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{what} {path} is not UTF-8 text") from None
    return text.rstrip("\r\n")


def _utf8(pw: str, what: str) -> str:
    try:
        pw.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(f"{what} is not UTF-8 text") from None
    return pw


MAX_PASSWORD_OUTPUT = 1 << 20  # bytes a password command may print; its first line is the password


def run_password_command(command: str, what: str) -> str:
    """The first line a password command prints (split as a shell would, run without one; its
    stderr and stdin are the user's, so it may prompt). Exit 1 with its name if it fails."""
    try:
        args = shlex.split(command)
    except ValueError as e:
        raise UsageError(f"{what} {command!r}: {e}") from None
    if not args:
        raise UsageError(f"{what} is empty")
    try:
        done = subprocess.run(args, stdout=subprocess.PIPE, check=False)
    except OSError as e:
        raise AmberError(f"{what} {args[0]}: {e.strerror or e}") from None
    if done.returncode != 0:
        raise AmberError(f"{what} {args[0]} failed (exit {done.returncode}): no password")
    out = done.stdout[:MAX_PASSWORD_OUTPUT]
    try:
        line = out.decode("utf-8").split("\n", 1)[0].rstrip("\r")
    except UnicodeDecodeError:
        raise UsageError(f"{what} {args[0]} printed something that is not UTF-8 text") from None
    if line == "":
        raise AmberError(f"{what} {args[0]} printed no password")
    return line


def _password(var: str, prompt: str, confirm: bool = False, command: str | None = None) -> str:
    """A password, as restic looks for it: the output of a password command (`command`, else
    `var`_COMMAND), the file `var`_FILE names, the environment variable `var`, or typed on a
    terminal (twice with `confirm`)."""
    source = "--password-command" if command else f"{var}_COMMAND"
    command = command or os.environ.get(f"{var}_COMMAND")
    if command:
        if os.environ.get(f"{var}_FILE"):
            raise UsageError(f"{source} and {var}_FILE are mutually exclusive: give one")
        return run_password_command(command, f"the password command ({source})")
    pw = os.environ.get(var)
    if pw is not None:
        return _utf8(pw, var)
    path = os.environ.get(f"{var}_FILE")
    if path:
        return read_password_file(path, f"{var}_FILE")
    if sys.stdin.isatty():
        pw = getpass.getpass(prompt)
        if confirm and getpass.getpass("enter password again: ") != pw:
            raise UsageError("the passwords do not match")
        return _utf8(pw, "the password")
    raise AmberError(f"no password: set {var} or {var}_FILE, or run on a terminal")


def password(confirm: bool = False, command: str | None = None) -> str:
    """The repository's password; `command` is --password-command (else AMBER_PASSWORD_COMMAND)."""
    return _password("AMBER_PASSWORD", "enter password for repository: ", confirm, command)


def from_password() -> str:
    """The password of the repository a command copies or repairs from (`copy`, `init
    --copy-params-from`, `repair packs --from`): AMBER_FROM_PASSWORD_COMMAND's output,
    AMBER_FROM_PASSWORD_FILE, AMBER_FROM_PASSWORD, else asked on a terminal."""
    return _password("AMBER_FROM_PASSWORD", "enter password for the source repository: ")


def open_source(session: Session, url: str) -> Repository:
    """The repository a command copies from, with the storage options of the session's; a
    `rest:` source's token from AMBER_FROM_TOKEN or AMBER_FROM_TOKEN_FILE (else AMBER_TOKEN's)."""
    options = dict(session.storage_options() or {})
    token = os.environ.get("AMBER_FROM_TOKEN")
    if not token and os.environ.get("AMBER_FROM_TOKEN_FILE"):
        token = read_password_file(os.environ["AMBER_FROM_TOKEN_FILE"], "AMBER_FROM_TOKEN_FILE")
    if token:
        options["token"] = token.strip()
    try:
        return Repository.open(url, from_password(), storage_options=options or None, warn=warn)
    except WrongPassword as e:  # say which of the two repositories refused
        raise type(e)(f"the source repository {url}: {e} (AMBER_FROM_PASSWORD)") from None


def new_password(new_password_file: str | None) -> str:
    """A new password for `key add`: a file, AMBER_NEW_PASSWORD, or typed twice on a terminal.
    An empty one is refused (exit 2)."""
    if new_password_file:
        new = read_password_file(new_password_file, "the new password file")
    elif os.environ.get("AMBER_NEW_PASSWORD") is not None:
        new = _utf8(os.environ["AMBER_NEW_PASSWORD"], "AMBER_NEW_PASSWORD")
    elif sys.stdin.isatty():
        new = getpass.getpass("enter new password: ")
        if getpass.getpass("enter new password again: ") != new:
            raise click.UsageError("the passwords do not match")
    else:
        raise click.UsageError("give the new password with AMBER_NEW_PASSWORD or --new-password-file")
    if new == "":
        raise click.UsageError("an empty password is not allowed")
    return new
