"""An operator's settings: anything but development refuses what would be unsafe, saying which
setting is wrong and never what it holds."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.settings import DEVELOPMENT_SECRET, Settings

GOOD = {
    "NIGHTDESK_ENVIRONMENT": "production",
    "NIGHTDESK_PUBLIC_URL": "https://calls.example.com",
    "NIGHTDESK_TWILIO_ACCOUNT_SID": "AC" + "3f9a0c" * 5 + "b1",
    "NIGHTDESK_TWILIO_AUTH_TOKEN": "9f1c2b7d4e6a8f0b3c5d7e9f1a2b4c6d",
    "NIGHTDESK_SECRET_KEY": "q8Vz-3mLx_T0pWnR7cYb2KdHs9JfUe4AgNi6oBt1MvE",
}


def settings_from(monkeypatch: pytest.MonkeyPatch, **environment: str) -> Settings:
    """Settings as `nightdesk serve` reads them: from the environment."""
    for name, value in {**GOOD, **environment}.items():
        monkeypatch.setenv(name, value)
    return Settings(_env_file=None)


def shown(value: str, message: str) -> bool:
    """Whether any four characters in a row of `value` appear in `message`."""
    return any(value[i : i + 4] in message for i in range(len(value) - 3))


def test_a_production_configuration_with_real_secrets_starts(monkeypatch: pytest.MonkeyPatch):
    settings = settings_from(monkeypatch)
    assert settings.environment == "production"
    assert settings.ack_link_days == 7


def test_development_accepts_the_placeholders(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from(
        monkeypatch, NIGHTDESK_ENVIRONMENT="development", NIGHTDESK_SECRET_KEY=DEVELOPMENT_SECRET
    )
    assert settings.secret_key == DEVELOPMENT_SECRET


SECRET, TOKEN, PREVIOUS, METRICS = (
    "NIGHTDESK_SECRET_KEY", "NIGHTDESK_TWILIO_AUTH_TOKEN",
    "NIGHTDESK_TWILIO_PREVIOUS_AUTH_TOKEN", "NIGHTDESK_METRICS_TOKEN",
)  # fmt: skip
URL, SID = "NIGHTDESK_PUBLIC_URL", "NIGHTDESK_TWILIO_ACCOUNT_SID"
SHORT = "at least 32 bytes"


@pytest.mark.parametrize(
    ("setting", "value", "another", "complaint"),
    [
        (SECRET, "", "", "must be set"),
        (SECRET, "Zq9Xw7Vb-kP2", "Ab3Cd4Ef5Gh6", SHORT),
        (SECRET, DEVELOPMENT_SECRET, "change-me-change-me-change-me-1234", "placeholder"),
        (SECRET, "x" * 40, "0" * 64, "placeholder"),
        (TOKEN, "", "", "must be set"),
        (TOKEN, "9f1c2b7d4e6a8f0b", "0a1b2c3d4e5f6a7b", SHORT),
        (TOKEN, DEVELOPMENT_SECRET, "your_auth_token_goes_here_12345678", "placeholder"),
        (PREVIOUS, "9f1c2b7d4e6a8f0b", "0a1b2c3d4e5f", SHORT),
        (METRICS, "Zq9Xw7Vb-kP2", "Ab3Cd4Ef5Gh6", SHORT),
        (URL, "", "", "must be set"),
        (URL, "http://calls.example.com", "ftp://elsewhere.test", "https://"),
        (URL, "calls.example.com", "https://", "https://"),
        (SID, "AC" + "0" * 32, "AC_my_account", "not the placeholder"),
    ],
)
def test_an_unsafe_value_outside_development_is_refused_by_name_without_showing_it(
    monkeypatch: pytest.MonkeyPatch, setting: str, value: str, another: str, complaint: str
) -> None:
    """The message is the same for any value with the same fault: it can't be showing it."""
    messages = []
    for bad in (value, another):
        with pytest.raises(ValidationError) as refused:
            settings_from(monkeypatch, **{setting: bad})
        messages.append(str(refused.value))

    assert messages[0] == messages[1]
    assert setting in messages[0]
    assert complaint in messages[0]
    for secret in (GOOD["NIGHTDESK_TWILIO_AUTH_TOKEN"], GOOD["NIGHTDESK_SECRET_KEY"]):
        assert not shown(secret, messages[0]), "a neighbouring secret was printed"


def test_every_problem_is_named_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError) as refused:
        settings_from(monkeypatch, NIGHTDESK_SECRET_KEY="", NIGHTDESK_PUBLIC_URL="http://x.test")
    assert "NIGHTDESK_SECRET_KEY" in str(refused.value)
    assert "NIGHTDESK_PUBLIC_URL" in str(refused.value)


@pytest.mark.parametrize("days", ["0", "-1", "366", "a week"])
def test_an_acknowledge_link_lifetime_outside_a_day_to_a_year_is_refused(
    monkeypatch: pytest.MonkeyPatch, days: str
) -> None:
    with pytest.raises(ValidationError, match="ack_link_days"):
        settings_from(monkeypatch, NIGHTDESK_ACK_LINK_DAYS=days)
