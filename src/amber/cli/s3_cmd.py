"""`amber s3 policy`: the IAM policy of one role on an S3 repository (docs/S3.md §6).

It needs neither a repository nor a password: it only prints a document for
whoever owns the bucket to attach.
"""

import click

from ..repository import MAX_RETENTION_DAYS, S3_ROLES, iam_policy
from .options import group
from .output import print_json


@click.command("policy")
@click.option("--role", type=click.Choice(S3_ROLES), required=True, help="who the policy is for")
@click.option(
    "--max-retention-days",
    type=click.IntRange(min=1),
    default=MAX_RETENTION_DAYS,
    show_default=True,
    help="the longest retention the backup role may set (s3:object-lock-remaining-retention-days)",
)
@click.argument("location", metavar="BUCKET[/PREFIX]")
def policy(role, max_retention_days, location):
    """Print the IAM policy JSON for a role on the repository at BUCKET[/PREFIX]."""
    print_json(iam_policy(role, location, max_retention_days))


s3 = group("s3", "Helpers for repositories on S3: the IAM policies of docs/S3.md.", [policy])
