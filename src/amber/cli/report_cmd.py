"""`amber report`: the compliance report, as text, one JSON document, or a self-contained page."""

import os

import click

from .. import report as reporting
from ..errors import AmberError
from .options import command, json_option
from .output import Output


@command("report")
@click.option(
    "--html",
    "html_file",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="write the report as one self-contained HTML page (opens without network access)",
)
@json_option
def report(session, html_file, as_json):
    """A compliance report an auditor can read: snapshots and their locks, the lock horizon,
    legal holds, checks, restore drills, ransomware alarms, overrides and the audit log's state,
    with findings to look at. With --html and --json both, the page holds the printed document."""
    doc = reporting.build(session.open())
    lines = reporting.render_text(doc)
    if html_file:
        write_page(html_file, reporting.render_html(doc))
        alerts = sum(1 for f in doc["findings"] if f["severity"] != "notice")
        lines = [f"report written to {html_file}: {len(doc['findings'])} finding(s), {alerts} to look at"]
    return Output(doc, lines)


def write_page(path: str, page: str) -> None:
    """Write the page whole or not at all (a temporary file renamed over `path`)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(page)
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise AmberError(f"cannot write the report to {path}: {e.strerror or e}") from None
