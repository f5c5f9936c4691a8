"""Reading Twilio's form bodies: the fast parser must agree with the standard library's."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from hypothesis import given
from hypothesis import strategies as st

from app.telephony.signature import parse_form

fields = st.dictionaries(st.text(min_size=1), st.text(), max_size=8)


@given(fields)
def test_any_form_reads_as_the_standard_library_reads_it(form: dict[str, str]) -> None:
    encoded = urlencode(form)
    assert parse_form(encoded) == dict(parse_qsl(encoded, keep_blank_values=True))


def test_a_typical_twilio_body_keeps_plus_signs_spaces_and_blank_fields() -> None:
    body = "From=%2B447911123456&SpeechResult=Sam+Taylor&Digits=&CallSid=CA123"
    assert parse_form(body) == {
        "From": "+447911123456",
        "SpeechResult": "Sam Taylor",
        "Digits": "",
        "CallSid": "CA123",
    }
