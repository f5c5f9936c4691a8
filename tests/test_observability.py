"""What reaches the logs: one JSON line an event, phone numbers masked, and no log call that fails
because of a field's name."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from app.observability import RESERVED, JsonFormatter, SafeLogger, log_safely

NUMBER, MASKED = "+447700900123", "+44*******123"


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """What the app's JSON log handler writes for the `nightdesk.test` logger."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("nightdesk.test")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)


def logged(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_the_apps_loggers_are_safe_loggers() -> None:
    assert isinstance(logging.getLogger("nightdesk.dispatch"), SafeLogger)
    assert isinstance(logging.getLogger("nightdesk.anything.new"), SafeLogger)


@pytest.mark.parametrize("name", sorted(RESERVED))
def test_a_field_named_like_a_log_record_attribute_is_logged_under_another_name(
    name: str, lines: io.StringIO
) -> None:
    extra = {name: NUMBER, "call_sid": "CA1"}
    logging.getLogger("nightdesk.test").warning("odd_field", extra=extra)

    (entry,) = logged(lines)
    assert entry["event"] == "odd_field"
    assert entry["logger"] == "nightdesk.test"
    assert entry["level"] == "warning"
    assert entry["call_sid"] == "CA1"
    assert entry[name + "_"] == MASKED


def test_a_renamed_field_does_not_replace_one_already_called_that(lines: io.StringIO) -> None:
    extra = {"module": "first", "module_": "second"}
    logging.getLogger("nightdesk.test").info("both", extra=extra)

    (entry,) = logged(lines)
    assert (entry["module_"], entry["module__"]) == ("second", "first")


def test_a_field_named_like_one_of_the_lines_own_keeps_the_event(lines: io.StringIO) -> None:
    logging.getLogger("nightdesk.test").info("real", extra={"event": "fake", "ts": 0})

    (entry,) = logged(lines)
    assert (entry["event"], entry["event_"], entry["ts_"]) == ("real", "fake", 0)


def test_a_logged_exception_carrying_a_phone_number_is_masked(lines: io.StringIO) -> None:
    try:
        raise ValueError(f"no contact with phone {NUMBER}")
    except ValueError:
        logging.getLogger("nightdesk.test").exception("lookup_failed")

    text = lines.getvalue()
    assert NUMBER not in text
    (entry,) = logged(lines)
    assert f"no contact with phone {MASKED}" in entry["error"]


def test_numbers_nested_in_fields_and_in_values_json_cannot_encode_are_masked(
    lines: io.StringIO,
) -> None:
    class Hook:
        def __str__(self) -> str:
            return f"Hook(caller={NUMBER})"

    extra = {"numbers": [NUMBER, {"to": NUMBER}], "hook": Hook()}
    logging.getLogger("nightdesk.test").info("many", extra=extra, stack_info=True)

    assert NUMBER not in lines.getvalue()
    (entry,) = logged(lines)
    assert entry["numbers"] == [MASKED, {"to": MASKED}]
    assert entry["hook"] == f"Hook(caller={MASKED})"


def test_logging_safely_survives_a_handler_that_raises(
    capsys: pytest.CaptureFixture[str],
) -> None:
    class Broken(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            raise RuntimeError("the log shipper is down")

    logger = logging.getLogger("nightdesk.test.broken")
    logger.addHandler(Broken())
    try:
        with pytest.raises(RuntimeError):
            logger.error("unsafe")
        log_safely(logger, logging.ERROR, "safe", exc_info=True, level="a field, not the level")
    finally:
        logger.handlers.clear()
    assert "logging safe failed" in capsys.readouterr().err
