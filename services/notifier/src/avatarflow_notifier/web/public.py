"""Public endpoints: the avatar anyone may see (a space's ready avatar, or the default). Credentials
are ignored: the answer is the same whoever asks."""

from __future__ import annotations

from fastapi import APIRouter

from ..schemas import PublicAvatarOut
from .deps import Views

router = APIRouter(prefix="/v1/public", tags=["public"])


@router.get(
    "/spaces/{space_id}/avatar",
    response_model=PublicAvatarOut,
    summary="The space's current ready avatar, or the default avatar",
)
async def get_public_avatar(space_id: str, views: Views) -> PublicAvatarOut:
    return await views.current_public_avatar(space_id)
