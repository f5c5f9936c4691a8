"""Twilio's status callbacks for the texts and calls the dispatcher sent: what became of each
delivery, and after a failure the contact's next channel or the next step.

Each runs in the request's transaction and is safe to repeat: a callback Twilio sends again
finds its delivery settled, or only notes the same progress again.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import bindparam, or_, select
from sqlalchemy.orm import Session

from app.clients.flows import FlowStore
from app.db import insert_if_absent
from app.dispatch.models import Delivery, DeliveryStatus, ProviderEvent
from app.dispatch.sending import move_on_after_failure
from app.dispatch.webhooks import StatusReport, is_machine
from app.flows.schema import Channel
from app.messages.timeline import add_event

log = logging.getLogger("nightdesk.dispatch")

SETTLED = (DeliveryStatus.delivered, DeliveryStatus.failed, DeliveryStatus.cancelled)
# What a provider's final status means for the delivery; any other status is progress.
# https://www.twilio.com/docs/messaging/api/message-resource#message-status-values
# https://www.twilio.com/docs/voice/api/call-resource#call-status-values
OUTCOMES: dict[str, dict[str, DeliveryStatus]] = {
    Channel.sms: {
        "delivered": DeliveryStatus.delivered,
        "undelivered": DeliveryStatus.failed,
        "failed": DeliveryStatus.failed,
        "canceled": DeliveryStatus.failed,
    },
    # A completed call was answered, by someone or a machine; only a keypress acknowledges.
    Channel.voice: {
        "completed": DeliveryStatus.delivered,
        "busy": DeliveryStatus.failed,
        "no-answer": DeliveryStatus.failed,
        "failed": DeliveryStatus.failed,
        "canceled": DeliveryStatus.failed,
    },
}


class DeliveryNotFoundError(LookupError):
    """A callback names a delivery we don't have (a reset database, someone else's URL)."""


def settles(channel: Channel, report: StatusReport) -> bool:
    """Whether Twilio reports what became of a text or call, rather than its progress.

    An SMS's progress (queued, sending, sent) is half of its callbacks and changes nothing we
    act on or show: the dispatcher records the send, and its sid, from Twilio's answer. So its
    route answers them without a unit of work. (A call's progress can carry answering machine
    detection's verdict: its route records every status.)
    """
    return report.status in OUTCOMES[channel]


def first_time(session: Session, key: str) -> bool:
    """Record a provider event once; False when it was already applied (Twilio sent it again)."""
    return insert_if_absent(session, ProviderEvent, {"key": key}, "key")


def apply_status(
    session: Session, flows: FlowStore, delivery_id: int, report: StatusReport, now: dt.datetime
) -> None:
    """Record what became of a notification; a failure tries the next channel or step."""
    # The delivery, and any bundled with it (one SMS carries several; its callback names only
    # the first, whose id is the send's `bundle_key`), locked in one query: four callbacks a
    # message make this the busiest route.
    # (No sid: `provider_sid = NULL` matches nothing, not the deliveries without one yet.)
    same = {"delivery": delivery_id, "sid": report.sid or None}
    rows = session.scalars(_DELIVERY_AND_ITS_BUNDLE, same).all()
    delivery = next((row for row in rows if row.id == delivery_id), None)
    if delivery is None:
        raise DeliveryNotFoundError(f"no delivery {delivery_id}")
    if is_machine(report.answered_by):
        note_voicemail_pickup(session, delivery, report.sid, report.answered_by, now)
    outcome = OUTCOMES.get(delivery.channel, {}).get(report.status)
    for row in rows:
        _settle(session, flows, row, report, outcome, now)


_DELIVERY_AND_ITS_BUNDLE = (  # built once: building it costs more than running it
    select(Delivery)
    .where(
        or_(
            Delivery.id == bindparam("delivery"),
            Delivery.bundle_key == bindparam("delivery"),
            Delivery.provider_sid == bindparam("sid"),
        )
    )
    .order_by(Delivery.id)
    .with_for_update()
)


def _settle(
    session: Session,
    flows: FlowStore,
    delivery: Delivery,
    report: StatusReport,
    outcome: DeliveryStatus | None,
    now: dt.datetime,
) -> None:
    if delivery.status in SETTLED:
        # Settled once: a final status Twilio sends again, or a late "sent", changes nothing.
        # (The rows are locked: two copies of one callback at once take turns.)
        return
    delivery.provider_status = report.status
    delivery.provider_sid = delivery.provider_sid or report.sid
    if outcome is None:
        return
    delivery.status = outcome
    if delivery.message_id is None:  # Twilio calls back about texts and calls: each has one
        return
    detail = {"delivery": delivery.id, "channel": delivery.channel, "status": report.status}
    if outcome is DeliveryStatus.delivered:
        add_event(session, delivery.message_id, "delivered", now, **detail)
        return
    delivery.error = f"{report.status} (Twilio error {report.error_code or 'none'})"
    add_event(session, delivery.message_id, "failed", now, **detail, code=report.error_code)
    log.info(
        "delivery_failed",
        extra={"delivery_id": delivery.id, "status": report.status, "code": report.error_code},
    )
    move_on_after_failure(session, flows, delivery, now)


def note_voicemail_pickup(
    session: Session, delivery: Delivery, call_sid: str, answered_by: str | None, now: dt.datetime
) -> None:
    """A machine answered the notification call: on the timeline once, however many say so."""
    if first_time(session, f"{call_sid}:machine") and delivery.message_id is not None:
        detail = {"delivery": delivery.id, "answered_by": answered_by}
        add_event(session, delivery.message_id, "voicemail_pickup", now, **detail)
