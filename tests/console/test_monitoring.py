"""A supervisor listens to a PA's live call, whispers to the PA, or joins it: their own phone is
rung into the call's conference through the fake Twilio's participant resource."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.accounts.models import Role
from app.telephony.sandbox.fake_twilio import FakeTwilio
from tests.console.conftest import AddPa, AnswerCall, Pa, entry_of, in_conference

SUPERVISOR_PHONE = "+15005550009"


def supervisor(add_pa: AddPa, phone: str | None = SUPERVISOR_PHONE) -> Pa:
    return add_pa(
        "lee@nightdesk.test", name="Lee Park", role=Role.supervisor, phone=phone, available=False
    )


@pytest.mark.parametrize(
    ("mode", "muted", "coaching"),
    [("listen", True, False), ("whisper", False, True), ("barge", False, False)],
)
def test_a_supervisor_joins_a_pas_call_as_they_choose(
    mode: str,
    muted: bool,
    coaching: bool,
    answered_call: AnswerCall,
    add_pa: AddPa,
    fake_twilio: FakeTwilio,
    session_factory: sessionmaker[Session],
) -> None:
    call = answered_call()
    in_conference(fake_twilio, session_factory, call.entry_id)
    lee = supervisor(add_pa)
    page = lee.page(f"/console/calls/{call.entry_id}")
    assert "Listen in" in page.text
    assert "Whisper to the PA" in page.text

    joined = lee.press(f"/console/calls/{call.entry_id}/monitor", mode=mode)

    assert joined.headers["location"] == f"/console/calls/{call.entry_id}?monitoring={mode}"
    room = f"nightdesk-entry-{call.entry_id}"
    fake_twilio.wait_for(lambda: len(fake_twilio.lines.seats(room)) == 3)
    seats = fake_twilio.lines.seats(room)
    [leg] = [c for c in fake_twilio.calls if c.to == SUPERVISOR_PHONE]
    seat = seats[leg.sid]
    pa_leg = next(sid for sid in seats if sid not in (leg.sid, call.caller.call_sid))
    assert (seat.muted, seat.coaching) == (muted, coaching)
    assert seat.call_sid_to_coach == (pa_leg if coaching else None)
    assert not seat.end_on_exit, "the supervisor leaving doesn't end the PA's call"
    assert "answer it to" in lee.page(joined.headers["location"]).text


def test_a_supervisor_without_a_phone_or_a_call_that_is_over_is_told_so(
    answered_call: AnswerCall,
    add_pa: AddPa,
    fake_twilio: FakeTwilio,
    session_factory: sessionmaker[Session],
) -> None:
    call = answered_call()
    in_conference(fake_twilio, session_factory, call.entry_id)
    lee = supervisor(add_pa, phone=None)

    no_phone = lee.press(f"/console/calls/{call.entry_id}/monitor", mode="listen")
    not_a_call = lee.press("/console/calls/999/monitor", mode="listen")
    bad_mode = lee.press(f"/console/calls/{call.entry_id}/monitor", mode="record")

    assert no_phone.headers["location"].endswith("?problem=supervisor_phone")
    assert not_a_call.headers["location"].endswith("?problem=gone")
    assert bad_mode.status_code == 422
    call.pa.press(f"/console/calls/{call.entry_id}/hang-up")
    fake_twilio.wait_for(lambda: entry_of(session_factory, call.entry_id).ended_at is not None)
    over = lee.press(f"/console/calls/{call.entry_id}/monitor", mode="listen")
    assert over.headers["location"].endswith("?problem=gone")
    assert not [c for c in fake_twilio.calls if c.to == SUPERVISOR_PHONE]


def test_a_pa_cannot_listen_to_another_pas_call(
    answered_call: AnswerCall,
    add_pa: AddPa,
    fake_twilio: FakeTwilio,
    session_factory: sessionmaker[Session],
) -> None:
    call = answered_call()
    in_conference(fake_twilio, session_factory, call.entry_id)
    other = add_pa("ana@nightdesk.test", name="Ana Lima", phone="+15005550007")

    refused = other.press(f"/console/calls/{call.entry_id}/monitor", mode="listen")

    assert refused.status_code == 403
    assert len(fake_twilio.lines.seats(f"nightdesk-entry-{call.entry_id}")) == 2
