"""Retention: a client's messages, calls and recording links older than its `retention.days`
are purged, by the dispatcher and by `nightdesk purge`, each batch audited; recordings are
deleted at Twilio when the client asks, without Twilio ever holding the purge up."""

from __future__ import annotations

import datetime as dt
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.accounts.models import AuditEvent
from app.calls.models import Call, CallEvent
from app.clients.flows import FlowStore
from app.clients.models import Client
from app.db import Database, make_database, transaction
from app.dispatch.dispatcher import make_dispatcher
from app.dispatch.models import Delivery, Escalation
from app.flows.loader import FlowFileError, parse_flow
from app.flows.pins import hash_pin
from app.flows.schema import RetentionSettings
from app.messages.models import Message, MessageEvent, MessageRead
from app.messages.reads import Reader, log_reads
from app.records.dispatcher import PurgeRecords, add_retention
from app.records.models import RecordingDeletion
from app.records.purge import PURGED, purge_batch, purge_copies, retaining_clients
from app.records.retention import Record, due_for_purge, purge_before
from app.settings import PLACEHOLDER_ACCOUNT_SID, Settings
from app.summaries.models import Summary
from app.telephony.rest import make_twilio_client
from app.telephony.sandbox.fake_twilio import FakeTwilio
from app.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.clock import FakeClock
from tests.conftest import AUTH_TOKEN
from tests.support.cli import nightdesk
from tests.support.clients import HARBOUR, Clients
from tests.support.clients import clients as clients
from tests.support.locks import Racer

NOW = dt.datetime(2026, 11, 26, 2, 0, tzinfo=dt.UTC)
KEEPS_30_DAYS = HARBOUR + "    retention: {days: 30, delete_recordings: true}\n"


# --- the decision --------------------------------------------------------------------------


def test_a_record_is_due_only_once_it_is_older_than_the_days_kept() -> None:
    keep = RetentionSettings(days=30)
    exactly = Record(1, 11, NOW - dt.timedelta(days=30), "closed")
    older = Record(2, 12, NOW - dt.timedelta(days=30, microseconds=1), "closed")
    plan = due_for_purge(keep, [exactly, older], NOW)
    assert plan.message_ids == (2,)
    assert plan.call_ids == (12,)
    assert purge_before(keep, NOW) == NOW - dt.timedelta(days=30)


def test_nothing_is_due_for_a_client_without_a_retention_setting() -> None:
    ancient = Record(1, 11, NOW - dt.timedelta(days=5000), "closed")
    assert due_for_purge(None, [ancient], NOW).empty


def test_age_decides_and_a_message_nobody_acknowledged_is_counted_as_such() -> None:
    old = NOW - dt.timedelta(days=40)
    records = [
        Record(1, 11, old, "closed", "RE1", "https://api.twilio.com/.../RE1"),
        Record(2, 12, old, "unacknowledged"),
        Record(3, 13, old, "new"),
        Record(None, 14, old),  # a call that left no message
    ]
    plan = due_for_purge(RetentionSettings(days=30), records, NOW)
    assert plan.message_ids == (1, 2, 3)
    assert plan.call_ids == (11, 12, 13, 14)
    assert plan.never_acknowledged == (2, 3)
    assert plan.recording_links == 1
    assert plan.recordings == ()  # the client did not ask for Twilio's copies to go


def test_recordings_are_deleted_at_twilio_only_when_the_client_asks() -> None:
    old = Record(1, 11, NOW - dt.timedelta(days=40), "closed", "RE1", "https://x/RE1")
    asks = RetentionSettings(days=30, delete_recordings=True)
    assert due_for_purge(asks, [old], NOW).recordings == ("RE1",)


def test_a_flow_keeping_records_fewer_than_seven_days_is_refused_with_its_line() -> None:
    source = textwrap.dedent(HARBOUR) + "retention: {days: 3}\n"
    with pytest.raises(FlowFileError) as refused:
        parse_flow(source, "harbour.yaml")
    problem = refused.value.problems[0]
    assert problem.line == source.count("\n")
    assert "retention" in str(problem)


# --- purging, in the database --------------------------------------------------------------


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio(PLACEHOLDER_ACCOUNT_SID, AUTH_TOKEN) as fake:
        yield fake


@pytest.fixture
def settings(settings: Settings, fake_twilio: FakeTwilio) -> Settings:
    return settings.model_copy(update={"twilio_api_base": fake_twilio.base_url})


@pytest.fixture
def keeping(clients: Clients, load_client: Callable[[str], None]) -> Clients:
    """Harbour keeps its records 30 days and wants recordings gone at Twilio; Bright keeps
    everything."""
    load_client(KEEPS_30_DAYS)
    return clients


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    database = make_database(database_url)
    try:
        yield database
    finally:
        database.close()


