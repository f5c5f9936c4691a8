"""Privacy mode in the console: the screen pop's earlier messages are a read of each, logged
with the PA who saw them."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from app.clients.models import Client
from app.db import transaction
from app.messages.models import MessageRead
from tests.clock import FakeClock
from tests.console.conftest import AnswerCall
from tests.console.test_screen_pop import earlier_message


def test_the_screen_pops_earlier_messages_are_logged_as_read_by_the_pa(
    answered_call: AnswerCall, session_factory: sessionmaker[Session], clock: FakeClock
) -> None:
    with transaction(session_factory) as session:  # as `flows sync` sets it from `privacy:`
        session.execute(update(Client).where(Client.slug == "harbour-law").values(private=True))
    earlier_message(session_factory, clock)
    call = answered_call()

    page = call.pa.page(f"/console/calls/{call.entry_id}").text

    assert "Lease renewal" in page
    with session_factory() as session:
        reads = session.scalars(select(MessageRead)).all()
    assert [(r.via, r.reader) for r in reads] == [("console", "Sam Taylor")]
