"""The `amber` command: parse, call the library, print. No logic a library user needs."""
from __future__ import annotations

import sys

import click

from ..version import __version__
from ..errors import AmberError
from .common import fail
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
@click.option("-r", "--repo", metavar="URL", help="repository (default: $AMBER_REPOSITORY, else the "
              "default local repository)")
@click.option("--s3-endpoint", metavar="URL", help="S3 endpoint for s3: repositories (default: $AMBER_S3_ENDPOINT)")
@click.version_option(__version__, prog_name="amber")
@click.pass_context
def cli(ctx: click.Context, repo: str | None, s3_endpoint: str | None) -> None:
    """amber: immutable, deduplicated, encrypted backups."""
    ctx.obj = {"repo": repo, "s3_endpoint": s3_endpoint}


def _register() -> None:
    from . import (backup_cmd, browse_cmd, check_cmd, init_cmd, key_cmd, restore_cmd,  # noqa: F401
                   retention_cmd, audit_cmd, evidence_cmd)


_register()


def main() -> None:
    keep_freed_memory()
    for stream in (sys.stdout, sys.stderr):
        try:  # file names that are not UTF-8 are printed as the bytes they are
            stream.reconfigure(errors="surrogateescape")
        except (AttributeError, ValueError):
            pass
    cli.main(prog_name="amber")


if __name__ == "__main__":
    main()
