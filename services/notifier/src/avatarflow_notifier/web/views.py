"""What the notifier shows of a space: the public avatar, the editor's status, catalogue posters.

Pure helpers (asset URLs, cursors, a pack's files) and :class:`AvatarViews`, which reads the store
and the catalogue to build the answers the routers return.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from ..adapters.catalogue import Catalogue, CatalogueEntry
from ..adapters.store import StatusStore
from ..core.status import ALTERNATE_PREFIX, PACK_ASSETS, AssetRef, CurrentAvatar, file_name
from ..schemas import AssetOut, AvatarStatusOut, PublicAvatarOut, editor_avatar, status_out

PUBLIC_ASSETS = PACK_ASSETS


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


def version_tag(sha256: str) -> str:
    return sha256[:16]


def pack_file(pack: tuple[tuple[str, AssetRef], ...], asset: str) -> AssetRef | None:
    """A pack's object by pack name (``poster``, ``viseme_atlas``...) or by manifest file name.

    Only the pack's own objects can be named: anything else (an original, another key) is None.
    """
    for name, ref in pack:
        if (name == asset and name in PACK_ASSETS) or file_name(ref) == asset:
            return ref
    return None


def asset_out(url: str, ref: AssetRef) -> AssetOut:
    return AssetOut(url=f"{url}?v={version_tag(ref.sha256)}", content_type=ref.content_type)


def catalogue_poster(entry: CatalogueEntry) -> AssetOut:
    return AssetOut(
        url=f"/v1/public/assets/catalogue/{entry.avatar_id}/poster?v={version_tag(entry.poster.sha256)}",
        content_type=entry.poster.content_type,
    )


def custom_avatar(space_id: str, avatar: CurrentAvatar) -> PublicAvatarOut:
    """A space's own avatar pack, every URL on this origin (``/v1/public/assets/spaces/...``)."""
    assets = dict(avatar.assets)
    base = f"/v1/public/assets/spaces/{space_id}"
    out = {n: asset_out(f"{base}/{n}", assets[n]) if n in assets else None for n in PUBLIC_ASSETS}
    files = {file_name(ref): asset_out(f"{base}/{file_name(ref)}", ref) for _n, ref in avatar.assets}
    alternates = [files[file_name(ref)] for n, ref in avatar.assets if n.startswith(ALTERNATE_PREFIX)]
    return PublicAvatarOut(kind="custom", **out, alternates=alternates, files=files)


class AvatarViews:
    def __init__(self, store: StatusStore, catalogue: Catalogue) -> None:
        self.store = store
        self.catalogue = catalogue

    async def resolve(self, avatar: CurrentAvatar) -> tuple[CurrentAvatar, CatalogueEntry | None]:
        """The avatar to show; a pick whose catalogue entry vanished falls back to the default."""
        index = await self.catalogue.index()
        if avatar.kind == "pregenerated":
            entry = index.get(avatar.avatar_id or "")
            if entry is not None:
                return avatar, entry
            avatar = CurrentAvatar(kind="default")
        if avatar.kind == "default":
            return avatar, index.default
        return avatar, None

    async def public_avatar(self, space_id: str, avatar: CurrentAvatar) -> tuple[CurrentAvatar, PublicAvatarOut]:
        avatar, entry = await self.resolve(avatar)
        if avatar.kind == "custom":
            return avatar, custom_avatar(space_id, avatar)
        poster = catalogue_poster(entry) if entry else None
        return avatar, PublicAvatarOut(kind=avatar.kind, poster=poster, idle_loop=None, manifest=None)

    async def current_public_avatar(self, space_id: str) -> PublicAvatarOut:
        _avatar, public = await self.public_avatar(space_id, await self.store.current_avatar(space_id))
        return public

    async def editor_status(self, space_id: str) -> AvatarStatusOut:
        version, view = await self.store.view(space_id)
        avatar, public = await self.public_avatar(space_id, view.avatar)
        return status_out(version, view, editor_avatar(avatar, public))
