"""The compliance report (`amber report`): a model of what an auditor needs to see, built
from an open repository (model.py, with the pure horizon.py and findings.py), and its
renderings as a self-contained HTML page (page.py) and as text (text.py).

It sits above the library API: it reads a repository the way any user of amber could.
"""

from .model import build
from .page import render as render_html
from .text import render as render_text

__all__ = ["build", "render_html", "render_text"]