@pytest.fixture
def retention(database: Database, settings: Settings) -> PurgeRecords:
    """The dispatcher's retention module, pointed at the fake Twilio."""
    twilio = make_twilio_client(
        settings.twilio_account_sid, settings.twilio_auth_token, settings.twilio_api_base
    )
    return PurgeRecords(database, FlowStore(), lambda: twilio)


def count(sessions: sessionmaker[Session], model: type, *where: object) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0  # type: ignore[arg-type]


def audits(sessions: sessionmaker[Session]) -> list[AuditEvent]:
    with sessions() as session:
        return list(
            session.scalars(
                select(AuditEvent).where(AuditEvent.kind == PURGED).order_by(AuditEvent.id)
            )
        )


def lone_call(sessions: sessionmaker[Session], client_id: int, at: dt.datetime) -> int:
    """A call that hung up before leaving any message."""
    with transaction(sessions) as session:
        call = Call(
            sid=f"CA{int(at.timestamp()):032d}", client_id=client_id, caller="+447700900001",
            called="+441134960800", state={}, started_at=at,
        )  # fmt: skip
        session.add(call)
        session.flush()
        session.add(CallEvent(call_id=call.id, kind="step", at=at, detail={}))
        return call.id


def harbour_id(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return retaining_clients(session, FlowStore(), "harbour-plumbing")[0].client_id


def bright_id(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return session.scalars(select(Client.id).where(Client.slug == "bright-dental")).one()


def test_the_dispatcher_purges_what_is_older_than_the_client_keeps_and_only_that_clients(
    keeping: Clients,
    retention: PurgeRecords,
    session_factory: sessionmaker[Session],
    clock: FakeClock,
    fake_twilio: FakeTwilio,
) -> None:
    clock.set(NOW - dt.timedelta(days=40))
    recording = fake_twilio.add_recording()
    recording_sid = recording.rsplit("/", 1)[-1]
    old = keeping.leave_message("harbour-plumbing", recording_url=recording, name="Old")
    unacknowledged = keeping.leave_message("harbour-plumbing", name="Never taken")
    others = keeping.leave_message("bright-dental", name="Bright's, kept for ever")
    alone = lone_call(session_factory, harbour_id(session_factory), clock())
    clock.advance(seconds=1)
    brights_alone = lone_call(session_factory, bright_id(session_factory), clock())
    clock.set(NOW - dt.timedelta(days=29))
    recent = keeping.leave_message("harbour-plumbing", name="Recent")
    clock.set(NOW)

    assert retention.run(clock()) > 0

    def present(message_id: int) -> bool:
        return count(session_factory, Message, Message.id == message_id) == 1

    assert not present(old)
    assert not present(unacknowledged)
    assert present(recent)
    assert present(others)
    assert count(session_factory, Call, Call.id == alone) == 0
    assert count(session_factory, Call, Call.id == brights_alone) == 1
    for model, column in (
        (MessageEvent, MessageEvent.message_id),
        (Delivery, Delivery.message_id),
        (Escalation, Escalation.message_id),
    ):
        assert count(session_factory, model, column.in_([old, unacknowledged])) == 0
        assert count(session_factory, model, column == others) > 0
    assert count(session_factory, Call) == 3  # Bright's two and the recent one
    assert not fake_twilio.has_recording(recording_sid)
    assert count(session_factory, RecordingDeletion) == 0
    [entry] = audits(session_factory)
    assert entry.client_id == harbour_id(session_factory)
    assert entry.detail["by"] == "dispatcher"
    assert entry.detail["counts"] == {
        "messages": 2, "calls": 3, "recording_links": 1,
        "recordings_to_delete_at_twilio": 1, "never_acknowledged": 2,
    }  # fmt: skip


def test_a_second_purge_finds_nothing_and_leaves_no_entry(
    keeping: Clients,
    database: Database,
    session_factory: sessionmaker[Session],
    clock: FakeClock,
    fake_twilio: FakeTwilio,
) -> None:
    clock.set(NOW - dt.timedelta(days=40))
    keeping.leave_message("harbour-plumbing", name="Old")
    clock.set(NOW)
    client = database.run_blocking(lambda s: retaining_clients(s, FlowStore()))[0]
    first = database.run_blocking(lambda s: purge_batch(s, client, NOW, by="test"))
    again = database.run_blocking(lambda s: purge_batch(s, client, NOW, by="test"))
    assert first.counts()["messages"] == 1
    assert again.empty
    assert len(audits(session_factory)) == 1


def test_a_purge_stopped_between_batches_carries_on_and_every_batch_is_audited(
    keeping: Clients,
    database: Database,
    session_factory: sessionmaker[Session],
    clock: FakeClock,
    retention: PurgeRecords,
) -> None:
    """Each batch is its own unit: whatever a killed purge committed is whole and audited."""
    clock.set(NOW - dt.timedelta(days=40))
    for n in range(5):
        keeping.leave_message("harbour-plumbing", name=f"Caller {n}")
    clock.set(NOW)
    client = database.run_blocking(lambda s: retaining_clients(s, FlowStore()))[0]
    database.run_blocking(lambda s: purge_batch(s, client, NOW, by="killed", limit=2))
    assert count(session_factory, Message) == 3  # the process died here

    retention.run(NOW)

    assert count(session_factory, Message) == 0
    entries = audits(session_factory)
    assert [e.detail["by"] for e in entries] == ["killed", "dispatcher"]
    assert sum(e.detail["counts"]["messages"] for e in entries) == 5


def test_twilio_refusing_a_deletion_never_holds_up_the_purge_and_it_is_tried_again(
    keeping: Clients,
    retention: PurgeRecords,
    session_factory: sessionmaker[Session],
    clock: FakeClock,
    fake_twilio: FakeTwilio,
) -> None:
    clock.set(NOW - dt.timedelta(days=40))
    recording = fake_twilio.add_recording()
    sid = recording.rsplit("/", 1)[-1]
    keeping.leave_message("harbour-plumbing", recording_url=recording, name="Old")
    clock.set(NOW)
    fake_twilio.fail_next(1, 503, path_contains="/Recordings/")

    retention.run(NOW)

    assert count(session_factory, Message) == 0  # the rows went regardless
    assert fake_twilio.has_recording(sid)
    with session_factory() as session:
        owed = session.scalars(select(RecordingDeletion)).one()
    assert owed.sid == sid
    assert owed.error
    assert owed.attempts == 1

    retention.run(NOW + dt.timedelta(hours=1))  # the next hourly run

    assert not fake_twilio.has_recording(sid)
    assert count(session_factory, RecordingDeletion) == 0


def test_a_recording_twilio_no_longer_has_counts_as_deleted(
    keeping: Clients,
    retention: PurgeRecords,
    session_factory: sessionmaker[Session],
    clock: FakeClock,
) -> None:
    clock.set(NOW - dt.timedelta(days=40))
    gone = "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE" + "0" * 32
    keeping.leave_message("harbour-plumbing", recording_url=gone, name="Old")
    retention.run(NOW)
    assert count(session_factory, RecordingDeletion) == 0


def test_the_dispatcher_as_serve_and_worker_build_it_runs_retention(
    keeping: Clients,
    database: Database,
    settings: Settings,
    session_factory: sessionmaker[Session],
    clock: FakeClock,
) -> None:
    clock.set(NOW - dt.timedelta(days=40))
    keeping.leave_message("harbour-plumbing", name="Old")
    clock.set(NOW)
    dispatcher = add_retention(make_dispatcher(settings, database, FlowStore(), clock), settings)
    dispatcher.run_once()
    assert count(session_factory, Message) == 0


# --- the commands ---------------------------------------------------------------------------


def test_nightdesk_purge_dry_run_says_what_is_due_then_purge_does_it(
    keeping: Clients,
    session_factory: sessionmaker[Session],
    clock: FakeClock,
    flows_dir: Path,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NIGHTDESK_TWILIO_API_BASE", settings.twilio_api_base)
    clock.set(dt.datetime.now(dt.UTC) - dt.timedelta(days=40))
    taken = keeping.leave_message("harbour-plumbing", name="Old")

    code, output = nightdesk("purge", "--dry-run")
    assert code == 0, output
    assert "harbour-plumbing: would purge 1 messages, 1 calls" in output
    assert f"never acknowledged: {taken}" in output
    assert "bright-dental" not in output
    assert count(session_factory, Message) == 1

    code, output = nightdesk("purge", "--client", "harbour-plumbing")
    assert code == 0, output
    assert "harbour-plumbing: purged 1 messages, 1 calls" in output
    assert count(session_factory, Message) == 0
    assert audits(session_factory)[0].detail["by"] == "nightdesk purge"

    code, output = nightdesk("purge", "--client", "harbour-plumbing")
    assert (code, "purged nothing" in output) == (0, True)

    code, output = nightdesk("purge", "--client", "bright-dental")
    assert code == 1
    assert "has no retention setting" in output


def test_nightdesk_flows_check_refuses_a_retention_too_short_naming_file_and_line(
    tmp_path: Path,
) -> None:
    flow = tmp_path / "harbour.yaml"
    source = textwrap.dedent(HARBOUR) + "retention:\n  days: 2\n"
    flow.write_text(source)
    code, output = nightdesk("flows", "check", str(flow))
    assert code == 1
    assert f"harbour.yaml:{source.count(chr(10))}" in output
    assert "greater than or equal to 7" in output


def test_two_purgers_at_once_take_different_rows_and_audit_each_row_once(
    keeping: Clients, session_factory: sessionmaker[Session], clock: FakeClock
) -> None:
    """PostgreSQL, two workers: the second passes over the rows the first has locked. Without
    the lock it would wait, then delete nothing, and still audit what it meant to delete."""
    if session_factory.kw["bind"].dialect.name != "postgresql":
        pytest.skip("SQLite has one writer: two purges never overlap")
    clock.set(NOW - dt.timedelta(days=40))
    keeping.leave_message("harbour-plumbing", name="Old")
    with session_factory() as session:
        client = retaining_clients(session, FlowStore())[0]

    def second_purge(session: Session) -> int:
        return purge_batch(session, client, NOW, by="second").counts()["messages"]

    with transaction(session_factory) as session:
        assert purge_batch(session, client, NOW, by="first").counts()["messages"] == 1
        second = Racer(session_factory, second_purge)
        second.wait_until_blocked()  # returns at once when it finished without waiting
    assert second.result() == 0
    assert [entry.detail["by"] for entry in audits(session_factory)] == ["first"]


def test_copies_of_old_messages_sent_elsewhere_go_too_webhook_bodies_and_summary_emails(
    keeping: Clients, database: Database, session_factory: sessionmaker[Session]
) -> None:
    old, recent = NOW - dt.timedelta(days=40), NOW - dt.timedelta(days=1)
    harbour, bright = harbour_id(session_factory), bright_id(session_factory)
    with transaction(session_factory) as session:
        for client_id in (harbour, bright):
            endpoint = WebhookEndpoint(
                client_id=client_id, url="https://crm.test/hook", events=[], secret="whsec_x"
            )
            session.add(endpoint)
            session.flush()
            for n, (at, status) in enumerate(
                ((old, "delivered"), (old, "failed"), (old, "pending"), (recent, "delivered"))
            ):
                session.add(
                    WebhookDelivery(
                        endpoint_id=endpoint.id, dedupe_key=f"m{n}:taken:e{endpoint.id}",
                        event_id=f"msg_{n}", event_type="message.taken", body="{}",
                        status=status, created_at=at,
                    )
                )  # fmt: skip
            for at in (old, recent):
                summary = Summary(
                    key=f"c{client_id}:{at.isoformat()}", client_id=client_id, period_start=at,
                    period_end=at, status="queued", created_at=at,
                )  # fmt: skip
                session.add(summary)
                session.flush()
                session.add(
                    Delivery(
                        kind="summary", channel="email", address="owner@x.test", status="sent",
                        dedupe_key=f"summary:{summary.id}:0", body="Pat: burst pipe",
                    )
                )  # fmt: skip
    client = database.run_blocking(lambda s: retaining_clients(s, FlowStore()))[0]

    counts = database.run_blocking(lambda s: purge_copies(s, client, NOW, by="test"))
    again = database.run_blocking(lambda s: purge_copies(s, client, NOW, by="test"))

    assert counts == {"webhook_deliveries": 2, "summary_emails": 1}
    assert again == {"webhook_deliveries": 0, "summary_emails": 0}
    assert count(session_factory, WebhookDelivery) == 8 - 2  # Bright's, the pending, the recent
    assert count(session_factory, Delivery, Delivery.kind == "summary") == 4 - 1
    assert count(session_factory, Summary) == 4  # the rows that keep each period summarised once
    assert [entry.detail["counts"] for entry in audits(session_factory)] == [counts]


def test_a_purged_message_takes_its_read_log_with_it(
    clients: Clients,
    load_client: Callable[[str], None],
    retention: PurgeRecords,
    session_factory: sessionmaker[Session],
    clock: FakeClock,
) -> None:
    """Privacy mode's read log points at the message: it goes with it, before it."""
    load_client(KEEPS_30_DAYS + f'    privacy: {{pin: "{hash_pin("2468")}"}}\n')
    clock.set(NOW - dt.timedelta(days=40))
    old = clients.leave_message("harbour-plumbing", name="Old")
    with transaction(session_factory) as session:
        log_reads(session, [old], Reader("Hana Owner"), "portal", clock())
    assert count(session_factory, MessageRead) == 1
    clock.set(NOW)

    assert retention.run(clock()) > 0

    assert count(session_factory, Message, Message.id == old) == 0
    assert count(session_factory, MessageRead) == 0
