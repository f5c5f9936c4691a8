"""A client's webhook endpoints as the API shows them (never their secret, except once)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

EventType = Literal[
    "message.taken", "message.acknowledged", "message.called_back", "message.closed"
]


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        max_length=2000,
        description="An https:// URL on a public address (private, loopback, link-local and "
        "reserved addresses are refused, at registration and at each delivery)",
        examples=["https://crm.example.com/nightdesk"],
    )
    events: list[EventType] = Field(
        default_factory=list, description="The events it wants; empty: every one"
    )


class FailureOut(BaseModel):
    """A delivery the receiver refused: given up (`failed`), or to be tried again (`pending`)."""

    event_id: str = Field(description="The `webhook-id` header it was sent with")
    event_type: str
    status: str
    attempts: int
    response_status: int | None = Field(description="The receiver's HTTP status, if it answered")
    error: str | None
    created_at: dt.datetime
    next_try: dt.datetime | None


class EndpointOut(BaseModel):
    id: int
    url: str
    events: list[str] = Field(description="Empty: every event")
    state: str = Field(description="active, failing or paused")
    since: dt.datetime | None = Field(description="Failing or paused since")
    pending: int = Field(description="Events waiting to be sent")
    failed: int = Field(description="Events given up after every retry")
    last_error: str | None


class EndpointDetail(EndpointOut):
    recent_failures: list[FailureOut] = Field(description="Newest first, at most 20")


class EndpointCreated(EndpointOut):
    secret: str = Field(
        description="The signing secret (whsec_…), shown only this once: verify each event's "
        "`webhook-signature` with it, using a Standard Webhooks library"
    )
