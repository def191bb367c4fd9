"""Asset bytes, streamed from S3 through this service rather than handed out as presigned URLs.

The browser only ever talks to this origin, the object keys stay internal, and only the objects of a
space's *current* avatar (or the catalogue), or of an editor's own ready upload, can be read: never
an original upload. Range requests pass through so ``<video>`` can seek.
"""

from __future__ import annotations

from avatarflow_runtime.service import error_response
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from ..adapters.catalogue import Catalogue, ObjectMissing, RangeNotSatisfiable
from ..schemas import ErrorOut
from .deps import AUTH_ERRORS, CatalogueDep, SpaceEditor, Store, Views
from .views import pack_file

router = APIRouter()
PACK_TYPES = ("image/png", "video/webm", "video/mp4", "application/json")
PACK_CONTENT: dict[str, dict[str, object]] = {content_type: {} for content_type in PACK_TYPES}
PUBLIC_CACHE = "public, max-age=60"


def not_found() -> Response:
    return error_response(404, "not_found", "not found")


async def stream_object(catalogue: Catalogue, bucket: str, key: str, request: Request, cache: str) -> Response:
    try:
        obj = await catalogue.open_object(bucket, key, request.headers.get("range"))
    except ObjectMissing:
        return not_found()
    except RangeNotSatisfiable:
        return error_response(416, "range_not_satisfiable", "range not satisfiable")
    headers = {**obj.headers, "cache-control": cache, "x-content-type-options": "nosniff"}
    return StreamingResponse(obj.chunks(), status_code=obj.status_code, headers=headers)


@router.get(
    "/v1/public/assets/spaces/{space_id}/{asset}",
    response_class=StreamingResponse,
    responses={200: {"content": PACK_CONTENT}, 404: {"model": ErrorOut}},
    tags=["public"],
    summary="Bytes of the space's current avatar asset: a pack name (poster, idle_loop, manifest, "
    "viseme_atlas, preview_clip) or any file name manifest.json gives (e.g. visemes.png, an alternate)",
)
async def get_space_asset(space_id: str, asset: str, request: Request, store: Store, views: Views) -> Response:
    avatar, entry = await views.resolve(await store.current_avatar(space_id))
    if avatar.kind == "custom":
        ref = pack_file(avatar.assets, asset)
        if ref is None:
            return not_found()
        return await stream_object(views.catalogue, ref.bucket, ref.key, request, PUBLIC_CACHE)
    if entry is None or asset != "poster":
        return not_found()
    return await stream_object(views.catalogue, views.catalogue.bucket, entry.poster.key, request, PUBLIC_CACHE)


@router.get(
    "/v1/public/assets/catalogue/{avatar_id}/poster",
    response_class=StreamingResponse,
    responses={200: {"content": {"image/png": {}}}, 404: {"model": ErrorOut}},
    tags=["public"],
    summary="Poster image of a pre-generated avatar",
)
async def get_catalogue_poster(avatar_id: str, request: Request, catalogue: CatalogueDep) -> Response:
    entry = (await catalogue.index()).get(avatar_id)
    if entry is None:
        return not_found()
    return await stream_object(catalogue, catalogue.bucket, entry.poster.key, request, "public, max-age=3600")


@router.get(
    "/v1/spaces/{space_id}/uploads/{upload_id}/assets/{asset}",
    response_class=StreamingResponse,
    responses={
        200: {"content": PACK_CONTENT},
        **AUTH_ERRORS,
        404: {"model": ErrorOut, "description": "no such ready upload in this space, or no such file"},
    },
    tags=["editor"],
    summary="Bytes of a ready upload's pack file (pack name or manifest file name), current or not",
)
async def get_upload_asset(
    space_id: str, upload_id: str, asset: str, request: Request, _p: SpaceEditor, store: Store, catalogue: CatalogueDep
) -> Response:
    upload = await store.upload(upload_id)
    if upload is None or upload.space_id != space_id or upload.status != "ready":
        return not_found()
    ref = pack_file(upload.pack, asset)
    if ref is None:
        return not_found()
    # Private: an editor's answer must never sit in a shared cache.
    return await stream_object(catalogue, ref.bucket, ref.key, request, "private, max-age=60")
