"""``Depends`` providers of the notifier's routers: the service's objects and the editor rules.

The objects live on ``app.state.notifier`` (:class:`NotifierContext`, put there by the app's wiring),
so a router reaches them only through these providers and a test can serve any store or catalogue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from avatarflow_runtime.auth import Principal, require_editor
from avatarflow_runtime.http_auth import editor_of, principal_from_token
from fastapi import Depends, FastAPI, Request

from ..adapters.broadcast import Broadcaster
from ..adapters.catalogue import Catalogue
from ..adapters.store import StatusStore
from ..schemas import ErrorOut
from ..settings import NotifierSettings
from .views import AvatarViews

# Every 401 says the same: why a token failed is not the caller's business (the reason is logged).
UNAUTHORIZED_DETAIL = "missing or invalid credentials"
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "missing, malformed, expired or forged token"},
    403: {"model": ErrorOut, "description": "not an editor of this space"},
}


@dataclass(frozen=True)
class NotifierContext:
    """What the notifier's routes work with; the store and catalogue are closed by their owner."""

    settings: NotifierSettings
    store: StatusStore
    catalogue: Catalogue
    broadcaster: Broadcaster

    @classmethod
    def create(
        cls, settings: NotifierSettings, store: StatusStore, catalogue: Catalogue, broadcaster: Broadcaster | None
    ) -> NotifierContext:
        broadcaster = broadcaster or Broadcaster()
        store.add_listener(broadcaster.publish)  # committed changes wake this process's live streams
        return cls(settings, store, catalogue, broadcaster)

    @property
    def views(self) -> AvatarViews:
        return AvatarViews(self.store, self.catalogue)

    def install(self, app: FastAPI) -> None:
        app.state.notifier = self


def context(request: Request) -> NotifierContext:
    return request.app.state.notifier  # type: ignore[no-any-return]


Context = Annotated[NotifierContext, Depends(context)]


def settings_of(ctx: Context) -> NotifierSettings:
    return ctx.settings


def store_of(ctx: Context) -> StatusStore:
    return ctx.store


def catalogue_of(ctx: Context) -> Catalogue:
    return ctx.catalogue


def views_of(ctx: Context) -> AvatarViews:
    return ctx.views


Settings = Annotated[NotifierSettings, Depends(settings_of)]
Store = Annotated[StatusStore, Depends(store_of)]
CatalogueDep = Annotated[Catalogue, Depends(catalogue_of)]
Views = Annotated[AvatarViews, Depends(views_of)]


async def editor_of_space(space_id: str, request: Request, settings: Settings) -> Principal:
    """The bearer token's principal, an editor of ``space_id`` (401/403 otherwise)."""
    return editor_of(request, settings, space_id)


async def editor_of_space_stream(space_id: str, request: Request, settings: Settings) -> Principal:
    """As :func:`editor_of_space`, or the ``?access_token=`` a browser ``EventSource`` must use (it
    cannot send headers); a header, when present, wins."""
    query_token = request.query_params.get("access_token")
    if request.headers.get("authorization") or not query_token:
        return editor_of(request, settings, space_id)
    principal = principal_from_token(query_token, settings)
    require_editor(principal, space_id)
    return principal


SpaceEditor = Annotated[Principal, Depends(editor_of_space)]
StreamEditor = Annotated[Principal, Depends(editor_of_space_stream)]
