"""The console's templates: its own folder first, then the shared ones (base.html), so console
pages extend the site's layout. Fragments (the queue, a presence bar) are rendered alone for
the live updates, from the same templates the pages include."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape

from app.console.board import duration
from app.web.pages import HERE as WEB
from app.web.pages import PRIVATE

HERE = Path(__file__).resolve().parent
environment = Environment(
    loader=ChoiceLoader(
        [FileSystemLoader(HERE / "templates"), FileSystemLoader(WEB / "templates")]
    ),
    autoescape=select_autoescape(["html"]),
)
environment.filters["duration"] = duration
templates = Jinja2Templates(env=environment)


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A console page, with the signed-in principal for the header."""
    context.setdefault("principal", getattr(request.state, "principal", None))
    return templates.TemplateResponse(
        request, template, context, status_code=status_code, headers=PRIVATE
    )


def fragment(template: str, **context: Any) -> str:
    """A piece of a page, for a live update."""
    return environment.get_template(template).render(**context)
