"""The `amber` command: parse, call the library, print. No logic a library user needs.

Every command is registered here, in one list; the command modules never import this one.
"""

from __future__ import annotations

import sys

import click

from ..errors import AmberError
from ..version import __version__
from . import (
    anomalies_cmd,
    audit_cmd,
    backup_cmd,
    browse_cmd,
    check_cmd,
    copy_cmd,
    drill_cmd,
    dump_cmd,
    evidence_cmd,
    init_cmd,
    key_cmd,
    mount_cmd,
    repair_cmd,
    report_cmd,
    restore_cmd,
    retention_cmd,
    s3_cmd,
    serve_cmd,
    settings_cmd,
    stats_cmd,
    tag_cmd,
    upgrade_cmd,
)
from .output import fail
from .tuning import keep_freed_memory


class AmberGroup(click.Group):
    def main(self, *args, **kwargs):
        kwargs.setdefault("standalone_mode", False)
        try:
            rv = super().main(*args, **kwargs)
            sys.exit(rv if isinstance(rv, int) else 0)
        except click.exceptions.Exit as e:
            sys.exit(e.exit_code)
        except click.ClickException as e:
            e.show()
            sys.exit(2 if isinstance(e, click.UsageError) else 1)
        except click.exceptions.Abort:
            click.echo("amber: aborted", err=True)
            sys.exit(130)
        except KeyboardInterrupt:
            click.echo("amber: interrupted", err=True)
            sys.exit(130)
        except AmberError as e:
            sys.exit(fail(e))
        except BrokenPipeError:
            sys.exit(0)
        except MemoryError:
            sys.exit(fail(AmberError("out of memory")))
        except OSError as e:
            name = f" {e.filename}" if getattr(e, "filename", None) else ""
            sys.exit(fail(AmberError(f"{e.strerror or e}{name}")))


@click.group(cls=AmberGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-r", "--repo", metavar="URL", help="repository (default: $AMBER_REPOSITORY, else the default local repository)"
)
@click.option("--s3-endpoint", metavar="URL", help="S3 endpoint for s3: repositories (default: $AMBER_S3_ENDPOINT)")
@click.option(
    "--cacert",
    metavar="FILE",
    help="certificate authority of a rest: server's TLS certificate (default: $AMBER_CACERT)",
)
@click.option(
    "--password-command",
    metavar="CMD",
    help="a command whose first line of output is the password (default: $AMBER_PASSWORD_COMMAND)",
)
@click.version_option(__version__, prog_name="amber")
@click.pass_context
def cli(
    ctx: click.Context, repo: str | None, s3_endpoint: str | None, cacert: str | None, password_command: str | None
) -> None:
    """amber: immutable, deduplicated, encrypted backups."""
    ctx.obj = {"repo": repo, "s3_endpoint": s3_endpoint, "cacert": cacert, "password_command": password_command}


COMMANDS = (
    init_cmd.init,
    backup_cmd.backup,
    anomalies_cmd.anomalies,
    browse_cmd.snapshots,
    browse_cmd.ls,
    browse_cmd.cat,
    browse_cmd.diff,
    browse_cmd.find,
    mount_cmd.mount,
    dump_cmd.dump,
    stats_cmd.stats,
    tag_cmd.tag,
    restore_cmd.restore,
    drill_cmd.drill,
    check_cmd.check,
    retention_cmd.lock,
    retention_cmd.hold,
    retention_cmd.release,
    retention_cmd.forget,
    retention_cmd.prune,
    audit_cmd.audit,
    evidence_cmd.evidence,
    key_cmd.key,
    s3_cmd.s3,
    settings_cmd.settings,
    repair_cmd.repair,
    serve_cmd.serve,
    upgrade_cmd.upgrade,
    copy_cmd.copy,
    report_cmd.report,
)
for _command in COMMANDS:
    cli.add_command(_command)


def main(args: list[str] | None = None) -> None:
    """The console entry point; `args` defaults to the process's arguments."""
    keep_freed_memory()
    for stream in (sys.stdout, sys.stderr):
        try:  # file names that are not UTF-8 are printed as the bytes they are
            stream.reconfigure(errors="surrogateescape")
        except (AttributeError, ValueError):
            pass
    cli.main(args=args, prog_name="amber")


if __name__ == "__main__":
    main()
