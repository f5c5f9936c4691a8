"""Server-rendered pages: the Jinja2 templates and stylesheet every page shares.

Nothing is loaded from another host: the stylesheet is served from /static by the app itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")  # autoescapes .html
static_files = StaticFiles(directory=HERE / "static")

# Pages show what only a signed-in person may see: keep them out of caches and referrers.
PRIVATE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page from `template`, with the signed-in principal (if any) for the header."""
    context.setdefault("principal", getattr(request.state, "principal", None))
    return templates.TemplateResponse(
        request, template, context, status_code=status_code, headers=PRIVATE
    )
