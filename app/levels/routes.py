"""/api/v1/service-levels and /portal/service-levels: a client's own service levels, per day or
per week; the page draws them as SVG charts made here, beside the same figures in tables."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Security
from fastapi.responses import Response
from markupsafe import Markup

from app.accounts.deps import ApiCaller, ClientUser
from app.api.routes import bearer
from app.deps import DatabaseDep, Now
from app.inbox.queries import NoClientError
from app.levels.charts import bar_chart
from app.levels.figures import URGENCIES, Period, Timing
from app.levels.schemas import ServiceLevelsOut
from app.levels.service import DEFAULT_PERIODS, MAX_PERIODS, levels_for, levels_out
from app.web.pages import render

api_router = APIRouter(prefix="/api/v1", tags=["api"], dependencies=[Security(bearer)])
portal_router = APIRouter(prefix="/portal", include_in_schema=False)
ByQuery = Annotated[Literal["day", "week"], Query(description="Per local day, or per week")]
Count = Annotated[int | None, Query(ge=1, le=MAX_PERIODS["day"], description="How many")]


@api_router.get(
    "/service-levels",
    response_model=ServiceLevelsOut,
    responses={401: {"description": "No API key"}, 404: {"description": "No client"}},
)
async def service_levels(
    caller: ApiCaller, database: DatabaseDep, now: Now, by: ByQuery = "day", count: Count = None
) -> ServiceLevelsOut:
    """The caller's service levels for the last days or weeks, oldest first, in its own time
    zone: calls taken and abandoned, messages by urgency, and p50/p90 of the time to
    acknowledge, to call back and for a PA to answer."""
    periods = min(count or DEFAULT_PERIODS[by], MAX_PERIODS[by])
    try:
        levels = await database.run(lambda s: levels_for(s, caller, by, periods, now))
    except NoClientError as exc:
        raise HTTPException(404, str(exc)) from None
    return levels_out(levels)


@portal_router.get("/service-levels")
async def service_levels_page(
    request: Request, principal: ClientUser, database: DatabaseDep, now: Now, by: str = "day"
) -> Response:
    """The client's service levels as charts and tables."""
    per: Literal["day", "week"] = "week" if by == "week" else "day"
    try:
        levels = await database.run(
            lambda s: levels_for(s, principal, per, DEFAULT_PERIODS[per], now)
        )
    except NoClientError:
        return render(request, "portal/not_found.html", 404)
    return render(
        request, "portal/service_levels.html", levels=levels, by=per,
        charts=charts(levels.periods, per), label=lambda p: label(p, per),
        minutes=minutes, urgencies=URGENCIES,
    )  # fmt: skip


def label(period: Period, by: str) -> str:
    return f"{period.start:%a %d %b}" if by == "day" else f"w/c {period.start:%d %b}"


def minutes(seconds: float | None) -> str:
    """A duration for people: "4 min", "1 h 05 min", or a dash when nothing was measured."""
    if seconds is None:
        return "–"
    whole = round(seconds / 60)
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{whole // 60} h {whole % 60:02d} min" if whole >= 60 else f"{whole} min"


def charts(periods: list[Period], by: str) -> list[tuple[str, Markup]]:
    """The page's charts, drawn here (SVG): counts, then each time in minutes."""
    labels = [f"{p.start:%d %b}" for p in periods]  # short: they sit under narrow bars

    def in_minutes(values: list[float | None]) -> list[float | None]:
        return [v / 60 if v is not None else None for v in values]

    drawn = [
        bar_chart("calls", "Calls taken and abandoned", labels, [
            ("calls taken", [p.calls for p in periods]),
            ("abandoned", [p.abandoned for p in periods]),
        ]),
        bar_chart("messages", "Messages by urgency", labels, [
            (u, [p.messages.get(u, 0) for p in periods]) for u in URGENCIES
        ]),
    ]  # fmt: skip
    timings: list[tuple[str, str, list[Timing]]] = [
        ("ack", "Time to acknowledge (minutes)", [p.acknowledge for p in periods]),
        ("callback", "Time to call back (minutes)", [p.call_back for p in periods]),
        ("pa", "PA time to answer (minutes)", [p.pa_answer for p in periods]),
    ]
    for chart_id, title, timing in timings:
        drawn.append(bar_chart(chart_id, title, labels, [
            ("p50", in_minutes([t.p50_seconds for t in timing])),
            ("p90", in_minutes([t.p90_seconds for t in timing])),
        ]))  # fmt: skip
    titles = ["Calls taken and abandoned", "Messages by urgency"] + [t for _, t, _ in timings]
    return [(title, Markup(svg)) for title, svg in zip(titles, drawn, strict=True)]  # noqa: S704
