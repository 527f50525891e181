"""`amber init`: create a repository."""

import click

from ..repository import Repository, parse_lock_policy
from .common import open_source, password
from .options import command, json_option
from .output import Output, warn


@command("init")
@click.option("--default-retention", metavar="DURATION", help="lock every new snapshot this long")
@click.option("--retention-mode", type=click.Choice(["governance", "compliance"]), default=None)
@click.option("--min-retention", metavar="DURATION", help="refuse any lock shorter than this (raise it later only)")
@click.option(
    "--copy-params-from",
    metavar="URL",
    help="take the chunker and id key of this repository, so `copy` from it deduplicates "
    "(its password: AMBER_FROM_PASSWORD or AMBER_FROM_PASSWORD_FILE)",
)
@click.option(
    "--parity",
    type=int,
    default=None,
    metavar="PERCENT",
    help="Reed-Solomon parity per pack, in percent of its size: rebuilds damaged regions (default 2; 0: none)",
)
@click.option(
    "--lock-policy",
    metavar="TIERS",
    help='lock the first snapshot of each day/week/month/year, e.g. "daily=14d,weekly=8w,monthly=13mo,yearly=7y"',
)
@click.option("--lock-mode", type=click.Choice(["governance", "compliance"]), default=None, help="the policy's mode")
@json_option
def init(
    session, default_retention, retention_mode, min_retention, copy_params_from, parity, lock_policy, lock_mode, as_json
):
    """Create a new repository."""
    if retention_mode and default_retention is None:
        raise click.UsageError("--retention-mode needs --default-retention")
    # an empty value (an unset variable in a script) is refused, never read as "no retention"
    retention = {"duration": default_retention, "mode": retention_mode} if default_retention is not None else None
    if lock_mode and lock_policy is None:
        raise click.UsageError("--lock-mode needs --lock-policy")
    policy = parse_lock_policy(lock_policy, lock_mode) if lock_policy is not None else None
    url = session.url()
    params_from = open_source(session, copy_params_from) if copy_params_from else None
    r = Repository.init(
        url,
        password(confirm=True, command=session.password_command),
        default_retention=retention,
        min_retention=min_retention,
        storage_options=session.storage_options(),
        warn=warn,
        params_from=params_from,
        **({"parity": parity} if parity is not None else {}),
        lock_policy=policy,
    )
    return Output(
        {"id": r.id, "repository": url, "key": r.key_id},
        [
            f"created amber repository {r.id[:10]} at {url}",
            *([f"chunker parameters and id key taken from {copy_params_from}"] if params_from else []),
            "keep the password safe: without it the data cannot be read back",
        ],
    )
