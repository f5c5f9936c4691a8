"""The senders, through the real twilio client against the fake Twilio, and real SMTP
against a local aiosmtpd server."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from twilio.rest import Client

from app.dispatch.senders import (
    Outgoing,
    PermanentSendError,
    SmtpEmailSender,
    SmtpServer,
    TransientSendError,
    TwilioSmsSender,
    TwilioVoiceSender,
    make_senders,
    parse_smtp_url,
    redact,
)
from app.flows.schema import Channel
from app.settings import Settings
from app.telephony.rest import make_twilio_client
from app.telephony.sandbox.fake_twilio import FakeTwilio
from tests.support.smtp import SmtpInbox, free_port

ON_CALL = "+15005550006"
CLIENT_NUMBER = "+15005550001"
STATUS_URL = "https://nightdesk.test/twilio/sms/status?delivery=42"
BODY = "Nightdesk 4F urgent: burst pipe at 12 High St, call Ann +15005550100. Reply 4F to ack"
FROM_EMAIL = "Nightdesk <alerts@nightdesk.test>"


def outgoing_sms(**changes: Any) -> Outgoing:
    """The SMS for delivery 42, attempted now, with `changes`."""
    base = Outgoing(
        delivery_id=42,
        channel=Channel.sms,
        to=ON_CALL,
        from_number=CLIENT_NUMBER,
        body=BODY,
        ref="4F",
        attempt_started=datetime.now(UTC),
        status_callback=STATUS_URL,
    )
    return replace(base, **changes)


def outgoing_call(**changes: Any) -> Outgoing:
    """The notification call for delivery 42, with `changes`."""
    call = outgoing_sms(
        channel=Channel.voice,
        call_url="https://nightdesk.test/twilio/notify/42",
        status_callback="https://nightdesk.test/twilio/voice/status?delivery=42",
    )
    return replace(call, **changes)


def outgoing_email(**changes: Any) -> Outgoing:
    """The email for delivery 42, with `changes`."""
    email = outgoing_sms(
        channel=Channel.email,
        to="ann@plumbing.example",
        subject="Urgent message 4F",
        html="<p>Burst pipe at <b>12 High St</b></p>",
    )
    return replace(email, **changes)


# --- Twilio ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served() -> Iterator[FakeTwilio]:
    """One fake for the module; status callbacks go nowhere (these tests read the fake)."""
    with FakeTwilio(deliver=lambda url, params, headers: None) as fake:
        yield fake


@pytest.fixture
def fake(served: FakeTwilio) -> FakeTwilio:
    served.reset()
    return served


@pytest.fixture
def client(fake: FakeTwilio) -> Client:
    """The app's twilio client, impatient so that a slow answer is a fast test."""
    return make_twilio_client(fake.account_sid, fake.auth_token, fake.base_url, timeout=0.5)


def test_an_sms_reaches_twilio_with_body_numbers_and_status_callback(
    fake: FakeTwilio, client: Client
) -> None:
    sid = TwilioSmsSender(client).send(outgoing_sms())

    [message] = fake.messages
    assert sid == message.sid
    assert sid.startswith("SM")
    assert (message.to, message.from_, message.body) == (ON_CALL, CLIENT_NUMBER, BODY)
    assert message.status_callback == STATUS_URL


def test_a_notification_call_asks_for_amd_and_every_status_event(
    fake: FakeTwilio, client: Client
) -> None:
    sid = TwilioVoiceSender(client).send(outgoing_call())

    [call] = fake.calls
    [request] = fake.requests
    assert sid == call.sid
    assert sid.startswith("CA")
    assert (call.to, call.from_, call.url) == (
        ON_CALL,
        CLIENT_NUMBER,
        "https://nightdesk.test/twilio/notify/42",
    )
    assert call.machine_detection == "Enable"
    assert call.status_callback == "https://nightdesk.test/twilio/voice/status?delivery=42"
    events = [value for key, value in request.form if key == "StatusCallbackEvent"]
    assert events == ["initiated", "ringing", "answered", "completed"]
    assert request.params["StatusCallbackMethod"] == "POST"
    assert request.params["Timeout"] == "25"


def test_a_voice_delivery_without_call_url_is_refused_before_calling(
    fake: FakeTwilio, client: Client
) -> None:
    with pytest.raises(PermanentSendError):
        TwilioVoiceSender(client).send(outgoing_call(call_url=None))

    assert fake.requests == []


@pytest.mark.parametrize("status", [500, 503, 429])
def test_twilio_trouble_is_worth_a_retry(fake: FakeTwilio, client: Client, status: int) -> None:
    fake.fail_next(1, status=status)

    with pytest.raises(TransientSendError) as raised:
        TwilioSmsSender(client).send(outgoing_sms())

    assert raised.value.code == 20000 + status
    assert fake.messages == []


