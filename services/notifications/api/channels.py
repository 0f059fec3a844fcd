"""Channels: publish a message to one, and describe one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from outrigger.http import ServiceRoute, problem_responses
from services.notifications.api.context import (
    READER_SECURITY,
    Channel,
    Publisher,
    Reader,
    Service,
)
from services.notifications.api.models import ChannelOut, PublishedOut, PublishIn
from services.notifications.usecases import message_draft

router = APIRouter(prefix="/v1/channels", tags=["channels"], route_class=ServiceRoute)
PUBLISH_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": PublishedOut, "description": "The message id was published here before."},
    **problem_responses({413: "The body is over 66 KiB, or `data` over 64 KiB of JSON."}),
}


@router.post(
    "/{channel}/events", status_code=201, response_model=PublishedOut, responses=PUBLISH_RESPONSES
)
async def publish(
    channel: Channel, body: PublishIn, service: Service, caller: Publisher
) -> Response:
    """Stores the message in the channel's history, which sends it to every subscriber on
    every replica, and answers its history id. A retried `id` is not stored twice: its first
    history id comes back with `duplicate: true` (200)."""
    draft = message_draft((channel,), body.event, body.data, body.id)
    [landed] = await service.publish(draft, via="http", actor=caller.subject)
    out = PublishedOut.of(landed)
    status = 200 if landed.duplicate else 201
    return Response(out.model_dump_json(), status, media_type="application/json")


@router.get(
    "/{channel}",
    openapi_extra=READER_SECURITY,
    responses=problem_responses({403: "The token grants neither scope, or no grant covers it."}),
)
async def describe(channel: Channel, service: Service, caller: Reader) -> ChannelOut:
    """Subscribers now (on every replica) and what history keeps of the channel. Needs
    `notify:publish`, or `notify:subscribe` with a grant covering the channel."""
    found = await service.describe(caller, channel)
    return ChannelOut.of(found.history, found.subscribers)
