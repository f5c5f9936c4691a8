"""The portal's work: what each page needs, and its buttons, each in one unit of work."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from app.accounts.service import Principal
from app.clients.flows import FlowStore
from app.inbox.queries import (
    ClientFacts,
    Page,
    client_facts,
    find_message,
    find_messages,
    find_reads,
)
from app.inbox.service import acknowledge_message, close_message, record_call_back
from app.messages.schemas import MessageDetail, ReadOut
from app.portal.views import ListForm

Action = Literal["acknowledge", "call_back", "close"]


@dataclass(frozen=True)
class ListView:
    client: ClientFacts
    zone: ZoneInfo
    page: Page
    problems: list[str]


@dataclass(frozen=True)
class MessageView:
    client: ClientFacts
    zone: ZoneInfo
    message: MessageDetail
    reads: list[ReadOut]  # privacy mode's read log, this read included


def message_list(
    session: Session, principal: Principal, form: ListForm, now: dt.datetime
) -> ListView:
    """A page of the client's messages, filtered by its own calendar days."""
    client = client_facts(session, principal)
    zone = ZoneInfo(client.timezone)
    filters, after, problems = form.read(zone)
    page = find_messages(session, principal, filters, after, via="portal", now=now)
    return ListView(client, zone, page, problems)


def message_page(
    session: Session, principal: Principal, message_id: int, now: dt.datetime
) -> MessageView:
    """One message, and who has read it (after this read is logged, so it is on the list)."""
    client = client_facts(session, principal)
    message = find_message(session, principal, message_id, via="portal", now=now)
    reads = find_reads(session, principal, message_id)
    return MessageView(client, ZoneInfo(client.timezone), message, reads)


def follow_up(
    session: Session,
    flows: FlowStore,
    principal: Principal,
    message_id: int,
    action: Action,
    *,
    note: str | None,
    called_back: bool,
    now: dt.datetime,
) -> None:
    """One of the message page's buttons: Acknowledge, Record call back, Close."""
    if action == "acknowledge":
        acknowledge_message(session, flows, principal, message_id, via="portal", now=now)
    elif action == "call_back":
        record_call_back(session, flows, principal, message_id, note=note, via="portal", now=now)
    else:
        close_message(session, flows, principal, message_id, note=note, called_back=called_back,
                      via="portal", now=now)  # fmt: skip
