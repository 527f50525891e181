"""The report as one self-contained HTML page: the document embedded as JSON, drawn by inlined
scripts (assets/report.js, and Chart.js for the charts), so it opens with no network access.

The page shows nothing the document does not hold: report.js renders every table and chart
from the `amber-report-data` script element, whose content is exactly `report --json`.
Text reaches the page only through textContent there, so recorded names, tags and reasons
cannot inject markup; here the JSON is escaped so that it cannot end its script element.
"""

from __future__ import annotations

import json
from importlib import resources

CHART_JS = "chart.umd.min.js"  # Chart.js 4.6.1, MIT: assets/VENDORED.md
SOURCE_MAP = "//# sourceMappingURL="
# The page may run its own inline scripts and styles and fetch nothing at all: whatever a recorded
# name could smuggle in, the browser loads nothing from anywhere.
CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"

TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<title>amber compliance report</title>
<style>
{css}
</style>
</head>
<body>
<noscript><p>This report draws its tables and charts with JavaScript, which is disabled. The same
figures are in the script element amber-report-data of this file, as JSON.</p></noscript>
<main id="report"></main>
<script type="application/json" id="amber-report-data">{data}</script>
<script>
{chart}
</script>
<script>
{app}
</script>
</body>
</html>
"""


def embed_json(doc: dict) -> str:
    """`doc` as JSON safe inside a <script> element: `<`, `>` and `&` escaped as \\u003c, \\u003e
    and \\u0026 (the same string to a JSON reader), everything outside ASCII escaped too."""
    text = json.dumps(doc, ensure_ascii=True, indent=1, default=str)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def asset(name: str) -> str:
    return resources.files(__package__).joinpath("assets", name).read_text(encoding="utf-8")


def inline_script(text: str) -> str:
    """A script's text ready to sit between <script> and </script>: its source-map comment
    dropped (nothing to fetch), and refused if it could end the element early."""
    text = "\n".join(line for line in text.splitlines() if not line.startswith(SOURCE_MAP))
    if "</script" in text.lower() or "<!--" in text:
        raise ValueError("an inlined script holds </script or <!--")
    return text


def render(doc: dict) -> str:
    """The whole page of the report `doc` (model.build)."""
    return TEMPLATE.format(
        csp=CSP,
        css=asset("report.css"),
        data=embed_json(doc),
        chart=inline_script(asset(CHART_JS)),
        app=inline_script(asset("report.js")),
    )
