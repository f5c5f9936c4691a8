"""Status callbacks that meet a database outage are kept in the spool and replayed, once, in
the order they came; the replayer sets aside what it can never replay."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.db import make_database
from app.dispatch.models import Delivery
from app.dispatch.replay import TRIES, ReplaySpool
from app.settings import Settings
from app.telephony.spool import SET_ASIDE, Spool, SpooledRequest
from tests.clock import FakeClock
from tests.dispatch.conftest import PLUMBERS, Desk
from tests.support.outage import Outage


@pytest.fixture
def quiet_desk(
    app: FastAPI,
    settings: Settings,
    session_factory: sessionmaker[Session],
    clock: FakeClock,
    load_client: Callable[[str], None],
) -> Iterator[Desk]:
    """The desk, without the app's lifespan: only the test runs the dispatcher's cycle."""
    load_client(PLUMBERS)
    try:
        yield Desk(TestClient(app, base_url=settings.public_url), settings, session_factory, clock)
    finally:
        app.state.database.close()


def replay(app: FastAPI) -> int:
    replayed: int = app.state.dispatcher.run_once()
    return replayed


def sms_status(desk: Desk, delivery: int, sid: str, status: str, code: str = "") -> int:
    params = {"MessageSid": sid, "MessageStatus": status, "ErrorCode": code}
    return desk.post(f"/twilio/sms/status?d={delivery}", params).status_code


SID = "SM" + "d" * 32


@dataclass
class SentText:
    """A message whose text to Sam went out as SID: Twilio's callbacks about it, and its row."""

    desk: Desk
    message: int
    delivery: int

    def callback(self, status: str, code: str = "") -> int:
        return sms_status(self.desk, self.delivery, SID, status, code)

    def row(self) -> Delivery:
        (row,) = self.desk.deliveries(self.message, id=self.delivery)
        return row


@pytest.fixture
def text(quiet_desk: Desk) -> SentText:
    message = quiet_desk.message()
    return SentText(quiet_desk, message, quiet_desk.sent(message, "sam", sid=SID))


def test_status_callbacks_in_an_outage_are_applied_in_order_once_the_database_is_back(
    text: SentText, app: FastAPI, settings: Settings
) -> None:
    with Outage(app.state.engine):
        assert text.callback("delivered") == 204
        assert text.callback("undelivered", "30005") == 204  # too late
    assert text.row().provider_status is None

    assert replay(app) == 2

    assert (text.row().status, text.row().provider_status) == ("delivered", "delivered")
    assert list(settings.spool_dir.glob("*.json")) == []


def test_a_texts_progress_is_answered_without_the_database_and_nothing_is_kept(
    text: SentText, app: FastAPI, settings: Settings
) -> None:
    """Half of a text's callbacks say only how far it got: they need no unit of work."""
    with Outage(app.state.engine):
        for progress in ("queued", "sending", "sent"):
            assert text.callback(progress) == 204

    assert list(settings.spool_dir.glob("*.json")) == []
    assert (text.row().status, text.row().provider_sid) == ("sent", SID)


def test_a_status_replayed_twice_counts_once(
    text: SentText, app: FastAPI, settings: Settings
) -> None:
    with Outage(app.state.engine):
        assert text.callback("undelivered", "30003") == 204
    kept = settings.spool_dir.parent / "kept"
    shutil.copytree(settings.spool_dir, kept)
    replay(app)
    timeline = text.desk.timeline(text.message)
    shutil.rmtree(settings.spool_dir)  # as if the process died before deleting the file
    shutil.copytree(kept, settings.spool_dir)

    assert replay(app) == 1

    assert text.desk.timeline(text.message) == timeline
    assert timeline.count("failed") == 1


def callback(path: str, at: FakeClock, **form: str) -> SpooledRequest:
    return SpooledRequest(path, "", dict(form), at())


def test_the_replayer_sets_aside_what_it_has_no_replay_for(
    tmp_path: Path, database_url: str, clock: FakeClock
) -> None:
    spool = Spool(tmp_path / "spool")
    spool.keep(callback("/twilio/elsewhere", clock))
    replayer = ReplaySpool(make_database(database_url), spool, {})

    assert replayer.run(clock()) == 0

    assert spool.count() == 0
    assert len(list((tmp_path / "spool" / SET_ASIDE).glob("*.json"))) == 1


def test_a_replay_that_keeps_failing_by_itself_is_set_aside_after_a_few_tries(
    tmp_path: Path, database_url: str, clock: FakeClock
) -> None:
    spool = Spool(tmp_path / "spool")
    spool.keep(callback("/broken", clock))
    spool.keep(callback("/fine", clock))
    done: list[str] = []

    def broken(_callback: SpooledRequest) -> Callable[[Session], None]:
        def work(_session: Session) -> None:
            raise ValueError("a bug, not an outage")

        return work

    def fine(request: SpooledRequest) -> Callable[[Session], None]:
        return lambda _session: done.append(request.path)

    replayer = ReplaySpool(make_database(database_url), spool, {"/broken": broken, "/fine": fine})
    assert replayer.run(clock()) == 1, "the broken one does not hold up the one behind it"
    for _ in range(TRIES - 1):
        replayer.run(clock())

    assert done == ["/fine"]
    assert spool.count() == 0
    assert len(list((tmp_path / "spool" / SET_ASIDE).glob("*.json"))) == 1