def test_wrong_credentials_are_retried_once_an_operator_fixes_them(fake: FakeTwilio) -> None:
    client = make_twilio_client(fake.account_sid, "rotated-away", fake.base_url, timeout=0.5)

    with pytest.raises(TransientSendError) as raised:
        TwilioSmsSender(client).send(outgoing_sms())

    assert raised.value.code == 20003


def test_an_invalid_number_is_never_retried(fake: FakeTwilio, client: Client) -> None:
    fake.mark_invalid(ON_CALL)

    with pytest.raises(PermanentSendError) as sms:
        TwilioSmsSender(client).send(outgoing_sms())
    with pytest.raises(PermanentSendError) as call:
        TwilioVoiceSender(client).send(outgoing_call())

    assert (sms.value.code, call.value.code) == (21211, 21211)
    assert ON_CALL not in sms.value.message  # error texts reach logs: no full numbers
    assert "…0006" in sms.value.message


def test_a_recipient_who_replied_stop_is_never_retried(fake: FakeTwilio, client: Client) -> None:
    fake.mark_unsubscribed(ON_CALL)

    with pytest.raises(PermanentSendError) as raised:
        TwilioSmsSender(client).send(outgoing_sms())

    assert raised.value.code == 21610


def test_a_timed_out_sms_is_retried_but_found_first(fake: FakeTwilio, client: Client) -> None:
    sender = TwilioSmsSender(client)
    outgoing = outgoing_sms()
    fake.delay_next(1.5, path_contains="Messages.json")

    with pytest.raises(TransientSendError) as raised:
        sender.send(outgoing)
    found = sender.find_previous(outgoing)

    [message] = fake.messages
    assert raised.value.code is None
    assert found == message.sid


def test_a_timed_out_call_is_found_before_calling_again(fake: FakeTwilio, client: Client) -> None:
    sender = TwilioVoiceSender(client)
    outgoing = outgoing_call()
    fake.delay_next(1.5, path_contains="Calls.json")

    with pytest.raises(TransientSendError):
        sender.send(outgoing)

    [call] = fake.calls
    assert sender.find_previous(outgoing) == call.sid


def test_nothing_previous_when_nothing_was_sent(client: Client) -> None:
    assert TwilioSmsSender(client).find_previous(outgoing_sms()) is None
    assert TwilioVoiceSender(client).find_previous(outgoing_call()) is None


def test_an_earlier_identical_sms_is_not_taken_for_this_attempt(client: Client) -> None:
    sender = TwilioSmsSender(client)
    sender.send(outgoing_sms())  # e.g. the previous escalation round

    later = outgoing_sms(attempt_started=datetime.now(UTC) + timedelta(minutes=5))

    assert sender.find_previous(later) is None


def test_another_sms_to_the_same_person_is_not_taken_for_ours(client: Client) -> None:
    sender = TwilioSmsSender(client)
    sender.send(outgoing_sms(body="Nightdesk 4G routine: gutter. Reply 4G to ack"))
    sent = sender.send(outgoing_sms())

    assert sender.find_previous(outgoing_sms()) == sent


def test_only_calls_placed_through_the_api_count_as_ours(fake: FakeTwilio, client: Client) -> None:
    fake.add_inbound_call(CLIENT_NUMBER, ON_CALL)  # same numbers, but not an API call

    assert TwilioVoiceSender(client).find_previous(outgoing_call()) is None


def test_a_failed_lookup_is_worth_a_retry(fake: FakeTwilio, client: Client) -> None:
    fake.fail_next(1, status=500)

    with pytest.raises(TransientSendError):
        TwilioSmsSender(client).find_previous(outgoing_sms())


def test_redact_keeps_the_last_four_digits() -> None:
    assert (
        redact("The 'To' number +15005550006 is not valid") == "The 'To' number …0006 is not valid"
    )


# --- SMTP --------------------------------------------------------------------------------


@pytest.fixture
def inbox() -> Iterator[SmtpInbox]:
    with SmtpInbox(replies={"gone@plumbing.example": "550 5.1.1 No such user"}) as server:
        yield server


def test_an_email_arrives_with_text_html_and_a_recognisable_message_id(
    inbox: SmtpInbox,
) -> None:
    sent = SmtpEmailSender(inbox.url, FROM_EMAIL, timeout=2).send(outgoing_email())

    [email] = inbox.wait_for(1)
    assert sent == email["Message-ID"] == "<nightdesk-delivery-42@nightdesk.test>"
    assert (email["From"], email["To"], email["Subject"]) == (
        FROM_EMAIL,
        "ann@plumbing.example",
        "Urgent message 4F",
    )
    assert email.get_content_type() == "multipart/alternative"
    text = email.get_body(("plain",))
    html = email.get_body(("html",))
    assert text is not None
    assert html is not None
    assert text.get_content().strip() == BODY
    assert "<b>12 High St</b>" in html.get_content()
    assert inbox.envelopes[0].mail_from == "alerts@nightdesk.test"


