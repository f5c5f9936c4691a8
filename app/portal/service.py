"""The portal's reads: what each page needs, in one unit of work."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from app.accounts.service import Principal
from app.inbox.queries import ClientFacts, Page, client_facts, find_message, find_messages
from app.messages.schemas import MessageDetail
from app.portal.views import ListForm


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


def message_list(session: Session, principal: Principal, form: ListForm) -> ListView:
    """A page of the client's messages, filtered by its own calendar days."""
    client = client_facts(session, principal)
    zone = ZoneInfo(client.timezone)
    filters, after, problems = form.read(zone)
    return ListView(client, zone, find_messages(session, principal, filters, after), problems)


def message_page(session: Session, principal: Principal, message_id: int) -> MessageView:
    client = client_facts(session, principal)
    return MessageView(
        client, ZoneInfo(client.timezone), find_message(session, principal, message_id)
    )
