"""The notifier's HTTP API: editor endpoints, the public avatar, live SSE, pages, health and metrics.

Authorisation:
- Editor endpoints (``/v1/spaces/{space_id}/...``) need a bearer JWT with role ``editor`` for that
  space: 401 for a missing/malformed/expired/forged/``alg: none`` token, 403 for a valid token of
  another space or a viewer. 403 is the same whether the space exists or not.
- ``GET /v1/spaces/{space_id}/events`` also accepts ``?access_token=`` because a browser
  ``EventSource`` cannot send headers. The uvicorn access log is filtered so that query value
  never reaches a log line. (Our own editor page streams with ``fetch`` and the header instead.)
- Public endpoints (``/v1/public/...``, pages, health, metrics) ignore credentials entirely.

Assets are streamed from S3 through this service (``/v1/public/assets/...``) rather than handed out
as presigned URLs: the browser only ever talks to this origin, the object keys stay internal, and
only the objects of a space's *current* avatar (or the catalogue) can be read — never an original
upload. Range requests are passed through so ``<video>`` can seek.
"""

import asyncio
import base64
import binascii
import contextlib
import html
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from datetime import datetime
from importlib import resources
from typing import Annotated, Any

from avatarflow_runtime.auth import (
    AuthError,
    Forbidden,
    Principal,
    bearer_token,
    require_editor,
    verify_token,
)
from avatarflow_runtime.logging import security_event
from avatarflow_runtime.service import api_docs_urls, install_error_handlers, install_request_limits, request_fields
from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from sse_starlette.sse import EventSourceResponse

from .broadcast import Broadcaster
from .catalogue import Catalogue, CatalogueEntry, ObjectMissing, RangeNotSatisfiable
from .metrics import HTTP_LATENCY, HTTP_REQUESTS, SSE_STREAMS
from .schemas import (
    AssetOut,
    AvatarStatusOut,
    CatalogueItemOut,
    CatalogueOut,
    ChoosePregeneratedIn,
    ErrorOut,
    HealthOut,
    PublicAvatarOut,
    UploadsPageOut,
    editor_avatar,
    status_out,
    upload_out,
)
from .settings import NotifierSettings
from .status import ALTERNATE_PREFIX, PACK_ASSETS, AssetRef, CurrentAvatar, file_name
from .store import StatusStore

log = logging.getLogger("avatarflow.notifier")

PUBLIC_ASSETS = PACK_ASSETS
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self' {ingest}; frame-ancestors 'none'; base-uri 'none'"
)
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "missing, malformed, expired or forged token"},
    403: {"model": ErrorOut, "description": "not an editor of this space"},
}


# ---- logging hygiene -----------------------------------------------------------------------

_TOKEN_IN_QUERY = re.compile(r"(access_token=)[^&\s\"]*", re.IGNORECASE)


def redact_tokens(text: str) -> str:
    return _TOKEN_IN_QUERY.sub(r"\1[redacted]", text)


