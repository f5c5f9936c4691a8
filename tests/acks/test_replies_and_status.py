"""Contacts texting back, and Twilio reporting what became of our texts, as signed webhooks."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

import pytest
from sqlalchemy.orm import Session

from app.acks.inbound import answer_sms
from app.acks.service import Acknowledgement, acknowledge
from app.acks.webhooks import SmsReceived
from app.clients.flows import FlowStore
from app.db import transaction
from app.dispatch.status import apply_status
from app.dispatch.webhooks import StatusReport
from app.messages.models import Message, MessageStatus
from tests.dispatch.conftest import ALEX, NUMBER, SAM, Desk, ref
from tests.support.locks import Racer

# --- replies --------------------------------------------------------------------------------


def test_reply_1_takes_the_only_open_message_and_confirms(desk: Desk) -> None:
    leak = desk.message(name="Ann Lee", issue="burst pipe")
    desk.sent(leak, "sam")

    assert desk.text(SAM, "1") == f"Thanks, Acme Plumbing #{ref(leak)} is yours."

    message = desk.look(leak)
    assert (message.status, message.acknowledged_by) == (MessageStatus.acknowledged, "Sam Taylor")
    assert desk.timeline(leak)[-2:] == ["reply", "acknowledged"]
    # Nobody else had been told yet, so nobody else is bothered.
    assert {d.status for d in desk.deliveries(leak, contact_id=desk.contact("alex").id)} == {
        "cancelled"
    }
    assert desk.deliveries(leak, kind="info") == []


def test_ack_with_a_ref_takes_that_one_of_several(desk: Desk) -> None:
    first, second = desk.message(), desk.message()
    desk.sent(first, "sam")
    desk.sent(second, "sam")

    assert desk.text(SAM, f" ack {ref(second).lower()} ") == (
        f"Thanks, Acme Plumbing #{ref(second)} is yours."
    )
    assert desk.look(second).status == MessageStatus.acknowledged
    assert desk.look(first).status == MessageStatus.notified


def test_several_open_and_no_ref_asks_which(desk: Desk) -> None:
    messages = [desk.message() for _ in range(3)]
    for message_id in messages:
        desk.sent(message_id, "sam")  # three separate texts

    a, b, c = (ref(m) for m in messages)
    assert desk.text(SAM, "ok") == f"You have 3 open messages: reply ACK {a}, ACK {b} or ACK {c}."
    for message_id in messages:
        assert desk.look(message_id).status == MessageStatus.notified
        assert desk.timeline(message_id)[-1] == "reply"


def test_reply_1_to_a_bundle_takes_every_message_in_it(desk: Desk) -> None:
    first, second = desk.message(), desk.message()
    bundle = desk.sid("SM")
    desk.sent(first, "sam", sid=bundle)
    desk.sent(second, "sam", sid=bundle)

    assert desk.text(SAM, "1") == f"Thanks, Acme Plumbing #{ref(first)}, #{ref(second)} are yours."
    assert desk.look(first).status == desk.look(second).status == MessageStatus.acknowledged


def test_a_message_someone_else_has_already_taken_says_who(desk: Desk) -> None:
    leak = desk.message()
    desk.sent(leak, "sam")
    desk.sent(leak, "alex")

    assert desk.text(ALEX, "1") == f"Thanks, Acme Plumbing #{ref(leak)} is yours."
    assert desk.text(SAM, f"ACK {ref(leak)}") == f"Alex Reed already has #{ref(leak)}."
    assert desk.text(SAM, "1") == "You have no open messages."
    # Sam had been told, so Sam is told it's taken.
    [taken] = desk.deliveries(leak, kind="info")
    assert taken.address == SAM
    assert (
        taken.body
        == f"Acme Plumbing #{ref(leak)}: Alex Reed has taken this message. No need to call back."
    )


def test_a_closed_message_says_so(desk: Desk) -> None:
    leak = desk.message()
    desk.sent(leak, "sam")
    with desk.sessions.begin() as session:
        session.get_one(Message, leak).status = MessageStatus.closed

    assert desk.text(SAM, f"ack {ref(leak)}") == f"#{ref(leak)} is already closed."


def test_a_ref_that_is_not_theirs_is_refused(desk: Desk) -> None:
    leak = desk.message()
    desk.sent(leak, "sam")

    assert desk.text(SAM, "ACK ZZZ") == "There's no open message #ZZZ for you."
    assert desk.look(leak).status == MessageStatus.notified


def test_a_text_from_an_unknown_number_is_turned_away(desk: Desk) -> None:
    assert desk.text("+441134960444", "1") == (
        "This number sends Nightdesk notifications and can't take messages. Please call it instead."
    )


def test_an_unreadable_reply_is_explained_and_kept_on_the_timeline(desk: Desk) -> None:
    leak = desk.message()
    desk.sent(leak, "sam")

    assert desk.text(SAM, "on my way, 20 mins") == (
        "Sorry, I didn't understand. Reply 1 to take your message, or ACK and its number."
    )
    assert desk.timeline(leak)[-1] == "reply"
    assert desk.look(leak).status == MessageStatus.notified


def test_stop_opts_out_start_opts_back_in_and_help_explains(desk: Desk) -> None:
    assert desk.text(SAM, "STOP") is None  # Twilio sends the carrier's confirmation itself
    assert desk.contact("sam").sms_opted_out

    assert desk.text(SAM, "start") == (
        "You'll get Nightdesk texts for Acme Plumbing again. Reply STOP to stop them."
    )
    assert not desk.contact("sam").sms_opted_out

    assert desk.text(SAM, "help") == (
        "Nightdesk notifications for Acme Plumbing. Reply 1 to take a message, "
        "ACK 4F for one of several, STOP to stop texts."
    )


def test_a_reply_with_control_characters_in_it_is_still_understood_and_kept(desk: Desk) -> None:
    leak = desk.message()
    desk.sent(leak, "sam")

    assert desk.text(SAM, "\x001\x1b\n") == f"Thanks, Acme Plumbing #{ref(leak)} is yours."
    assert desk.look(leak).status == MessageStatus.acknowledged


def test_a_repeated_reply_is_acted_on_once(desk: Desk) -> None:
    leak = desk.message()
    desk.sent(leak, "sam")
    sid = desk.sid("SM")

    assert desk.text(SAM, "1", sid=sid) is not None
    assert desk.text(SAM, "1", sid=sid) is None
    assert desk.timeline(leak).count("reply") == 1


# --- at the same moment (PostgreSQL runs both at once; SQLite's one writer, one after another) --


def reply(desk: Desk, sender: str, body: str) -> Callable[[Session], str | None]:
    """A text arriving, as the /twilio/sms route stores it: one unit of work."""
    sms = SmsReceived(desk.sid("SM"), sender, NUMBER, body)
    return lambda session: answer_sms(session, FlowStore(), sms, desk.clock())


def only_on_postgresql(desk: Desk) -> None:
    if not desk.settings.database_url.startswith("postgresql"):
        pytest.skip("SQLite's one writer never acknowledges twice at once")


def test_two_contacts_replying_at_once_one_has_it_and_the_other_is_told_who(desk: Desk) -> None:
    """Alex's reply waits at the message's row lock while Sam's is stored, then finds it taken.
    Reading the message without the lock, both would take it and both be told it is theirs."""
    only_on_postgresql(desk)
    leak = desk.message()
    desk.sent(leak, "sam")
    desk.sent(leak, "alex")

    with transaction(desk.sessions) as session:
        sams = reply(desk, SAM, "1")(session)
        alexs = Racer(desk.sessions, reply(desk, ALEX, "1"))
        alexs.wait_until_blocked()

    assert sams == f"Thanks, Acme Plumbing #{ref(leak)} is yours."
    assert alexs.result() == f"Sam Taylor already has #{ref(leak)}."
    assert desk.look(leak).acknowledged_by == "Sam Taylor"
    assert desk.timeline(leak).count("acknowledged") == 1


def test_an_operator_acknowledging_as_a_contact_replies_is_told_who_has_it(desk: Desk) -> None:
    """`nightdesk messages ack` calls acknowledge() itself: its own row lock makes it wait."""
    only_on_postgresql(desk)
    leak = desk.message()
    desk.sent(leak, "sam")

    def operator(session: Session) -> Acknowledgement:
        return acknowledge(session, FlowStore(), leak, by="operator", via="operator",
                           now=desk.clock())  # fmt: skip

    with transaction(desk.sessions) as session:
        sams = reply(desk, SAM, "1")(session)
        operators = Racer(desk.sessions, operator)
        operators.wait_until_blocked()

    assert sams == f"Thanks, Acme Plumbing #{ref(leak)} is yours."
    assert operators.result() == Acknowledgement(leak, ref(leak), first=False, by="Sam Taylor")
    assert desk.look(leak).acknowledged_by == "Sam Taylor"
    assert desk.timeline(leak).count("acknowledged") == 1


# --- status callbacks -----------------------------------------------------------------------


def sms_status(desk: Desk, delivery: int, sid: str, status: str, code: str = "") -> int:
    params = {"MessageSid": sid, "MessageStatus": status, "ErrorCode": code}
    return desk.post(f"/twilio/sms/status?d={delivery}", params).status_code


def test_delivered_is_recorded(desk: Desk) -> None:
    leak = desk.message()
    delivery = desk.sent(leak, "sam", sid="SM" + "d" * 32)

    assert sms_status(desk, delivery, "SM" + "d" * 32, "sent") == 204
    assert sms_status(desk, delivery, "SM" + "d" * 32, "delivered") == 204

    [row] = desk.deliveries(leak, id=delivery)
    assert (row.status, row.provider_status) == ("delivered", "delivered")
    assert desk.look(leak).status == MessageStatus.notified  # delivered is not acknowledged


def test_a_sent_arriving_after_delivered_changes_nothing(desk: Desk) -> None:
    """Twilio doesn't promise its callbacks' order."""
    leak = desk.message()
    delivery = desk.sent(leak, "sam", sid="SM" + "d" * 32)

    assert sms_status(desk, delivery, "SM" + "d" * 32, "delivered") == 204
    assert sms_status(desk, delivery, "SM" + "d" * 32, "sent") == 204

    [row] = desk.deliveries(leak, id=delivery)
    assert (row.status, row.provider_status) == ("delivered", "delivered")


def test_a_failed_text_fails_over_to_the_next_channel_once(desk: Desk) -> None:
    leak = desk.message()
    sid = "SM" + "f" * 32
    delivery = desk.sent(leak, "sam", sid=sid)

    assert sms_status(desk, delivery, sid, "undelivered", "30003") == 204
    assert sms_status(desk, delivery, sid, "undelivered", "30003") == 204  # Twilio again

    [row] = desk.deliveries(leak, id=delivery)
    assert row.status == "failed"
    assert row.error is not None
    assert "30003" in row.error
    [call] = desk.deliveries(leak, contact_id=desk.contact("sam").id, channel="voice")
    assert (call.status, call.address, call.failover) == ("pending", SAM, True)
    assert desk.timeline(leak).count("failed") == 1


def test_a_late_sent_arriving_while_undelivered_is_stored_changes_nothing(desk: Desk) -> None:
    """PostgreSQL: the second callback waits at the delivery's row lock, then finds it settled.
    Reading the row unlocked, it would write its progress over the failure."""
    only_on_postgresql(desk)
    leak = desk.message()
    sid = "SM" + "e" * 32
    delivery = desk.sent(leak, "sam", sid=sid)

    def callback(status: str, code: str = "") -> Callable[[Session], None]:
        report = StatusReport.for_sms(
            {"MessageSid": sid, "MessageStatus": status, "ErrorCode": code}
        )
        return lambda session: apply_status(session, FlowStore(), delivery, report, desk.clock())

    with transaction(desk.sessions) as session:
        callback("undelivered", "30003")(session)
        late = Racer(desk.sessions, callback("sent"))
        late.wait_until_blocked()
    late.result()

    [row] = desk.deliveries(leak, id=delivery)
    assert (row.status, row.provider_status) == ("failed", "undelivered")


def test_a_bundled_text_settles_every_delivery_in_it(desk: Desk) -> None:
    first, second = desk.message(), desk.message()
    bundle = "SM" + "b" * 32
    delivery = desk.sent(first, "sam", sid=bundle)
    desk.sent(second, "sam", sid=bundle)

    assert sms_status(desk, delivery, bundle, "delivered") == 204

    assert [d.status for d in desk.deliveries(second, provider_sid=bundle)] == ["delivered"]


def test_a_callback_for_an_unknown_delivery_is_accepted_and_ignored(desk: Desk) -> None:
    assert sms_status(desk, 999_999, "SM" + "0" * 32, "delivered") == 204


@pytest.mark.parametrize(
    "delivery", ["99999999999999999999", "2147483648", "-1", "1e3", "٣", "0x1F", ""]
)
def test_a_callback_for_a_delivery_id_no_database_could_hold_is_a_bad_request(
    desk: Desk, delivery: str
) -> None:
    path = f"/twilio/sms/status?{urlencode({'d': delivery})}"
    response = desk.post(path, {"MessageSid": "SM" + "0" * 32, "MessageStatus": "delivered"})

    assert response.status_code == 400
    assert "parameter d" in response.json()["detail"]


def test_a_callback_without_a_status_is_a_bad_request(desk: Desk) -> None:
    response = desk.post("/twilio/sms/status?d=1", {"MessageSid": "SM" + "0" * 32})
    assert response.status_code == 400


@pytest.mark.parametrize("path", ["/twilio/sms", "/twilio/sms/status?d=1"])
def test_a_forged_signature_is_refused(desk: Desk, path: str) -> None:
    params = {"MessageSid": "SM" + "0" * 32, "From": SAM, "Body": "1", "MessageStatus": "failed"}
    assert desk.post(path, params, token="not-the-token").status_code == 403
