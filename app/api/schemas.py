"""The API's own shapes: a page of messages, and what closing one says. Messages themselves are
`MessageOut`, the one shape `nightdesk messages list --json` prints too."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.inbox.schemas import NOTE_LENGTH
from app.messages.schemas import MessageOut


class MessagePage(BaseModel):
    items: list[MessageOut] = Field(description="Newest first")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next (older) page; null on the last page"
    )


class CloseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(None, max_length=NOTE_LENGTH, description="What was done about it")
    called_back: bool = Field(False, description="Someone called the caller back")
