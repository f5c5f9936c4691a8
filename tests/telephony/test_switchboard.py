"""The fake Twilio's switchboard: what happens to calls between their webhooks, in-process and
over its sandbox HTTP endpoints (as `nightdesk call --url` reaches the demo's)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from twilio.rest import Client

from app.telephony.rest import make_twilio_client
from app.telephony.sandbox.fake_twilio import FakeTwilio
from app.telephony.sandbox.switchboard import ConferenceEnded, Ended, HttpSwitchboard, Redirected

CALLER, OURS = "+15005550100", "+15005550001"


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(deliver=lambda url, params, headers: None) as twilio:
        yield twilio


@pytest.fixture
def board(fake: FakeTwilio) -> Iterator[HttpSwitchboard]:
    switchboard = HttpSwitchboard(fake.base_url, fake.account_sid, fake.auth_token)
    yield switchboard
    switchboard.close()


def test_a_caller_taken_out_of_the_queue_hears_where_to_go(
    fake: FakeTwilio, board: HttpSwitchboard
) -> None:
    client: Client = make_twilio_client(fake.account_sid, fake.auth_token, fake.base_url)
    queue_sid = board.wait_in_queue("CA1", "pa-queue", CALLER, OURS)
    assert board.next_event("CA1", 0) is None  # nothing has happened yet

    client.queues(queue_sid).members("CA1").update(url="https://app.example/connect")

    assert board.next_event("CA1", 5) == Redirected("https://app.example/connect", "POST")
    assert client.queues(queue_sid).fetch().current_size == 0


def test_a_conference_ends_for_everyone_when_a_participant_who_ends_it_leaves(
    fake: FakeTwilio, board: HttpSwitchboard
) -> None:
    room = board.join_conference("CA1", "room", end_on_exit=True)
    assert board.join_conference("CA2", "room", end_on_exit=False) == room

    fake.hang_up("CA1")  # not a call the fake placed: it only leaves the room

    assert board.next_event("CA2", 5) == ConferenceEnded()
    assert fake.lines.rooms() == {}


def test_a_call_ended_through_the_rest_api_hears_it_end(
    fake: FakeTwilio, board: HttpSwitchboard
) -> None:
    client: Client = make_twilio_client(fake.account_sid, fake.auth_token, fake.base_url)
    board.wait_in_queue("CA1", "pa-queue", CALLER, OURS)

    client.calls("CA1").update(status="completed")

    assert board.next_event("CA1", 5) == Ended()


def test_the_sandbox_endpoints_want_the_accounts_credentials(fake: FakeTwilio) -> None:
    stranger = HttpSwitchboard(fake.base_url, fake.account_sid, "not-the-token")
    with pytest.raises(Exception, match="401"):
        stranger.wait_in_queue("CA1", "pa-queue", CALLER, OURS)
    stranger.close()
