import click

from ..clock import duration_seconds
from .common import command, password, print_json, repo_url
from .main import cli


@command(cli, "init")
@click.option("--default-retention", metavar="DURATION", help="lock every new snapshot this long")
@click.option("--retention-mode", type=click.Choice(["governance", "compliance"]), default=None)
@click.option("--json", "as_json", is_flag=True)
def init(ctx, repo, default_retention, retention_mode, as_json):
    """Create a new repository."""
    from ..repository import Repository

    retention = None
    if default_retention:
        duration_seconds(default_retention)  # validates
        retention = {"mode": retention_mode or "governance", "duration": default_retention}
    elif retention_mode:
        raise click.UsageError("--retention-mode needs --default-retention")
    url = repo_url(ctx)
    if retention is not None:
        from ..storage import open_storage

        check = getattr(open_storage(url, create=True), "check_object_lock", None)
        if check is not None:
            check()  # an S3 bucket must be versioned with Object Lock before locks are promised
    r = Repository.init(url, password(confirm=True), default_retention=retention)
    if as_json:
        print_json({"id": r.id, "repository": url, "key": r.key_id})
    else:
        click.echo(f"created amber repository {r.id[:10]} at {url}")
        click.echo("keep the password safe: without it the data cannot be read back")
