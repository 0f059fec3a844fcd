"""The JSON the API takes and gives. Requests refuse unknown fields, so a typo is a 422.

Every rule of `domain.rules` a schema can state is stated here too, so a client (and
schemathesis) knows in advance what is accepted; the use cases check them all again.
"""

from pydantic import BaseModel, ConfigDict, Field

from outrigger.http import JsonField
from services.notifications.domain import (
    EVENT_NAME_PATTERN,
    KEY_PATTERN,
    ChannelHistory,
    Published,
)

HISTORY_ID_PATTERN = r"^(0|[1-9][0-9]{0,18})-(0|[1-9][0-9]{0,18})$"
"""History ids, as the API documents them: `<milliseconds>-<sequence>`."""
HISTORY_ID = "A history id, `<milliseconds>-<sequence>` (the `id:` of an event)."


class PublishIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event: str = Field(
        pattern=EVENT_NAME_PATTERN,
        json_schema_extra={"not": {"enum": ["reset", "shutdown"]}},  # RESERVED_EVENTS
        description="The event's name (its SSE `event:` field): 1-200 characters without "
        "whitespace or control characters; `reset` and `shutdown` are the hub's own.",
        examples=["order.shipped"],
    )
    data: JsonField = Field(description="Any JSON, at most 64 KiB as compact JSON.")
    id: str | None = Field(
        None,
        pattern=KEY_PATTERN,
        description="Your id for this message: publishing it again to the channel (a retry) "
        "within the de-duplication window stores nothing and answers the first history id.",
        examples=["order-7-shipped"],
    )


class PublishedOut(BaseModel):
    channel: str
    id: str = Field(description=HISTORY_ID)
    duplicate: bool = Field(description="The message id was published here before.")

    @classmethod
    def of(cls, landed: Published) -> "PublishedOut":
        return cls(channel=landed.channel, id=str(landed.id), duplicate=landed.duplicate)


class ChannelOut(BaseModel):
    channel: str
    subscribers: int = Field(ge=0, description="Open streams following it, on every replica.")
    length: int = Field(ge=0, description="Messages history keeps of it.")
    first_id: str | None = Field(description="The oldest kept (none when it keeps nothing).")
    last_id: str | None = Field(description="The newest kept.")

    @classmethod
    def of(cls, kept: ChannelHistory, subscribers: int) -> "ChannelOut":
        return cls(
            channel=kept.channel,
            subscribers=subscribers,
            length=kept.length,
            first_id=None if kept.first_id is None else str(kept.first_id),
            last_id=None if kept.last_id is None else str(kept.last_id),
        )
