"""The pure decisions behind replies and the notification call, with plain values."""

from __future__ import annotations

import pytest

from app.acks.inbound import Standing, Verdict, messages_meant, sms_for
from app.acks.notify_call import callback_number
from app.dispatch import texts
from app.dispatch.webhooks import is_machine


@pytest.mark.parametrize(
    ("open_ids", "latest_text", "meant"),
    [
        ([7], set(), [7]),  # the only one, whatever the last text was
        ([7, 8], {7, 8, 9}, [7, 8]),  # all of them went in the last (bundled) text
        ([7, 8], {8}, None),  # one came earlier: ask which
        ([], {8}, None),  # nothing open
    ],
)
def test_which_open_messages_a_bare_1_means(
    open_ids: list[int], latest_text: set[int], meant: list[int] | None
) -> None:
    assert messages_meant(open_ids, latest_text) == meant


def test_a_confirmation_groups_by_client_and_names_who_has_the_rest() -> None:
    standings = [
        Standing("Acme Plumbing", "4F", Verdict.yours),
        Standing("Harbour Law", "4G", Verdict.yours),
        Standing("Acme Plumbing", "4H", Verdict.yours),
        Standing("Acme Plumbing", "4J", Verdict.taken, "Sam Taylor"),
        Standing("Acme Plumbing", "4K", Verdict.closed),
    ]
    assert sms_for(standings) == (
        "Thanks, Acme Plumbing #4F, #4H are yours. Thanks, Harbour Law #4G is yours. "
        "Sam Taylor already has #4J. #4K is already closed."
    )


def test_two_open_messages_are_offered_with_or() -> None:
    assert texts.which_message_sms(["4F", "4G"]) == (
        "You have 2 open messages: reply ACK 4F or ACK 4G."
    )


@pytest.mark.parametrize(
    ("caller", "answers", "dialled"),
    [
        ("+441134960999", {"callback": "+447700900123"}, "+447700900123"),
        ("+441134960999", {"callback": "the mobile"}, "+441134960999"),
        ("anonymous", {}, None),
        ("anonymous", {"callback": "+441134960888"}, "+441134960888"),
    ],
)
def test_pressing_3_dials_the_number_left_else_the_one_called_from(
    caller: str, answers: dict[str, str], dialled: str | None
) -> None:
    assert callback_number(caller, answers) == dialled


@pytest.mark.parametrize(
    ("answered_by", "machine"),
    [("human", False), ("unknown", False), (None, False), ("machine_start", True),
     ("machine_end_silence", True), ("fax", True)],
)  # fmt: skip
def test_machines_and_faxes_are_not_people(answered_by: str | None, machine: bool) -> None:
    assert is_machine(answered_by) is machine
