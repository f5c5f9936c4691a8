"""CSV cells a spreadsheet shows as text, whatever a caller said."""

from __future__ import annotations

import datetime as dt

import pytest

from app.api.export import safe_cell


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("+447911123456", "'+447911123456"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("Boiler = broken", "Boiler = broken"),  # only a formula's first character matters
        (42, "42"),
        (None, ""),
        (dt.datetime(2026, 11, 26, 2, 0, tzinfo=dt.UTC), "2026-11-26T02:00:00+00:00"),
    ],
)
def test_a_cell_that_would_be_a_formula_starts_with_an_apostrophe(value: object, cell: str) -> None:
    assert safe_cell(value) == cell
