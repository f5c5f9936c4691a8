"""Twilio's status callbacks for the texts and calls the dispatcher sent. Thin: verify, parse,
hand to `status.apply_status` (or to the spool when the database refuses it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session

from app.clients.flows import FlowStore
from app.db import Work
from app.deps import FlowsDep
from app.dispatch import status
from app.dispatch.status import DeliveryNotFoundError
from app.dispatch.webhooks import StatusReport
from app.flows.schema import Channel
from app.telephony.signature import parse_form, query_int
from app.telephony.spool import Replay, SpooledRequest, TwilioCallback

log = logging.getLogger("nightdesk.dispatch")
router = APIRouter(tags=["notifications"], default_response_class=Response)


@router.post("/twilio/sms/status", status_code=204)
async def sms_status(request: Request, callback: TwilioCallback, flows: FlowsDep) -> None:
    """The status callback of a notification SMS. Only a final status takes a unit of work."""
    query_int(request, "d")  # checked at the edge: a bad one is a 400, never spooled
    await callback.apply(StatusCallbacks(flows).sms)


@router.post("/twilio/notify/voice/status", status_code=204)
async def call_status(request: Request, callback: TwilioCallback, flows: FlowsDep) -> None:
    """The status callback of a notification call."""
    query_int(request, "d")  # checked at the edge: a bad one is a 400, never spooled
    await callback.apply(StatusCallbacks(flows).call)


@dataclass(frozen=True)
class StatusCallbacks:
    """Status callbacks as units of work, as of the moment Twilio sent them: the routes run
    them at once, and the spool's replayer later if the database refused them."""

    flows: FlowStore

    def sms(self, callback: SpooledRequest) -> Work[None] | None:
        report = StatusReport.for_sms(callback.form)
        if not status.settles(Channel.sms, report):
            return None  # its progress (queued, sent): nothing to record, see `status.settles`
        return self._apply(callback, report)

    def call(self, callback: SpooledRequest) -> Work[None]:
        return self._apply(callback, StatusReport.for_call(callback.form))

    def _apply(self, callback: SpooledRequest, report: StatusReport) -> Work[None]:
        delivery_id = int(parse_form(callback.query)["d"])  # checked by the route
        now = callback.received_at

        def work(session: Session) -> None:
            try:
                status.apply_status(session, self.flows, delivery_id, report, now)
            except DeliveryNotFoundError:  # 204 all the same: no repeat of it would help
                log.warning(
                    "status_for_unknown_delivery",
                    extra={"delivery_id": delivery_id, "sid": report.sid},
                )

        return work


def replays(flows: FlowStore) -> dict[str, Replay]:
    """The spooled status callbacks the replayer knows, by path."""
    callbacks = StatusCallbacks(flows)
    return {"/twilio/sms/status": callbacks.sms, "/twilio/notify/voice/status": callbacks.call}
