"""The one settings object: environment variables prefixed NIGHTDESK_, also read from `.env`."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEVELOPMENT_SECRET = "development-only-secret"  # noqa: S105 - refused outside development
PLACEHOLDER_ACCOUNT_SID = "AC" + "0" * 32
DEFAULT_TWILIO_API_BASE = "https://api.twilio.com"
PLACEHOLDER_ACCOUNT_SID = "AC00000000000000000000000000000000"
DEFAULT_SMTP_URL = "smtp://localhost:25"
MIN_SECRET_BYTES = 32  # secrets.token_urlsafe(32) is 43; a Twilio auth token is 32
# Words no generated secret contains, and every copied example does.
PLACEHOLDER_WORDS = (
    "change", "placeholder", "example", "secret", "development", "dummy", "your", "xxx",
)  # fmt: skip


class Settings(BaseSettings):
    """Everything an operator can set; see the README's settings table."""

    # hide_input_in_errors: a refused setting's message must not print it, nor its neighbours.
    model_config = SettingsConfigDict(
        env_prefix="NIGHTDESK_", env_file=".env", extra="ignore", hide_input_in_errors=True
    )

    environment: str = "development"
    database_url: str = "sqlite:///./var/nightdesk.db"
    spool_dir: Path = Path("var/spool")  # Twilio callbacks kept while the database refuses them
    public_url: str = ""
    twilio_account_sid: str = PLACEHOLDER_ACCOUNT_SID
    twilio_auth_token: str = DEVELOPMENT_SECRET
    twilio_previous_auth_token: str = ""  # still accepted while the token is rotated
    twilio_api_base: str = DEFAULT_TWILIO_API_BASE
    # The PA console's browser phone (Twilio's Voice JavaScript SDK): an API key and the TwiML
    # App whose Voice URL is {PUBLIC_URL}/twilio/console/browser. All three, or it is hidden.
    twilio_api_key_sid: str = ""
    twilio_api_key_secret: str = ""
    twilio_twiml_app_sid: str = ""
    twilio_timeout: float = 10.0  # seconds; a timed-out send is checked with Twilio before a retry
    smtp_url: str = DEFAULT_SMTP_URL
    email_from: str = ""  # default: nightdesk@<public URL's host>
    flows_dir: Path = Path("voice_flows")
    secret_key: str = DEVELOPMENT_SECRET
    ack_link_days: int = Field(default=7, ge=1, le=365)  # how long an email's link works
    metrics_token: str = ""  # when set, /metrics wants `Authorization: Bearer <token>`
    metrics_client_labels: bool = True  # false: calls are counted under client="all"
    log_level: str = "INFO"
    run_dispatcher: bool = True
    # auto: in development, texts, calls and email without a real account go to the sandbox.
    sandbox: Literal["auto", "on", "off"] = "auto"

    @model_validator(mode="after")
    def _refuse_unsafe_values_outside_development(self) -> Settings:
        """Development defaults are fine on a laptop and dangerous anywhere else. Each problem
        names its setting and never shows the value, which may be a real secret mistyped."""
        if self.environment != "development":
            problems = production_problems(self)
            if problems:
                raise ValueError("; ".join(problems))
        return self

    @property
    def webhooks_may_reach_this_machine(self) -> bool:
        """Webhooks to loopback (plain http:// too): in development and the sandbox only, for
        a developer's or a test's local receiver. Private addresses are refused everywhere."""
        return self.environment == "development" or self.sandbox == "on"

    @property
    def wants_twilio_sandbox(self) -> bool:
        """Texts and calls go to the local stand-in for Twilio (app/telephony/sandbox)."""
        if self.sandbox != "auto":
            return self.sandbox == "on"
        return (
            self.environment == "development"
            and self.twilio_account_sid == PLACEHOLDER_ACCOUNT_SID
            and self.twilio_api_base == DEFAULT_TWILIO_API_BASE
        )

    @property
    def wants_email_sandbox(self) -> bool:
        """Email goes to a local SMTP server that shows it, not to anyone's inbox."""
        if self.sandbox != "auto":
            return self.sandbox == "on"
        return self.environment == "development" and self.smtp_url == DEFAULT_SMTP_URL

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def production_problems(settings: Settings) -> list[str]:
    """What makes these settings unsafe to run anywhere but a laptop, one line a setting."""
    problems = [
        secret_problem("NIGHTDESK_SECRET_KEY", settings.secret_key, required=True),
        secret_problem("NIGHTDESK_TWILIO_AUTH_TOKEN", settings.twilio_auth_token, required=True),
        secret_problem("NIGHTDESK_TWILIO_PREVIOUS_AUTH_TOKEN", settings.twilio_previous_auth_token),
        secret_problem("NIGHTDESK_METRICS_TOKEN", settings.metrics_token),
        secret_problem("NIGHTDESK_TWILIO_API_KEY_SECRET", settings.twilio_api_key_secret),
    ]
    if not settings.public_url:
        problems.append("NIGHTDESK_PUBLIC_URL must be set outside development")
    elif not _is_https(settings.public_url):
        problems.append(
            "NIGHTDESK_PUBLIC_URL must be an https:// URL outside development (callers' "
            "details and acknowledge links travel over it)"
        )
    if not _is_account_sid(settings.twilio_account_sid):
        problems.append(
            "NIGHTDESK_TWILIO_ACCOUNT_SID must be your Twilio account's SID (AC and 32 hex "
            "digits), not the placeholder"
        )
    return [problem for problem in problems if problem]


def secret_problem(name: str, value: str, *, required: bool = False) -> str | None:
    """Why `value` won't do as the secret `name` (never saying what it is), or None."""
    if not value:
        return f"{name} must be set outside development" if required else None
    lowered = value.lower()
    if any(word in lowered for word in PLACEHOLDER_WORDS) or len(set(value)) < 8:
        return f"{name} is a placeholder: generate a random one outside development"
    if len(value.encode()) < MIN_SECRET_BYTES:
        return f"{name} must be at least {MIN_SECRET_BYTES} bytes outside development"
    return None


def _is_https(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "https" and bool(parts.hostname)


def _is_account_sid(sid: str) -> bool:
    digits = sid[2:]
    return (
        sid.startswith("AC")
        and len(digits) == 32
        and all(c in "0123456789abcdef" for c in digits.lower())
        and sid != PLACEHOLDER_ACCOUNT_SID
    )


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
