"""The fake Twilio's conferences and their participants, driven through the real twilio library
client the app uses: hold, mute, coach, end-on-exit, kick, and ringing someone in."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from app.telephony.rest import make_twilio_client
from app.telephony.sandbox.fake_twilio import FakeTwilio
from app.telephony.sandbox.switchboard import ConferenceEnded

CALLER, PA, SUPERVISOR = "CA" + "1" * 32, "CA" + "2" * 32, "+15005550009"


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(deliver=lambda url, params, headers: None) as fake:
        yield fake


@pytest.fixture
def client(fake: FakeTwilio) -> Client:
    return make_twilio_client(fake.account_sid, fake.auth_token, fake.base_url, timeout=5)


@pytest.fixture
def room(fake: FakeTwilio) -> str:
    """A caller and a PA in a conference, as their <Dial><Conference> put them."""
    fake.join_conference(CALLER, "room", end_on_exit=True)
    return fake.join_conference(PA, "room", end_on_exit=True)


def test_a_participant_is_held_and_taken_off_hold(
    fake: FakeTwilio, client: Client, room: str
) -> None:
    held = client.conferences(room).participants(CALLER).update(hold=True)

    assert held.hold is True
    assert fake.lines.seats("room")[CALLER].hold
    client.conferences(room).participants(CALLER).update(hold=False)
    assert not fake.lines.seats("room")[CALLER].hold
    [found] = client.conferences.list(friendly_name="room")
    assert found.sid == room
    assert {p.call_sid for p in client.conferences(room).participants.list()} == {CALLER, PA}


def test_a_kicked_participant_leaves_without_ending_the_room_once_told_not_to(
    fake: FakeTwilio, client: Client, room: str
) -> None:
    client.conferences(room).participants(PA).update(end_conference_on_exit=False)

    assert client.conferences(room).participants(PA).delete() is True

    assert set(fake.lines.seats("room")) == {CALLER}
    assert isinstance(fake.lines.next_event(PA, 1), ConferenceEnded)  # their <Dial> ends
    with pytest.raises(TwilioRestException) as gone:
        client.conferences(room).participants(PA).fetch()
    assert gone.value.status == 404


def test_someone_rung_in_joins_as_set_once_they_answer(
    fake: FakeTwilio, client: Client, room: str
) -> None:
    added = client.conferences(room).participants.create(
        from_="+15005550001", to=SUPERVISOR, coaching=True, call_sid_to_coach=PA, muted=False
    )

    assert added.status == "queued"
    fake.wait_for(lambda: len(fake.lines.seats("room")) == 3)
    seat = fake.lines.seats("room")[added.call_sid]
    assert (seat.coaching, seat.call_sid_to_coach, seat.muted, seat.end_on_exit) == (
        True, PA, False, False,
    )  # fmt: skip


def test_coaching_needs_someone_in_the_room_to_coach(client: Client, room: str) -> None:
    with pytest.raises(TwilioRestException) as refused:
        client.conferences(room).participants.create(
            from_="+15005550001", to=SUPERVISOR, coaching=True, call_sid_to_coach="CA" + "9" * 32
        )
    assert refused.value.status == 400
