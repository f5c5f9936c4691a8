"""A PA takes a waiting caller: exactly one PA gets each caller, their own phone rings with a
whisper, and only a PA who pressed 1 and joined gets the caller moved in with them."""

from __future__ import annotations

import threading

import httpx
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.settings import Settings
from app.telephony.sandbox.caller import Press, Silence
from app.telephony.sandbox.fake_twilio import FakeTwilio
from app.telephony.sandbox.signing import signed_post
from tests.conftest import AUTH_TOKEN
from tests.console.conftest import (
    HARBOUR_LAW,
    OTHER_PA_PHONE,
    PA_PHONE,
    AddPa,
    AnswerCall,
    Ring,
    entry_of,
    messages,
    pa_phones_pick_up,
    presence_of,
    wait_for_entry,
)


def test_a_pa_who_presses_1_is_put_through_and_the_caller_is_moved_into_their_conference(
    ring: Ring,
    add_pa: AddPa,
    fake_twilio: FakeTwilio,
    console_client: TestClient,
    session_factory: sessionmaker[Session],
) -> None:
    pa_phones_pick_up(fake_twilio, console_client, Press("1"))
    pa = add_pa()
    caller = ring(HARBOUR_LAW, Press("0"))
    (entry,) = wait_for_entry(fake_twilio, session_factory, "waiting")

    taken = pa.take(entry.id)

    assert taken.headers["location"] == f"/console/calls/{entry.id}"
    wait_for_entry(fake_twilio, session_factory, "answered")
    room = f"nightdesk-entry-{entry.id}"
    fake_twilio.wait_for(lambda: len(fake_twilio.lines.rooms().get(room, [])) == 2)
    [pa_leg] = [c for c in fake_twilio.calls if c.to == PA_PHONE]
    assert set(fake_twilio.lines.rooms()[room]) == {pa_leg.sid, caller.call_sid}
    assert presence_of(session_factory, pa.user_id) == "on_call"

    assert pa.press(f"/console/calls/{entry.id}/hang-up").status_code == 303
    heard = caller.conversation()
    assert f"(joins the conference {room})" in heard.transcript()
    assert "Thank you for calling Harbour Law. Goodbye." in heard.heard()
    [whisper] = fake_twilio.wait_for(lambda: list(fake_twilio.parties.conversations.values()))
    assert "Harbour Law caller. Press 1 to take the call." in whisper.heard()
    fake_twilio.wait_for(lambda: presence_of(session_factory, pa.user_id) == "wrap_up")
    assert entry_of(session_factory, entry.id).ended_at is not None
    assert messages(session_factory) == [], "the caller reached a person: the PA takes the message"


def test_a_pa_whose_phone_is_busy_leaves_the_caller_in_line_for_the_next_pa(
    ring: Ring,
    add_pa: AddPa,
    fake_twilio: FakeTwilio,
    session_factory: sessionmaker[Session],
) -> None:
    fake_twilio.set_call_outcome(PA_PHONE, "busy")
    pa = add_pa()
    caller = ring(HARBOUR_LAW, Press("0"))
    (entry,) = wait_for_entry(fake_twilio, session_factory, "waiting")

    pa.take(entry.id)
    fake_twilio.settle()

    again = entry_of(session_factory, entry.id)
    assert (again.status, again.pa_id, again.offers) == ("waiting", None, 1)
    assert presence_of(session_factory, pa.user_id) == "available"
    assert caller.thread.is_alive(), "the caller is still waiting in line"
    fake_twilio.hang_up(caller.call_sid)
    assert "taken out of the queue" not in caller.conversation().transcript()


def test_a_pa_who_picks_up_but_presses_nothing_gives_the_caller_back_to_the_queue(
    ring: Ring,
    add_pa: AddPa,
    fake_twilio: FakeTwilio,
    console_client: TestClient,
    session_factory: sessionmaker[Session],
) -> None:
    pa_phones_pick_up(fake_twilio, console_client, Silence())
    pa = add_pa()
    caller = ring(HARBOUR_LAW, Press("0"))
    (entry,) = wait_for_entry(fake_twilio, session_factory, "waiting")

    pa.take(entry.id)
    [whisper] = fake_twilio.wait_for(lambda: list(fake_twilio.parties.conversations.values()))
    fake_twilio.settle()

    assert entry_of(session_factory, entry.id).status == "waiting"
    assert "the caller stays in line" in whisper.heard()
    fake_twilio.hang_up(caller.call_sid)
    caller.conversation()