class RedactTokensFilter(logging.Filter):
    """Scrubs ``access_token=...`` from log records (uvicorn's access log prints the query)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_tokens(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact_tokens(record.msg)
        return True


def install_log_redaction() -> None:
    for name in ("uvicorn.access", "uvicorn.error", "uvicorn", "avatarflow"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokensFilter) for f in logger.filters):
            logger.addFilter(RedactTokensFilter())


# ---- metrics middleware (route templates only: no ids in labels) ----------------------------


class MetricsMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status_code = 500

        async def send_wrapper(message: MutableMapping[str, Any]) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            HTTP_REQUESTS.labels(template, scope["method"], str(status_code)).inc()
            HTTP_LATENCY.labels(template).observe(time.perf_counter() - started)


# ---- helpers --------------------------------------------------------------------------------


def encode_cursor(order_at: datetime, upload_id: str) -> str:
    return base64.urlsafe_b64encode(f"{order_at.isoformat()}|{upload_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str] | None:
    try:
        raw = base64.urlsafe_b64decode(cursor.encode()).decode()
        stamp, upload_id = raw.split("|", 1)
        when = datetime.fromisoformat(stamp)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    return (when, upload_id) if when.tzinfo is not None else None


def _version_tag(sha256: str) -> str:
    return sha256[:16]


def pack_file(pack: tuple[tuple[str, AssetRef], ...], asset: str) -> AssetRef | None:
    """A pack's object by pack name (``poster``, ``viseme_atlas``...) or by manifest file name.

    Only the pack's own objects can be named: anything else (an original, another key) is None.
    """
    for name, ref in pack:
        if (name == asset and name in PACK_ASSETS) or file_name(ref) == asset:
            return ref
    return None


def create_app(
    settings: NotifierSettings,
    store: StatusStore,
    catalogue: Catalogue,
    *,
    broadcaster: Broadcaster | None = None,
    readiness: Mapping[str, Callable[[], Awaitable[None]]] | None = None,
) -> FastAPI:
    """The notifier web app. ``store`` and ``catalogue`` are owned by the caller (closed by it).

    ``readiness``: more checks for ``/readyz`` besides the database, by name (the service passes its
    broker connection, so a notifier that lost the broker stops getting traffic)."""
    extra_checks = dict(readiness or {})
    broadcaster = broadcaster or Broadcaster()
    store.add_listener(broadcaster.publish)
    install_log_redaction()
    secret = settings.jwt_secret.get_secret_value()

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if settings.notifier_migrate_on_start:
            from .migrate import upgrade_database

            await asyncio.to_thread(upgrade_database, settings.database_url)
        yield

    app = FastAPI(
        title="avatarflow notifier",
        version="1.0",
        summary="Avatar status for Space editors; the current avatar for everyone else.",
        lifespan=lifespan,
        **api_docs_urls(settings),
    )
    app.add_middleware(MetricsMiddleware)
    install_request_limits(app, settings)  # 413 / 408 as on every service (avatarflow_runtime.http_limits)
    install_error_handlers(app)  # 404/405/422... in the common shape; the auth handlers below replace its own
    app.state.store = store
    app.state.catalogue = catalogue
    app.state.broadcaster = broadcaster
    app.mount(
        "/static",
        StaticFiles(directory=str(resources.files("avatarflow_notifier") / "static")),
        name="static",
    )

    @app.exception_handler(AuthError)
    async def _unauthorized(request: Request, exc: AuthError) -> JSONResponse:
        # One message for every kind of bad token: the reason is not the caller's business (it is logged).
        security_event("unauthorized", status=401, reason=str(exc), **request_fields(request))
        return JSONResponse(
            {"error": "unauthorized", "detail": "missing or invalid credentials"},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="avatarflow"'},
        )

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> JSONResponse:
        security_event("forbidden", status=403, reason=str(exc), **request_fields(request))
        return JSONResponse({"error": "forbidden", "detail": "not an editor of this space"}, status_code=403)

    def _principal(token: str) -> Principal:
        return verify_token(token, secret, issuer=settings.jwt_issuer, audience=settings.jwt_audience)

    async def editor_of_space(space_id: str, request: Request) -> Principal:
        principal = _principal(bearer_token(request.headers.get("authorization")))
        require_editor(principal, space_id)
        return principal

    async def editor_of_space_stream(space_id: str, request: Request) -> Principal:
        header = request.headers.get("authorization")
        query_token = request.query_params.get("access_token")
        token = bearer_token(header) if header or not query_token else query_token
        principal = _principal(token)
        require_editor(principal, space_id)
        return principal

    SpaceEditor = Annotated[Principal, Depends(editor_of_space)]
    StreamEditor = Annotated[Principal, Depends(editor_of_space_stream)]

    # ---- building avatar views ----------------------------------------------------------

    def _asset(url: str, ref: AssetRef) -> AssetOut:
        return AssetOut(url=f"{url}?v={_version_tag(ref.sha256)}", content_type=ref.content_type)

    def _catalogue_poster(entry: CatalogueEntry) -> AssetOut:
        return AssetOut(
            url=f"/v1/public/assets/catalogue/{entry.avatar_id}/poster?v={_version_tag(entry.poster.sha256)}",
            content_type=entry.poster.content_type,
        )

    async def _resolve(avatar: CurrentAvatar) -> tuple[CurrentAvatar, CatalogueEntry | None]:
        """The avatar to show; a pick whose catalogue entry vanished falls back to the default."""
        index = await catalogue.index()
        if avatar.kind == "pregenerated":
            entry = index.get(avatar.avatar_id or "")
            if entry is not None:
                return avatar, entry
            avatar = CurrentAvatar(kind="default")
        if avatar.kind == "default":
            return avatar, index.default
        return avatar, None

    async def public_avatar(space_id: str, avatar: CurrentAvatar) -> tuple[CurrentAvatar, PublicAvatarOut]:
        avatar, entry = await _resolve(avatar)
        if avatar.kind == "custom":
            assets = dict(avatar.assets)
            base = f"/v1/public/assets/spaces/{space_id}"
            out = {n: _asset(f"{base}/{n}", assets[n]) if n in assets else None for n in PUBLIC_ASSETS}
            files = {file_name(ref): _asset(f"{base}/{file_name(ref)}", ref) for _n, ref in avatar.assets}
            alternates = [files[file_name(ref)] for n, ref in avatar.assets if n.startswith(ALTERNATE_PREFIX)]
            return avatar, PublicAvatarOut(kind="custom", **out, alternates=alternates, files=files)
        poster = _catalogue_poster(entry) if entry else None
        return avatar, PublicAvatarOut(kind=avatar.kind, poster=poster, idle_loop=None, manifest=None)

    async def editor_status(space_id: str) -> AvatarStatusOut:
        version, view = await store.view(space_id)
        avatar, public = await public_avatar(space_id, view.avatar)
        return status_out(version, view, editor_avatar(avatar, public))

    # ---- editor endpoints ------------------------------------------------------------------

    @app.get(
        "/v1/spaces/{space_id}/avatar-status",
        response_model=AvatarStatusOut,
        responses=AUTH_ERRORS,
        tags=["editor"],
        summary="The space's current avatar, latest upload status and prompt",
    )
    async def get_avatar_status(space_id: str, _p: SpaceEditor) -> AvatarStatusOut:
        return await editor_status(space_id)

    @app.get(
        "/v1/spaces/{space_id}/uploads",
        response_model=UploadsPageOut,
        responses={**AUTH_ERRORS, 400: {"model": ErrorOut, "description": "bad cursor"}},
        tags=["editor"],
        summary="Upload history, newest first (cursor pagination)",
    )
    async def list_uploads(
        space_id: str,
        _p: SpaceEditor,
        limit: int = Query(20, ge=1, le=100),
        cursor: str | None = Query(None, description="next_cursor of the previous page"),
    ) -> UploadsPageOut | JSONResponse:
        before = None
        if cursor:
            before = decode_cursor(cursor)
            if before is None:
                return JSONResponse({"error": "bad_cursor", "detail": "bad cursor"}, status_code=400)
        page = await store.uploads_page(space_id, limit=limit + 1, before=before)
        items, more = page[:limit], len(page) > limit
        next_cursor = encode_cursor(items[-1].order_at, items[-1].upload_id) if more else None
        return UploadsPageOut(items=[upload_out(u) for u in items], next_cursor=next_cursor)

    @app.post(
        "/v1/spaces/{space_id}/prompt/dismiss",
        response_model=AvatarStatusOut,
        responses=AUTH_ERRORS,
        tags=["editor"],
        summary="Dismiss the prompt of the latest upload",
    )
    async def dismiss_prompt(space_id: str, _p: SpaceEditor) -> AvatarStatusOut:
        await store.dismiss_prompt(space_id)
        return await editor_status(space_id)

    @app.get(
        "/v1/spaces/{space_id}/pregenerated-avatars",
        response_model=CatalogueOut,
        responses=AUTH_ERRORS,
        tags=["editor"],
        summary="The catalogue of pre-generated avatars",
    )
    async def list_pregenerated(space_id: str, _p: SpaceEditor) -> CatalogueOut:
        index = await catalogue.index()
        default = index.default
        return CatalogueOut(
            items=[
                CatalogueItemOut(
                    avatar_id=e.avatar_id,
                    name=e.name,
                    poster=_catalogue_poster(e),
                    is_default=default is not None and e.avatar_id == default.avatar_id,
                )
                for e in index.avatars
            ]
        )

    @app.post(
        "/v1/spaces/{space_id}/avatar/choose-pregenerated",
        response_model=AvatarStatusOut,
        responses={**AUTH_ERRORS, 404: {"model": ErrorOut, "description": "no such pre-generated avatar"}},
        tags=["editor"],
        summary="Use a pre-generated avatar; clears the prompt",
    )
    async def choose_pregenerated(
        space_id: str, body: ChoosePregeneratedIn, _p: SpaceEditor
    ) -> AvatarStatusOut | JSONResponse:
        index = await catalogue.index()
        if index.get(body.avatar_id) is None:
            catalogue.invalidate()  # maybe just added: look again once
            if (await catalogue.index()).get(body.avatar_id) is None:
                return JSONResponse({"error": "not_found", "detail": "no such pre-generated avatar"}, status_code=404)
        await store.choose_pregenerated(space_id, body.avatar_id)
        return await editor_status(space_id)

    @app.get(
        "/v1/spaces/{space_id}/events",
        responses={
            **AUTH_ERRORS,
            200: {
                "description": "SSE: event `status`, id = version, data = AvatarStatusOut JSON; "
                "a last event `token_expired` when the token's `exp` passes, then the stream closes",
                "content": {"text/event-stream": {}},
            },
        },
        tags=["editor"],
        summary="Live status stream (SSE); token via Authorization header or ?access_token=",
    )
    async def status_events(
        space_id: str,
        request: Request,
        principal: StreamEditor,
        access_token: str | None = Query(
            None, description="for EventSource clients that cannot set headers; never logged"
        ),
    ) -> EventSourceResponse:
        poll_s = settings.notifier_sse_poll_interval_s

        async def stream() -> AsyncIterator[dict[str, str]]:
            SSE_STREAMS.inc()
            try:
                async with broadcaster.subscribe(space_id) as wakeups:
                    sent_version = -1
                    current = await editor_status(space_id)
                    while True:
                        if current.version != sent_version:
                            sent_version = current.version
                            payload = current.model_dump_json()
                            yield {"event": "status", "id": str(current.version), "data": payload}
                        # The stream ends with its token: a revoked editor (short-lived tokens)
                        # must not keep receiving the space's status. The client reconnects
                        # with a fresh token; an expired one gets 401.
                        left_s = principal.expires_at - time.time()
                        if left_s <= 0:
                            yield {"event": "token_expired", "data": '{"detail": "token expired"}'}
                            return
                        # A local write wakes us at once; writes of other replicas are found by
                        # re-reading the version every poll_s seconds.
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(wakeups.get(), timeout=min(poll_s, left_s))
                        if await store.space_version(space_id) != sent_version:
                            current = await editor_status(space_id)
            finally:
                SSE_STREAMS.dec()

        return EventSourceResponse(stream(), ping=int(settings.notifier_sse_ping_interval_s))

    # ---- public -------------------------------------------------------------------------------

    @app.get(
        "/v1/public/spaces/{space_id}/avatar",
        response_model=PublicAvatarOut,
        tags=["public"],
        summary="The space's current ready avatar, or the default avatar",
    )
    async def get_public_avatar(space_id: str) -> PublicAvatarOut:
        _avatar, public = await public_avatar(space_id, await store.current_avatar(space_id))
        return public

    async def _stream(bucket: str, key: str, request: Request, cache: str) -> Response:
        try:
            obj = await catalogue.open_object(bucket, key, request.headers.get("range"))
        except ObjectMissing:
            return JSONResponse({"error": "not_found", "detail": "not found"}, status_code=404)
        except RangeNotSatisfiable:
            return JSONResponse({"error": "range_not_satisfiable", "detail": "range not satisfiable"}, status_code=416)
        headers = {**obj.headers, "cache-control": cache, "x-content-type-options": "nosniff"}
        return StreamingResponse(obj.chunks(), status_code=obj.status_code, headers=headers)

    @app.get(
        "/v1/public/assets/spaces/{space_id}/{asset}",
        response_class=StreamingResponse,
        responses={
            200: {"content": {"image/png": {}, "video/webm": {}, "video/mp4": {}, "application/json": {}}},
            404: {"model": ErrorOut},
        },
        tags=["public"],
        summary="Bytes of the space's current avatar asset: a pack name (poster, idle_loop, manifest, "
        "viseme_atlas, preview_clip) or any file name manifest.json gives (e.g. visemes.png, an alternate)",
    )
    async def get_space_asset(space_id: str, asset: str, request: Request) -> Response:
        avatar, entry = await _resolve(await store.current_avatar(space_id))
        if avatar.kind == "custom":
            ref = pack_file(avatar.assets, asset)
            if ref is None:
                return JSONResponse({"error": "not_found", "detail": "not found"}, status_code=404)
            return await _stream(ref.bucket, ref.key, request, "public, max-age=60")
        if entry is None or asset != "poster":
            return JSONResponse({"error": "not_found", "detail": "not found"}, status_code=404)
        return await _stream(catalogue.bucket, entry.poster.key, request, "public, max-age=60")

    @app.get(
        "/v1/public/assets/catalogue/{avatar_id}/poster",
        response_class=StreamingResponse,
        responses={200: {"content": {"image/png": {}}}, 404: {"model": ErrorOut}},
        tags=["public"],
        summary="Poster image of a pre-generated avatar",
    )
    async def get_catalogue_poster(avatar_id: str, request: Request) -> Response:
        entry = (await catalogue.index()).get(avatar_id)
        if entry is None:
            return JSONResponse({"error": "not_found", "detail": "not found"}, status_code=404)
        return await _stream(catalogue.bucket, entry.poster.key, request, "public, max-age=3600")

    @app.get(
        "/v1/spaces/{space_id}/uploads/{upload_id}/assets/{asset}",
        response_class=StreamingResponse,
        responses={
            200: {"content": {"image/png": {}, "video/webm": {}, "video/mp4": {}, "application/json": {}}},
            **AUTH_ERRORS,
            404: {"model": ErrorOut, "description": "no such ready upload in this space, or no such file"},
        },
        tags=["editor"],
        summary="Bytes of a ready upload's pack file (pack name or manifest file name), current or not",
    )
    async def get_upload_asset(
        space_id: str, upload_id: str, asset: str, request: Request, _p: SpaceEditor
    ) -> Response:
        upload = await store.upload(upload_id)
        if upload is None or upload.space_id != space_id or upload.status != "ready":
            return JSONResponse({"error": "not_found", "detail": "not found"}, status_code=404)
        ref = pack_file(upload.pack, asset)
        if ref is None:
            return JSONResponse({"error": "not_found", "detail": "not found"}, status_code=404)
        # Private: an editor's answer must never sit in a shared cache.
        return await _stream(ref.bucket, ref.key, request, "private, max-age=60")

    # ---- pages --------------------------------------------------------------------------------

    page_dir = resources.files("avatarflow_notifier") / "static"

    def _page(name: str, space_id: str, *, uploads: bool) -> HTMLResponse:
        # Only the editor page uploads, so only it learns the ingest origin; the end-user page's
        # config and CSP name no other service (it talks to this origin alone).
        ingest_origin = settings.notifier_ingest_public_url.rstrip("/") if uploads else ""
        config = {"spaceId": space_id, **({"ingestBaseUrl": ingest_origin} if uploads else {})}
        # JSON in a non-executed <script> block; '<' escaped so it cannot close the element.
        config_json = json.dumps(config).replace("<", "\\u003c")
        body = (page_dir / name).read_text().replace("{{CONFIG_JSON}}", config_json)
        body = body.replace("{{SPACE_ID}}", html.escape(space_id))
        headers = {
            "content-security-policy": PAGE_CSP.format(ingest=ingest_origin).replace(" ;", ";"),
            "referrer-policy": "no-referrer",
            "x-content-type-options": "nosniff",
            "cache-control": "no-store",
        }
        return HTMLResponse(body, headers=headers)

    @app.get("/editor/{space_id}", response_class=HTMLResponse, tags=["pages"], summary="Space editor page")
    async def editor_page(space_id: str) -> HTMLResponse:
        # The page itself is public; its API calls carry the editor token from the URL fragment.
        return _page("editor.html", space_id, uploads=True)

    @app.get("/spaces/{space_id}", response_class=HTMLResponse, tags=["pages"], summary="End-user view")
    async def space_page(space_id: str) -> HTMLResponse:
        return _page("space.html", space_id, uploads=False)

    # ---- operations -------------------------------------------------------------------------

    @app.get("/healthz", response_model=HealthOut, tags=["operations"])
    async def healthz() -> HealthOut:
        return HealthOut(status="ok")

    @app.get(
        "/readyz",
        response_model=HealthOut,
        responses={503: {"model": HealthOut, "description": "database (or broker) unreachable"}},
        tags=["operations"],
    )
    async def readyz() -> HealthOut | JSONResponse:
        for name, check in {"database": store.ping, **extra_checks}.items():
            try:
                await asyncio.wait_for(check(), timeout=5)
            except Exception as exc:  # any failure means "not ready"; the reason goes to the log
                log.warning("readiness check %s failed: %s", name, type(exc).__name__)
                return JSONResponse({"status": f"{name} unreachable"}, status_code=503)
        return HealthOut(status="ready")

    @app.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
        tags=["operations"],
    )
    async def metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return app
