"""The one settings object: environment variables prefixed NIGHTDESK_, also read from `.env`."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEVELOPMENT_SECRET = "development-only-secret"  # noqa: S105 - refused outside development
DEFAULT_TWILIO_API_BASE = "https://api.twilio.com"


class Settings(BaseSettings):
    """Everything an operator can set; see the README's settings table."""

    model_config = SettingsConfigDict(env_prefix="NIGHTDESK_", env_file=".env", extra="ignore")

    environment: str = "development"
    database_url: str = "sqlite:///./var/nightdesk.db"
    spool_dir: Path = Path("var/spool")  # Twilio callbacks kept while the database refuses them
    public_url: str = ""
    twilio_account_sid: str = "AC00000000000000000000000000000000"
    twilio_auth_token: str = DEVELOPMENT_SECRET
    twilio_previous_auth_token: str = ""  # still accepted while the token is rotated
    twilio_api_base: str = DEFAULT_TWILIO_API_BASE
    twilio_timeout: float = 10.0  # seconds; a timed-out send is checked with Twilio before a retry
    smtp_url: str = "smtp://localhost:25"
    email_from: str = ""  # default: nightdesk@<public URL's host>
    flows_dir: Path = Path("voice_flows")
    secret_key: str = DEVELOPMENT_SECRET
    log_level: str = "INFO"
    run_dispatcher: bool = True

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        """Development defaults are fine on a laptop and dangerous anywhere else."""
        if self.environment != "development":
            for name in ("twilio_auth_token", "secret_key"):
                if getattr(self, name) == DEVELOPMENT_SECRET:
                    raise ValueError(f"NIGHTDESK_{name.upper()} must be set outside development")
            if not self.public_url:
                raise ValueError("NIGHTDESK_PUBLIC_URL must be set outside development")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