def test_two_pas_racing_for_one_caller_one_wins_every_time(
    ring: Ring,
    add_pa: AddPa,
    fake_twilio: FakeTwilio,
    session_factory: sessionmaker[Session],
) -> None:
    # The winner's phone rings on until the round is over (nobody picks up)...
    fake_twilio.set_call_outcome(PA_PHONE, "in-progress")
    fake_twilio.set_call_outcome(OTHER_PA_PHONE, "in-progress")
    pas = [add_pa("sam@nightdesk.test"), add_pa("ana@nightdesk.test", phone=OTHER_PA_PHONE)]
    for pa in pas:
        pa.press("/console/presence", state="available")  # and their CSRF tokens are at hand
    caller = ring(HARBOUR_LAW, Press("0"), hold_wait=60)
    (entry,) = wait_for_entry(fake_twilio, session_factory, "waiting")

    def race(start: threading.Barrier, answers: dict[int, httpx.Response], index: int) -> None:
        start.wait()
        answers[index] = pas[index].take(entry.id)

    for round_number in range(1, 21):
        start = threading.Barrier(len(pas))
        answers: dict[int, httpx.Response] = {}
        threads = [threading.Thread(target=race, args=(start, answers, i)) for i in range(len(pas))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        won = [a for a in answers.values() if a.headers["location"].startswith("/console/calls/")]
        lost = [a for a in answers.values() if a.headers["location"] == "/console?problem=taken"]
        assert (len(won), len(lost)) == (1, 1), f"round {round_number}"
        assert entry_of(session_factory, entry.id).offers == round_number
        # ...then hangs up, and the caller is back in line for the next round.
        ringing = [c.sid for c in fake_twilio.calls if c.to != HARBOUR_LAW and not c.end_time]
        for sid in ringing:
            fake_twilio.hang_up(sid)
        fake_twilio.settle()
        fake_twilio.wait_for(
            lambda: (
                entry_of(session_factory, entry.id).status == "waiting"
                and all(presence_of(session_factory, pa.user_id) == "available" for pa in pas)
            )
        )

    fake_twilio.hang_up(caller.call_sid)
    caller.conversation()


def test_only_an_available_pa_with_a_phone_can_take_a_caller(
    ring: Ring,
    add_pa: AddPa,
    fake_twilio: FakeTwilio,
    session_factory: sessionmaker[Session],
) -> None:
    on_break = add_pa("sam@nightdesk.test")
    on_break.set_presence("on_break")
    no_phone = add_pa("ana@nightdesk.test", phone=None)
    caller = ring(HARBOUR_LAW, Press("0"))
    (entry,) = wait_for_entry(fake_twilio, session_factory, "waiting")

    assert on_break.take(entry.id).headers["location"] == "/console?problem=not_available"
    assert no_phone.take(entry.id).headers["location"] == "/console?problem=no_phone"
    assert "Take call" not in on_break.page("/console").text
    assert entry_of(session_factory, entry.id).status == "waiting"
    fake_twilio.hang_up(caller.call_sid)
    caller.conversation()


def test_a_late_callback_from_an_earlier_pa_leg_leaves_the_next_offer_alone(
    ring: Ring,
    add_pa: AddPa,
    fake_twilio: FakeTwilio,
    console_client: TestClient,
    settings: Settings,
    session_factory: sessionmaker[Session],
) -> None:
    fake_twilio.set_call_outcome(PA_PHONE, "busy")
    pa = add_pa()
    caller = ring(HARBOUR_LAW, Press("0"))
    (entry,) = wait_for_entry(fake_twilio, session_factory, "waiting")
    pa.take(entry.id)
    fake_twilio.settle()  # offer 1: busy, the caller is back in line
    fake_twilio.set_call_outcome(PA_PHONE, "in-progress")
    pa.take(entry.id)  # offer 2: ringing
    fake_twilio.settle()

    # Twilio repeats offer 1's final status callback, late.
    late = {"CallSid": "CA" + "1" * 32, "CallStatus": "busy", "To": PA_PHONE}
    path = f"/twilio/console/leg-status?entry={entry.id}&offer=1"
    assert (
        signed_post(console_client, settings.public_url, path, late, AUTH_TOKEN).status_code == 204
    )

    again = entry_of(session_factory, entry.id)
    assert (again.status, again.offers, again.pa_id) == ("offered", 2, pa.user_id)
    assert presence_of(session_factory, pa.user_id) == "on_call"
    fake_twilio.hang_up(caller.call_sid)
    caller.conversation()


def test_only_the_callers_own_join_names_the_conference(
    ring: Ring,
    fake_twilio: FakeTwilio,
    console_client: TestClient,
    settings: Settings,
    session_factory: sessionmaker[Session],
) -> None:
    caller = ring(HARBOUR_LAW, Press("0"))
    (entry,) = wait_for_entry(fake_twilio, session_factory, "waiting")
    path = f"/twilio/console/caller-joined?entry={entry.id}"
    joined = {"StatusCallbackEvent": "participant-join", "ConferenceSid": "CF" + "2" * 32}

    someone_else = {**joined, "CallSid": "CA" + "3" * 32}
    signed_post(console_client, settings.public_url, path, someone_else, AUTH_TOKEN)
    assert entry_of(session_factory, entry.id).conference_sid is None
    signed_post(console_client, settings.public_url, path, {**joined, "CallSid": caller.call_sid},
                AUTH_TOKEN)  # fmt: skip
    assert entry_of(session_factory, entry.id).conference_sid == "CF" + "2" * 32
    fake_twilio.hang_up(caller.call_sid)


def test_the_pas_leg_leaving_the_conference_ends_the_conversation(
    answered_call: AnswerCall,
    fake_twilio: FakeTwilio,
    console_client: TestClient,
    settings: Settings,
    session_factory: sessionmaker[Session],
) -> None:
    """A browser leg reports its end only as the conference's participant-leave event."""
    call = answered_call()
    entry = entry_of(session_factory, call.entry_id)
    left = {"StatusCallbackEvent": "participant-leave", "CallSid": entry.pa_call_sid or ""}
    path = f"/twilio/console/conference?entry={call.entry_id}&offer={entry.offers}"

    signed_post(console_client, settings.public_url, path, left, AUTH_TOKEN)

    assert entry_of(session_factory, call.entry_id).ended_at is not None
    assert presence_of(session_factory, call.pa.user_id) == "wrap_up"
