"""Editor endpoints (``/v1/spaces/{space_id}/...``): status, history, prompt, catalogue, live stream.

Each needs a bearer JWT with role ``editor`` for that space: 401 for a missing, malformed, expired,
forged or ``alg: none`` token, 403 for a valid token of another space or a viewer; 403 is the same
whether the space exists or not. The live stream alone also takes ``?access_token=``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from avatarflow_runtime.auth import Principal
from avatarflow_runtime.service import error_response
from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from sse_starlette.sse import EventSourceResponse

from ..adapters.broadcast import Broadcaster
from ..metrics import SSE_STREAMS
from ..schemas import (
    AvatarStatusOut,
    CatalogueItemOut,
    CatalogueOut,
    ChoosePregeneratedIn,
    ErrorOut,
    UploadsPageOut,
    upload_out,
)
from .deps import AUTH_ERRORS, CatalogueDep, Context, SpaceEditor, Store, StreamEditor, Views
from .views import AvatarViews, catalogue_poster, decode_cursor, encode_cursor

router = APIRouter(prefix="/v1/spaces/{space_id}", tags=["editor"], responses=AUTH_ERRORS)
STREAM_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "description": "SSE: event `status`, id = version, data = AvatarStatusOut JSON; "
        "a last event `token_expired` when the token's `exp` passes, then the stream closes",
        "content": {"text/event-stream": {}},
    },
}


@router.get(
    "/avatar-status",
    response_model=AvatarStatusOut,
    summary="The space's current avatar, latest upload status and prompt",
)
async def get_avatar_status(space_id: str, _p: SpaceEditor, views: Views) -> AvatarStatusOut:
    return await views.editor_status(space_id)


@router.get(
    "/uploads",
    response_model=UploadsPageOut,
    responses={400: {"model": ErrorOut, "description": "bad cursor"}},
    summary="Upload history, newest first (cursor pagination)",
)
async def list_uploads(
    space_id: str,
    _p: SpaceEditor,
    store: Store,
    limit: int = Query(20, ge=1, le=100),
    cursor: str | None = Query(None, description="next_cursor of the previous page"),
) -> UploadsPageOut | JSONResponse:
    before = decode_cursor(cursor) if cursor else None
    if cursor and before is None:
        return error_response(400, "bad_cursor", "bad cursor")
    page = await store.uploads_page(space_id, limit=limit + 1, before=before)
    items, more = page[:limit], len(page) > limit
    next_cursor = encode_cursor(items[-1].order_at, items[-1].upload_id) if more else None
    return UploadsPageOut(items=[upload_out(u) for u in items], next_cursor=next_cursor)


@router.post("/prompt/dismiss", response_model=AvatarStatusOut, summary="Dismiss the prompt of the latest upload")
async def dismiss_prompt(space_id: str, _p: SpaceEditor, store: Store, views: Views) -> AvatarStatusOut:
    await store.dismiss_prompt(space_id)
    return await views.editor_status(space_id)


@router.get("/pregenerated-avatars", response_model=CatalogueOut, summary="The catalogue of pre-generated avatars")
async def list_pregenerated(space_id: str, _p: SpaceEditor, catalogue: CatalogueDep) -> CatalogueOut:
    index = await catalogue.index()
    default_id = index.default.avatar_id if index.default is not None else None
    items = [
        CatalogueItemOut(
            avatar_id=e.avatar_id, name=e.name, poster=catalogue_poster(e), is_default=e.avatar_id == default_id
        )
        for e in index.avatars
    ]
    return CatalogueOut(items=items)


@router.post(
    "/avatar/choose-pregenerated",
    response_model=AvatarStatusOut,
    responses={404: {"model": ErrorOut, "description": "no such pre-generated avatar"}},
    summary="Use a pre-generated avatar; clears the prompt",
)
async def choose_pregenerated(
    space_id: str, body: ChoosePregeneratedIn, _p: SpaceEditor, ctx: Context
) -> AvatarStatusOut | JSONResponse:
    catalogue = ctx.catalogue
    if (await catalogue.index()).get(body.avatar_id) is None:
        catalogue.invalidate()  # maybe just added: look again once
        if (await catalogue.index()).get(body.avatar_id) is None:
            return error_response(404, "not_found", "no such pre-generated avatar")
    await ctx.store.choose_pregenerated(space_id, body.avatar_id)
    return await ctx.views.editor_status(space_id)


@router.get(
    "/events",
    responses=STREAM_RESPONSES,
    summary="Live status stream (SSE); token via Authorization header or ?access_token=",
)
async def status_events(
    space_id: str,
    principal: StreamEditor,
    ctx: Context,
    access_token: str | None = Query(None, description="for EventSource clients that cannot set headers; never logged"),
) -> EventSourceResponse:
    stream = StatusStream(ctx.views, ctx.broadcaster, space_id, principal, ctx.settings.notifier_sse_poll_interval_s)
    return EventSourceResponse(stream.events(), ping=int(ctx.settings.notifier_sse_ping_interval_s))


class StatusStream:
    """One editor's live status: an event per new version, until the token expires."""

    def __init__(
        self, views: AvatarViews, broadcaster: Broadcaster, space_id: str, principal: Principal, poll_s: float
    ) -> None:
        self.views, self.broadcaster = views, broadcaster
        self.space_id, self.principal, self.poll_s = space_id, principal, poll_s

    async def events(self) -> AsyncIterator[dict[str, str]]:
        SSE_STREAMS.inc()
        try:
            async with self.broadcaster.subscribe(self.space_id) as wakeups:
                async for event in self._until_expired(wakeups):
                    yield event
        finally:
            SSE_STREAMS.dec()

    async def _until_expired(self, wakeups: asyncio.Queue[int]) -> AsyncIterator[dict[str, str]]:
        sent_version = -1
        current = await self.views.editor_status(self.space_id)
        while True:
            if current.version != sent_version:
                sent_version = current.version
                yield {"event": "status", "id": str(current.version), "data": current.model_dump_json()}
            # The stream ends with its token: a revoked editor (short-lived tokens) must not keep
            # receiving the space's status. The client reconnects with a fresh token; an expired one gets 401.
            left_s = self.principal.expires_at - time.time()
            if left_s <= 0:
                yield {"event": "token_expired", "data": '{"detail": "token expired"}'}
                return
            # A local write wakes us at once; writes of other replicas are found by re-reading the
            # version every poll_s seconds.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeups.get(), timeout=min(self.poll_s, left_s))
            if await self.views.store.space_version(self.space_id) != sent_version:
                current = await self.views.editor_status(self.space_id)
