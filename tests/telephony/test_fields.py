"""Form fields as the parsers read them: whatever arrives, what comes out can be stored in any
column sized for it and written into XML."""

from __future__ import annotations

import unicodedata
import xml.etree.ElementTree as ET

from hypothesis import given
from hypothesis import strategies as st

from app.telephony import fields

ANYTHING = st.text(st.characters(codec="utf-8"), max_size=300)


@given(ANYTHING, st.integers(1, 100), st.booleans())
def test_a_text_field_fits_its_limit_and_holds_no_control_character(
    value: str, limit: int, multiline: bool
) -> None:
    read = fields.text({"Field": value}, "Field", limit, multiline=multiline)

    if read is None:
        return
    assert 0 < len(read) <= limit
    assert read == read.strip()
    kept = "\n\t" if multiline else ""
    controls = [c for c in read if unicodedata.category(c) in ("Cc", "Cs") and c not in kept]
    assert controls == []
    assert "\ufffe" not in read
    assert "\uffff" not in read
    ET.fromstring(f"<Say>{read.replace('&', '').replace('<', '')}</Say>")  # noqa: S314


@given(st.text(st.characters(codec="utf-8"), max_size=50).filter(str.isprintable))
def test_a_printable_value_within_its_limit_is_kept_as_it_came_bar_surrounding_spaces(
    value: str,
) -> None:
    assert fields.text({"Field": value}, "Field", 50) == (value.strip() or None)
