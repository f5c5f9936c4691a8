"""Supervisors see every PA's presence and for how long, the queue, and today's figures."""

from __future__ import annotations

import re

from sqlalchemy.orm import Session, sessionmaker

from app.accounts.models import Role
from app.telephony.sandbox.caller import Press
from app.telephony.sandbox.fake_twilio import FakeTwilio
from tests.clock import FakeClock
from tests.console.conftest import HARBOUR_LAW, AddPa, AnswerCall, Ring, wait_for_entry


def cells(page: str, row_label: str) -> list[str]:
    """The text of each cell of the table row that starts with `row_label`."""
    row = page.split(f"<td>{row_label}</td>", 1)[1].split("</tr>", 1)[0]
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in row.split("</td>")][:-1]


def test_a_supervisor_sees_the_team_the_queue_and_todays_figures(
    answered_call: AnswerCall,
    ring: Ring,
    add_pa: AddPa,
    fake_twilio: FakeTwilio,
    clock: FakeClock,
    session_factory: sessionmaker[Session],
) -> None:
    supervisor = add_pa("lee@nightdesk.test", role=Role.supervisor, name="Lee", phone=None)
    add_pa("ana@nightdesk.test", name="Ana Lima", phone="+15005550007").set_presence("on_break")
    call = answered_call()
    gone = ring(HARBOUR_LAW, Press("0"))
    wait_for_entry(fake_twilio, session_factory, "waiting")
    clock.advance(seconds=30)

    page = supervisor.page("/console/supervisor").text

    assert cells(page, "Sam Taylor")[:2] == ["On a call", "0:30"]
    assert cells(page, "Ana Lima")[:2] == ["On a break", "0:30"]
    assert "Harbour Law" in page.split('id="queue"')[1]  # the caller still waiting
    fake_twilio.hang_up(gone.call_sid)
    gone.conversation()
    page = supervisor.page("/console/supervisor").text
    stats = page.split('id="stats"')[1]
    # Queued 2, answered 1 (p50 = p90 = its time to answer), abandoned 1, timed out 0.
    assert cells(stats, "Harbour Law") == ["2", "1", "0:00", "0:00", "1", "0"]
    assert call.pa.page("/console/supervisor").status_code == 403
