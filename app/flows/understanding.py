"""Making sense of what a caller pressed or said: spoken digits, yes or no, phone numbers.

Twilio gives us `Digits` for keypresses and `SpeechResult` for speech; callers mix both and
speak numbers in words ("oh seven seven double oh"), so this is forgiving on purpose.
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers

_DIGIT_WORDS = {
    "zero": "0", "oh": "0", "o": "0", "nought": "0", "one": "1", "two": "2", "to": "2",
    "too": "2", "three": "3", "four": "4", "for": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9",
}  # fmt: skip
_MULTIPLIERS = {"double": 2, "triple": 3}
_YES = {"yes", "yeah", "yep", "yup", "correct", "right", "sure", "affirmative", "ok", "okay"}
_NO = {"no", "nope", "nah", "wrong", "incorrect", "negative"}


def words(text: str) -> list[str]:
    """Lower-case words without punctuation."""
    return re.findall(r"[a-z0-9']+", text.lower())


def spoken_digits(text: str) -> str:
    """The digits in what was said or pressed: '0 seven double 7' -> '0777'."""
    out: list[str] = []
    repeat = 1
    for word in words(text.replace("-", " ")):
        if word in _MULTIPLIERS:
            repeat = _MULTIPLIERS[word]
            continue
        if word.isdigit():
            out.append(word[0] * repeat + word[1:])
        elif word in _DIGIT_WORDS:
            out.append(_DIGIT_WORDS[word] * repeat)
        repeat = 1
    return "".join(out)


def yes_or_no(digits: str | None, speech: str | None) -> bool | None:
    """1 or 'yes' is yes, 2 or 'no' is no; anything else is None (ask again)."""
    if digits:
        return {"1": True, "2": False}.get(digits[:1])
    said = set(words(speech or ""))
    if said & _YES and not said & _NO:
        return True
    if said & _NO and not said & _YES:
        return False
    return None


@lru_cache(maxsize=4096)  # pure, and phonenumbers is slow
def phone_number(heard: str, region: str | None) -> str | None:
    """A valid phone number in E.164 from the digits heard, read in the client's region."""
    digits = spoken_digits(heard)
    if heard.strip().startswith("+"):
        digits = "+" + digits
    if len(digits.lstrip("+")) < 6:
        return None
    try:
        number = phonenumbers.parse(digits, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=4096)  # pure, and phonenumbers is slow
def national_digits(e164: str) -> str:
    """The number as a caller would say it at home, digits only: +447700900123 -> 07700900123."""
    number = phonenumbers.parse(e164, None)
    national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return re.sub(r"\D", "", national)


def read_back(e164: str) -> str:
    """Digits spaced so text-to-speech reads them one by one, in groups a listener can follow."""
    digits = national_digits(e164)
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return ", ".join(" ".join(group) for group in groups)


@lru_cache(maxsize=4096)  # pure, and phonenumbers is slow
def region_of(e164: str) -> str | None:
    """The ISO region of a number (GB for +44…), used to read callers' local numbers."""
    return phonenumbers.region_code_for_number(phonenumbers.parse(e164, None))


@lru_cache(maxsize=4096)  # pure, and phonenumbers is slow
def is_mobile(e164: str) -> bool:
    """True for numbers that can receive a text message."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return False
    kind = phonenumbers.number_type(number)
    return kind in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    )
