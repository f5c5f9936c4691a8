"""The sandbox: stand-ins for Twilio's REST API and for an SMTP server, started in development
so that trying Nightdesk never reaches anyone's phone or inbox, and shows what it would send.

Real Twilio is used only with a real account (`NIGHTDESK_TWILIO_ACCOUNT_SID`), real email only
with `NIGHTDESK_SMTP_URL` set; `NIGHTDESK_SANDBOX=off` turns the sandbox off, `on` forces it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage

from app.settings import Settings
from app.telephony.sandbox.fake_callbacks import Deliver
from app.telephony.sandbox.fake_resources import CallRecord, MessageRecord
from app.telephony.sandbox.fake_twilio import FakeTwilio
from app.telephony.sandbox.smtp_inbox import SmtpInbox

Announce = Callable[[str], None]


@dataclass
class Sandboxes:
    """What was started, and the settings that point the app at it."""

    settings: Settings
    twilio: FakeTwilio | None = None
    mailbox: SmtpInbox | None = None
    lines: list[str] = field(default_factory=list)

    @property
    def running(self) -> bool:
        """Something is standing in for Twilio or SMTP."""
        return self.twilio is not None or self.mailbox is not None

    def close(self) -> None:
        if self.twilio is not None:
            self.twilio.stop()
        if self.mailbox is not None:
            self.mailbox.stop()


def start_sandboxes(
    settings: Settings,
    announce: Announce,
    deliver: Deliver | None = None,
    twilio_port: int = 0,
) -> Sandboxes:
    """Start the stand-ins `settings` call for; each text, call and email is announced as a
    line ("[sandbox] SMS to +44…: …"). `deliver` replaces the fake Twilio's status callbacks
    (an in-process app has no port for them to reach). `twilio_port`: where the fake Twilio
    listens (0: any free port), so `nightdesk demo` can say where it is."""
    updates: dict[str, str] = {}
    sandboxes = Sandboxes(settings)
    if settings.wants_twilio_sandbox:
        twilio = FakeTwilio(
            settings.twilio_account_sid, settings.twilio_auth_token, deliver=deliver
        )
        twilio.on_message = lambda sms: announce(_sms_line(sms))
        twilio.on_call = lambda call: announce(_call_line(call))
        sandboxes.twilio = twilio.start(port=twilio_port)
        updates["twilio_api_base"] = twilio.base_url
    if settings.wants_email_sandbox:
        mailbox = SmtpInbox()
        mailbox.on_message = lambda email: announce(_email_line(email))
        sandboxes.mailbox = mailbox.start()
        updates["smtp_url"] = mailbox.url
    sandboxes.settings = settings.model_copy(update=updates)
    return sandboxes


def _sms_line(sms: MessageRecord) -> str:
    return f"[sandbox] SMS to {sms.to}: {sms.body}"


def _call_line(call: CallRecord) -> str:
    return f"[sandbox] call to {call.to} (answered in the sandbox: nobody hears it)"


def _email_line(email: EmailMessage) -> str:
    return f"[sandbox] email to {email['To']}: {email['Subject']}"
