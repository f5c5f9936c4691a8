"""Every ORM model, imported in one place so Alembic and `create_all` see the whole schema."""

from app.accounts.models import ApiKey, AuditEvent, SignInLink, User, UserSession
from app.calls.models import Call, CallEvent
from app.clients.models import Client, Contact, FlowVersion, PhoneNumber
from app.console.models import Presence, QueueEntry
from app.dispatch.models import Delivery, Escalation, ProviderEvent
from app.messages.models import Message, MessageEvent, MessageRead
from app.records.models import RecordingDeletion
from app.summaries.models import Summary
from app.webhooks.models import WebhookDelivery, WebhookEndpoint

__all__ = [
    "ApiKey",
    "AuditEvent",
    "Call",
    "CallEvent",
    "Client",
    "Contact",
    "Delivery",
    "Escalation",
    "FlowVersion",
    "Message",
    "MessageEvent",
    "MessageRead",
    "PhoneNumber",
    "Presence",
    "ProviderEvent",
    "QueueEntry",
    "RecordingDeletion",
    "SignInLink",
    "Summary",
    "User",
    "UserSession",
    "WebhookDelivery",
    "WebhookEndpoint",
]
