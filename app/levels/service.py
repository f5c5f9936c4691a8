"""The work of a service-levels request: the asker's client's rows, then the figures."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from app.accounts.service import Principal
from app.clients.models import Client
from app.inbox.queries import NoClientError
from app.levels.figures import By, Period, service_levels, since
from app.levels.queries import client_rows
from app.levels.schemas import PeriodOut, ServiceLevelsOut, TimingOut

MAX_PERIODS = {"day": 92, "week": 53}
DEFAULT_PERIODS = {"day": 14, "week": 8}


@dataclass(frozen=True)
class Levels:
    slug: str
    name: str
    zone: ZoneInfo
    by: By
    periods: list[Period]


def levels_for(
    session: Session, principal: Principal, by: By, count: int, now: dt.datetime
) -> Levels:
    """The asker's own client's service levels for the last `count` days or weeks."""
    client = session.get(Client, principal.client_id) if principal.client_id else None
    if client is None:
        raise NoClientError("this account belongs to no client")
    zone = ZoneInfo(client.timezone)
    rows = client_rows(session, client.id, since(now, zone, by, count))
    periods = service_levels(rows.calls, rows.messages, rows.answers, zone, now, by, count)
    return Levels(rows.slug, rows.name, zone, by, periods)


def levels_out(levels: Levels) -> ServiceLevelsOut:
    return ServiceLevelsOut(
        client=levels.slug,
        name=levels.name,
        timezone=str(levels.zone),
        by=levels.by,
        periods=[_period_out(p) for p in levels.periods],
    )


def _period_out(period: Period) -> PeriodOut:
    return PeriodOut(
        start=period.start,
        calls_taken=period.calls,
        abandoned_calls=period.abandoned,
        messages=period.messages,
        time_to_acknowledge=TimingOut(**vars(period.acknowledge)),
        time_to_call_back=TimingOut(**vars(period.call_back)),
        pa_time_to_answer=TimingOut(**vars(period.pa_answer)),
    )