def test_a_plain_email_without_html_is_a_single_part(inbox: SmtpInbox) -> None:
    SmtpEmailSender(inbox.url, FROM_EMAIL, timeout=2).send(outgoing_email(html=None))

    [email] = inbox.wait_for(1)
    assert email.get_content_type() == "text/plain"


def test_a_resent_email_keeps_its_message_id(inbox: SmtpInbox) -> None:
    sender = SmtpEmailSender(inbox.url, FROM_EMAIL, timeout=2)

    first, second = sender.send(outgoing_email()), sender.send(outgoing_email())

    assert first == second
    assert sender.find_previous(outgoing_email()) is None  # SMTP cannot be asked


def test_an_unknown_mailbox_is_never_retried(inbox: SmtpInbox) -> None:
    sender = SmtpEmailSender(inbox.url, FROM_EMAIL, timeout=2)

    with pytest.raises(PermanentSendError) as raised:
        sender.send(outgoing_email(to="gone@plumbing.example"))

    assert raised.value.code == 550
    assert inbox.messages == []


def test_a_greylisted_recipient_is_retried() -> None:
    replies = {"ann@plumbing.example": "451 4.7.1 Greylisted, try again later"}
    with SmtpInbox(replies=replies) as inbox, pytest.raises(TransientSendError) as raised:
        SmtpEmailSender(inbox.url, FROM_EMAIL, timeout=2).send(outgoing_email())

    assert raised.value.code == 451


def test_a_malformed_address_is_refused_without_connecting() -> None:
    sender = SmtpEmailSender(f"smtp://127.0.0.1:{free_port()}", FROM_EMAIL, timeout=0.5)

    with pytest.raises(PermanentSendError):
        sender.send(outgoing_email(to="ann at plumbing"))


def test_no_smtp_server_listening_is_worth_a_retry() -> None:
    sender = SmtpEmailSender(f"smtp://127.0.0.1:{free_port()}", FROM_EMAIL, timeout=0.5)

    with pytest.raises(TransientSendError):
        sender.send(outgoing_email())


def test_an_smtp_server_that_never_greets_is_worth_a_retry() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never speaks
        url = f"smtp://127.0.0.1:{silent.getsockname()[1]}"
        sender = SmtpEmailSender(url, FROM_EMAIL, timeout=0.3)

        with pytest.raises(TransientSendError):
            sender.send(outgoing_email())


def test_smtp_login_uses_the_credentials_in_the_url() -> None:
    with SmtpInbox(credentials=("nightdesk", "p@ss:word")) as inbox:
        SmtpEmailSender(inbox.url, FROM_EMAIL, timeout=2).send(outgoing_email())
        assert len(inbox.wait_for(1)) == 1

        wrong = inbox.url.replace("p%40ss", "nope")
        with pytest.raises(TransientSendError) as raised:  # our setup, not this email
            SmtpEmailSender(wrong, FROM_EMAIL, timeout=2).send(outgoing_email())
        assert raised.value.code == 535


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://localhost:25", SmtpServer("localhost", 25)),
        ("smtp://mail.example", SmtpServer("mail.example", 25)),
        ("smtps://mail.example", SmtpServer("mail.example", 465, tls=True)),
        (
            "smtp://ann%40x:s%2Fcret@mail.example:587?starttls=1",
            SmtpServer("mail.example", 587, starttls=True, username="ann@x", password="s/cret"),
        ),
    ],
)
def test_smtp_urls(url: str, expected: SmtpServer) -> None:
    assert parse_smtp_url(url) == expected


@pytest.mark.parametrize(
    "url", ["http://mail.example", "smtp://", "smtps://mail.example?starttls=1"]
)
def test_smtp_urls_that_make_no_sense_are_refused(url: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message varies with the mistake
        parse_smtp_url(url)


# --- wiring ------------------------------------------------------------------------------


def test_make_senders_covers_every_channel() -> None:
    settings = Settings(_env_file=None, public_url="https://desk.example", smtp_url="smtp://mx:25")

    senders = make_senders(settings)

    assert set(senders) == set(Channel)
    email = senders[Channel.email]
    assert isinstance(email, SmtpEmailSender)
    assert email.message_id(7) == "<nightdesk-delivery-7@desk.example>"
