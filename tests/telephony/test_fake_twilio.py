"""The fake Twilio, driven through the real twilio library client the app uses."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import httpx
import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from app.telephony.rest import BaseUrlHttpClient, is_twilio_url, make_twilio_client, rebase
from app.telephony.sandbox.fake_twilio import FakeTwilio
from tests.clock import FakeClock

ON_CALL = "+15005550006"
OUR_NUMBER = "+15005550001"
CALLBACK = "https://nightdesk.example/twilio/sms/status?delivery=42"


class Posted:
    """Callbacks a receiver got: (url, form, headers), appended from other threads."""

    def __init__(self) -> None:
        self.items: list[tuple[str, dict[str, str], dict[str, str]]] = []
        self.lock = threading.Lock()

    def __call__(self, url: str, params: dict[str, str], headers: dict[str, str]) -> None:
        with self.lock:
            self.items.append((url, params, headers))

    def statuses(self, key: str) -> list[str]:
        with self.lock:
            return [params[key] for _, params, _ in self.items]

    def clear(self) -> None:
        with self.lock:
            self.items.clear()


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeTwilio, Posted]]:
    """One fake for the module, its callbacks routed to a `Posted` as an in-process app's
    would be; each test resets both."""
    posted = Posted()
    with FakeTwilio(deliver=posted) as fake:
        yield fake, posted


@pytest.fixture
def fake(served: tuple[FakeTwilio, Posted]) -> FakeTwilio:
    fake, posted = served
    fake.reset()
    posted.clear()
    return fake


@pytest.fixture
def posted(served: tuple[FakeTwilio, Posted], fake: FakeTwilio) -> Posted:
    return served[1]


@pytest.fixture
def client(fake: FakeTwilio) -> Client:
    return make_twilio_client(fake.account_sid, fake.auth_token, fake.base_url, timeout=5)


@pytest.fixture
def receiver() -> Iterator[tuple[str, Posted]]:
    """A tiny HTTP server on loopback that records the form posts it gets."""
    got = Posted()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            url = f"http://{self.headers['Host']}{self.path}"
            got(url, dict(parse_qsl(body)), dict(self.headers))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", got
    server.shutdown()
    server.server_close()


def test_sending_an_sms_records_it_and_returns_a_sid(fake: FakeTwilio, client: Client) -> None:
    message = client.messages.create(to=ON_CALL, from_=OUR_NUMBER, body="Urgent: burst pipe")

    assert message.sid.startswith("SM")
    assert len(message.sid) == 34
    assert message.status == "queued"
    assert message.num_segments == "1"
    assert message.date_created is not None
    [recorded] = fake.messages
    assert (recorded.sid, recorded.to, recorded.body) == (
        message.sid,
        ON_CALL,
        "Urgent: burst pipe",
    )
    [request] = fake.requests
    assert request.method == "POST"
    assert request.path == f"/2010-04-01/Accounts/{fake.account_sid}/Messages.json"
    assert request.params["From"] == OUR_NUMBER
    assert request.status == 201


def test_status_callbacks_arrive_over_http_signed_and_in_order(
    receiver: tuple[str, Posted],
) -> None:
    base, got = receiver
    callback_url = f"{base}/twilio/sms/status?delivery=7"
    with FakeTwilio() as fake:  # default delivery: real HTTP
        client = make_twilio_client(fake.account_sid, fake.auth_token, fake.base_url)
        sid = client.messages.create(
            to=ON_CALL, from_=OUR_NUMBER, body="hi", status_callback=callback_url
        ).sid

        fake.wait_for(lambda: len(got.items) == 2)

    assert got.statuses("MessageStatus") == ["sent", "delivered"]
    validator = RequestValidator(fake.auth_token)
    for url, params, headers in got.items:
        assert url == callback_url
        assert params["MessageSid"] == sid
        assert params["SmsStatus"] == params["MessageStatus"]
        assert validator.validate(url, params, headers["X-Twilio-Signature"])


def test_fetching_a_message_shows_its_delivery(fake: FakeTwilio, client: Client) -> None:
    sid = client.messages.create(to=ON_CALL, from_=OUR_NUMBER, body="hi").sid
    fake.settle()

    fetched = client.messages(sid).fetch()

    assert fetched.status == "delivered"
    assert fetched.date_sent is not None


def test_an_undelivered_sms_reports_its_error_code(
    fake: FakeTwilio, client: Client, posted: Posted
) -> None:
    fake.set_sms_outcome(ON_CALL, "undelivered")

    client.messages.create(to=ON_CALL, from_=OUR_NUMBER, body="hi", status_callback=CALLBACK)
    fake.wait_for(lambda: "undelivered" in posted.statuses("MessageStatus"))

    assert posted.statuses("MessageStatus") == ["sent", "undelivered"]
    assert posted.items[-1][1]["ErrorCode"] == "30003"
    assert "ErrorCode" not in posted.items[0][1]


def test_a_scripted_500_raises_twilio_rest_exception(fake: FakeTwilio, client: Client) -> None:
    fake.fail_next(1, status=500)

    with pytest.raises(TwilioRestException) as raised:
        client.messages.create(to=ON_CALL, from_=OUR_NUMBER, body="hi")

    assert raised.value.status == 500
    assert fake.messages == []
    client.messages.create(to=ON_CALL, from_=OUR_NUMBER, body="hi")  # only the next one failed
    assert [r.status for r in fake.requests] == [500, 201]


def test_a_429_carries_retry_after(fake: FakeTwilio) -> None:
    fake.fail_next(1, status=429, retry_after=3)

    response = httpx.post(
        f"{fake.base_url}/2010-04-01/Accounts/{fake.account_sid}/Messages.json",
        data={"To": ON_CALL, "From": OUR_NUMBER, "Body": "hi"},
        auth=(fake.account_sid, fake.auth_token),
    )

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"
    assert response.json()["code"] == 20429


def test_a_slow_answer_times_the_client_out_but_the_sms_was_sent(fake: FakeTwilio) -> None:
    client = make_twilio_client(fake.account_sid, fake.auth_token, fake.base_url, timeout=0.2)
    fake.delay_next(0.5)

    with pytest.raises(requests.exceptions.Timeout):
        client.messages.create(to=ON_CALL, from_=OUR_NUMBER, body="hi")

    assert fake.wait_for(lambda: fake.messages)  # Twilio may have sent it anyway


def test_listing_messages_filters_by_numbers_and_sent_day() -> None:
    clock = FakeClock()  # Thursday 2026-11-26 02:00 UTC
    with FakeTwilio(clock=clock, deliver=lambda url, params, headers: None) as fake:
        client = make_twilio_client(fake.account_sid, fake.auth_token, fake.base_url)
        ours = client.messages.create(to=ON_CALL, from_=OUR_NUMBER, body="ours").sid
        client.messages.create(to="+15005550007", from_=OUR_NUMBER, body="someone else")
        fake.settle()  # sent, so DateSent is set

        listed = client.messages.list(to=ON_CALL, from_=OUR_NUMBER)
        # Twilio's DateSent filters are days: a datetime counts as its day.
        late_that_day = client.messages.list(date_sent_after=clock() + timedelta(hours=21))
        next_day = client.messages.list(date_sent_after=clock() + timedelta(days=1))
        day_before = client.messages.list(date_sent_before=clock() - timedelta(days=1))

    assert [m.sid for m in listed] == [ours]
    assert len(late_that_day) == 2
    assert next_day == day_before == []


def test_listing_follows_pages_with_the_filters(fake: FakeTwilio, client: Client) -> None:
    sids = [
        client.calls.create(to=ON_CALL, from_=OUR_NUMBER, url="https://x.example/v").sid
        for _ in range(3)
    ]
    client.calls.create(to="+15005550007", from_=OUR_NUMBER, url="https://x.example/v")

    listed = client.calls.list(to=ON_CALL, page_size=2)

    assert [c.sid for c in listed] == sids[::-1]
    pages = [r for r in fake.requests if r.method == "GET"]
    assert [(r.params["To"], r.params["Page"]) for r in pages[1:]] == [(ON_CALL, "1")]


@pytest.mark.parametrize("number", ["5551234", "+1555ABC"])
def test_a_malformed_number_is_refused_with_21211(client: Client, number: str) -> None:
    with pytest.raises(TwilioRestException) as raised:
        client.messages.create(to=number, from_=OUR_NUMBER, body="hi")

    assert (raised.value.status, raised.value.code) == (400, 21211)


def test_scripted_invalid_and_unsubscribed_numbers(fake: FakeTwilio, client: Client) -> None:
    fake.mark_invalid("+15005550009")
    fake.mark_unsubscribed(ON_CALL)

    with pytest.raises(TwilioRestException) as invalid:
        client.calls.create(to="+15005550009", from_=OUR_NUMBER, url="https://x.example/v")
    with pytest.raises(TwilioRestException) as unsubscribed:
        client.messages.create(to=ON_CALL, from_=OUR_NUMBER, body="hi")

    assert invalid.value.code == 21211
    assert unsubscribed.value.code == 21610


def test_wrong_credentials_get_401(fake: FakeTwilio) -> None:
    client = make_twilio_client(fake.account_sid, "not-the-token", fake.base_url)

    with pytest.raises(TwilioRestException) as raised:
        client.messages.create(to=ON_CALL, from_=OUR_NUMBER, body="hi")

    assert (raised.value.status, raised.value.code) == (401, 20003)
    assert fake.messages == []


def test_a_call_with_amd_reports_who_answered(
    fake: FakeTwilio, client: Client, posted: Posted
) -> None:
    fake.set_call_outcome(ON_CALL, "completed", answered_by="machine_start", duration=12)

    call = client.calls.create(
        to=ON_CALL,
        from_=OUR_NUMBER,
        url="https://nightdesk.example/twilio/notify/1",
        status_callback="https://nightdesk.example/twilio/voice/status",
        status_callback_event=["initiated", "ringing", "answered", "completed"],
        machine_detection="Enable",
    )
    fake.wait_for(lambda: "completed" in posted.statuses("CallStatus"))

    assert call.sid.startswith("CA")
    assert call.status == "queued"
    assert posted.statuses("CallStatus") == ["initiated", "ringing", "in-progress", "completed"]
    last = posted.items[-1][1]
    assert (last["AnsweredBy"], last["CallDuration"], last["CallSid"]) == (
        "machine_start",
        "12",
        call.sid,
    )
    assert [p["SequenceNumber"] for _, p, _ in posted.items] == ["0", "1", "2", "3"]


def test_async_amd_posts_who_answered_to_its_own_callback(
    fake: FakeTwilio, client: Client, posted: Posted
) -> None:
    amd_url = "https://nightdesk.example/twilio/voice/amd"

    call = client.calls.create(
        to=ON_CALL,
        from_=OUR_NUMBER,
        url="https://x.example/v",
        machine_detection="DetectMessageEnd",
        async_amd="true",
        async_amd_status_callback=amd_url,
    )
    fake.settle()

    [(url, params, _)] = posted.items
    assert url == amd_url
    assert (params["CallSid"], params["AnsweredBy"]) == (call.sid, "human")


def test_an_unanswered_call_reports_only_completed_by_default(
    fake: FakeTwilio, client: Client, posted: Posted
) -> None:
    fake.set_call_outcome(ON_CALL, "no-answer")

    client.calls.create(to=ON_CALL, from_=OUR_NUMBER, twiml="<Response/>", status_callback=CALLBACK)
    fake.settle()

    assert posted.statuses("CallStatus") == ["no-answer"]
    assert posted.items[0][1]["CallDuration"] == "0"


def test_the_app_can_hang_up_a_call_in_progress(
    fake: FakeTwilio, client: Client, posted: Posted
) -> None:
    fake.set_call_outcome(ON_CALL, "in-progress")
    sid = client.calls.create(
        to=ON_CALL, from_=OUR_NUMBER, url="https://x.example/v", status_callback=CALLBACK
    ).sid
    fake.wait_for(lambda: client.calls(sid).fetch().status == "in-progress")

    client.calls(sid).update(status="completed")
    fake.settle()

    assert posted.statuses("CallStatus") == ["completed"]
    with pytest.raises(TwilioRestException) as raised:
        client.calls(sid).update(url="https://x.example/too-late")
    assert raised.value.code == 21220


def test_dequeueing_the_front_caller_redirects_their_call(fake: FakeTwilio, client: Client) -> None:
    first = fake.add_inbound_call("+15005550100", OUR_NUMBER)
    second = fake.add_inbound_call("+15005550101", OUR_NUMBER)
    queue_sid = fake.enqueue(first, "pa-queue")
    fake.enqueue(second, "pa-queue")

    [queue] = client.queues.list()
    member = client.queues(queue_sid).members("Front").update(url="https://x.example/pa")

    assert (queue.friendly_name, queue.current_size) == ("pa-queue", 2)
    assert (member.call_sid, member.position) == (first, 1)
    assert [m.call_sid for m in client.queues(queue_sid).members.list()] == [second]
    [call] = [c for c in fake.calls if c.sid == first]
    assert call.redirects == ["https://x.example/pa"]


def test_a_caller_hanging_up_leaves_the_queue(
    fake: FakeTwilio, client: Client, posted: Posted
) -> None:
    sid = fake.add_inbound_call("+15005550100", OUR_NUMBER, status_callback=CALLBACK)
    queue_sid = fake.enqueue(sid, "pa-queue")

    fake.hang_up(sid)
    fake.settle()

    assert client.queues(queue_sid).fetch().current_size == 0
    assert posted.statuses("CallStatus") == ["completed"]
    assert posted.items[0][1]["Direction"] == "inbound"


def test_an_unknown_call_is_a_404(client: Client) -> None:
    with pytest.raises(TwilioRestException) as raised:
        client.calls("CA" + "0" * 32).fetch()

    assert (raised.value.status, raised.value.code) == (404, 20404)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json?PageSize=50",
            "http://127.0.0.1:8765/2010-04-01/Accounts/AC1/Messages.json?PageSize=50",
        ),
        ("https://messaging.twilio.com/v1/Services", "http://127.0.0.1:8765/v1/Services"),
        ("https://example.com/media/1", "https://example.com/media/1"),
    ],
)
def test_the_base_url_swap_keeps_the_path_and_query(url: str, expected: str) -> None:
    assert BaseUrlHttpClient("http://127.0.0.1:8765").rebase(url) == expected


def test_twilio_requests_go_through_the_proxy_the_environment_names(
    receiver: tuple[str, Posted], monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy, got = receiver
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = make_twilio_client("AC1", "token", "http://twilio.test", timeout=5)

    answer = client.http_client.request(
        "POST", "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json", data={"To": "1"}
    )

    assert answer.status_code == 204
    ((_, form, headers),) = got.items  # twilio.test has no address: only the proxy answers
    assert (headers["Host"], form) == ("twilio.test", {"To": "1"})


def test_a_host_in_no_proxy_is_reached_directly(
    receiver: tuple[str, Posted], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, got = receiver
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    client = make_twilio_client("AC1", "token", base, timeout=5)

    answer = client.http_client.request(
        "POST", "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json", data={"To": "1"}
    )

    assert answer.status_code == 204
    assert [url for url, _, _ in got.items] == [f"{base}/2010-04-01/Accounts/AC1/Messages.json"]


def test_the_default_base_changes_nothing() -> None:
    url = "https://messaging.twilio.com/v1/Services?PageSize=5"

    assert BaseUrlHttpClient("https://api.twilio.com").rebase(url) == url


def test_a_recordings_audio_is_served_at_its_url_with_mp3_to_the_account_only(
    fake: FakeTwilio,
) -> None:
    recording_url = fake.add_recording(b"ID3 the caller's voice")
    assert recording_url.startswith(
        f"https://api.twilio.com/2010-04-01/Accounts/{fake.account_sid}/"
    )
    media = rebase(recording_url + ".mp3", fake.base_url)

    played = httpx.get(media, auth=(fake.account_sid, fake.auth_token))
    refused = httpx.get(media, auth=(fake.account_sid, "wrong"))
    missing = httpx.get(media.replace("/Recordings/RE", "/Recordings/REx"),
                        auth=(fake.account_sid, fake.auth_token))  # fmt: skip

    assert (played.status_code, played.headers["content-type"]) == (200, "audio/mpeg")
    assert played.content == b"ID3 the caller's voice"
    assert refused.status_code == 401
    assert missing.status_code == 404


def test_only_twilios_https_hosts_count_as_twilio() -> None:
    assert is_twilio_url("https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1")
    assert not is_twilio_url("http://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1")
    assert not is_twilio_url("https://api.twilio.com.evil.test/Recordings/RE1")
    assert not is_twilio_url("https://eviltwilio.com/Recordings/RE1")
