"""The tests' SMTP server: the one the sandbox uses too."""

from app.telephony.sandbox.smtp_inbox import Envelope, SmtpInbox, free_port

__all__ = ["Envelope", "SmtpInbox", "free_port"]
