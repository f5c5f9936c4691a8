"""The spool's files: whole or absent, private, and read back oldest first."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

from app.telephony.spool import SET_ASIDE, Spool, SpooledRequest

AT = dt.datetime(2026, 11, 26, 2, 0, tzinfo=dt.UTC)


def request(seconds: int, **form: str) -> SpooledRequest:
    at = AT + dt.timedelta(seconds=seconds)
    return SpooledRequest("/twilio/voice/recording", "caller=%2B447911123456", form, at)


def test_a_kept_request_reads_back_as_it_came(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    kept = spool.keep(request(0, RecordingSid="RE1", CallSid="CA1"))

    (again,) = spool.oldest(10)

    assert again == kept
    assert again.form == {"RecordingSid": "RE1", "CallSid": "CA1"}
    assert again.received_at == AT
    assert stat.S_IMODE((tmp_path / kept.name).stat().st_mode) == 0o600  # callers' numbers


def test_requests_come_back_oldest_first_whatever_order_they_were_kept_in(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for seconds in (5, 1, 3):
        spool.keep(request(seconds))
    assert [r.received_at for r in spool.oldest(10)] == [
        AT + dt.timedelta(seconds=s) for s in (1, 3, 5)
    ]
    assert len(spool.oldest(2)) == 2


def test_a_file_half_written_when_the_process_died_is_never_read(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    (tmp_path / ".20261126T020000000000Z-1-000000-abcdef.json.tmp").write_text('{"pa')
    assert spool.oldest(10) == []
    assert spool.count() == 0


def test_an_unreadable_file_is_set_aside_not_retried_forever(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    (tmp_path / "20261126T020000000000Z-1-000000-abcdef.json").write_text("not json")
    spool.keep(request(1))

    assert len(spool.oldest(10)) == 1
    assert [p.name for p in (tmp_path / SET_ASIDE).iterdir()] == [
        "20261126T020000000000Z-1-000000-abcdef.json"
    ]


def test_done_forgets_a_request_even_when_another_process_forgot_it_first(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    kept = spool.keep(request(0))
    spool.done(kept)
    spool.done(kept)
    assert spool.oldest(10) == []


def test_an_empty_or_missing_spool_has_nothing(tmp_path: Path) -> None:
    assert Spool(tmp_path / "never-made").oldest(10) == []
