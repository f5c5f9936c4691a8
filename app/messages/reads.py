"""The read log: every read of a message's content, for clients in privacy mode.

One INSERT … SELECT per read, in the reader's own unit of work: it writes a row for each of the
messages read whose client is in privacy mode, and nothing for the others, without a query
first to find out which they are.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import insert, literal, select
from sqlalchemy.orm import Session

from app.clients.models import Client
from app.messages.models import Message, MessageRead
from app.messages.schemas import ReadOut
from app.timeutil import as_utc


@dataclass(frozen=True)
class Reader:
    """Who read: a person (with their user id), an API key, a contact on the phone, an operator."""

    name: str
    user_id: int | None = None


def log_reads(
    session: Session, message_ids: Sequence[int], reader: Reader, via: str, now: dt.datetime
) -> None:
    """Log that `reader` read these messages (those of clients in privacy mode) at `now`."""
    if not message_ids:
        return
    read = select(
        Message.id,
        literal(now, MessageRead.at.type),
        literal(reader.name[:200], MessageRead.reader.type),
        literal(reader.user_id, MessageRead.user_id.type),
        literal(via, MessageRead.via.type),
    ).where(
        Message.id.in_(message_ids),
        Message.client_id == Client.id,
        Client.private.is_(True),
    )
    columns = ["message_id", "at", "reader", "user_id", "via"]
    session.execute(insert(MessageRead).from_select(columns, read))


def reads_of(session: Session, message_id: int) -> list[ReadOut]:
    """Who read this message, oldest first. Callers check the asker may see the message."""
    rows = session.scalars(
        select(MessageRead)
        .where(MessageRead.message_id == message_id)
        .order_by(MessageRead.at, MessageRead.id)
    )
    return [ReadOut(at=as_utc(r.at), reader=r.reader, via=r.via) for r in rows]
