"""The status store: the pure rules of :mod:`..core.status` applied to the database, safely under concurrency.

Every write runs in one transaction that first locks the space's row (``INSERT ... ON CONFLICT DO
NOTHING`` to create it, then ``SELECT ... FOR UPDATE``). Writers of one space therefore take turns,
on any number of consumers and replicas, and each sees the previous writer's committed result.
SQLite has no row locks; there every transaction starts with ``BEGIN IMMEDIATE`` (one writer at a
time for the whole file), which gives the same guarantee.

Idempotency: an event is recorded by ``event_id`` (``INSERT ... ON CONFLICT DO NOTHING``); a second
delivery changes nothing. Even without that record the reducer is idempotent and monotone, which
is why old records can be pruned (``prune_applied_events``): they only spare a redelivered event
the reducer's work, and redeliveries come within the broker's retention.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from avatarflow_contracts import Envelope
from sqlalchemy import delete, select, text
from sqlalchemy import event as sa_event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from ..core import status
from ..core.status import AssetRef, CurrentAvatar, Failure, Pick, SpaceView, UploadState
from .models import applied_events, spaces, uploads


@dataclass(frozen=True)
class StatusChange:
    """What changed on a space; published to live streams after the transaction committed."""

    space_id: str
    version: int
    upload_id: str | None
    upload_status: str | None
    cause: str  # event type, "prompt.dismissed" or "avatar.chosen"


ChangeListener = Callable[[StatusChange], None]


def utcnow() -> datetime:
    return datetime.now(UTC)


def create_engine_for(url: str) -> AsyncEngine:
    """An async engine; for SQLite, one that serialises writers with BEGIN IMMEDIATE."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @sa_event.listens_for(engine.sync_engine, "connect")
        def _no_implicit_begin(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy (below) decide how transactions begin, not the sqlite3 module.
            dbapi_connection.isolation_level = None

        @sa_event.listens_for(engine.sync_engine, "begin")
        def _begin_immediate(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_async_engine(url, pool_pre_ping=True)


# ---- row <-> state ----------------------------------------------------------------------------


def _asset_json(ref: AssetRef) -> dict[str, Any]:
    return dataclasses.asdict(ref)


def _asset_from(data: dict[str, Any]) -> AssetRef:
    return AssetRef(**data)


def upload_to_row(state: UploadState, now: datetime) -> dict[str, Any]:
    return {
        "upload_id": state.upload_id,
        "space_id": state.space_id,
        "editor_id": state.editor_id,
        "status": state.status,
        "stage": state.stage,
        "uploaded_at": state.uploaded_at,
        "first_seen_at": state.first_seen_at,
        "order_at": state.order_at,
        "status_at": state.status_at,
        "original_key": state.original_key,
        "terminal_event_type": state.terminal_event_type,
        "reasons": list(state.reasons),
        "editor_messages": list(state.editor_messages),
        "checks": list(state.checks),
        "warnings": list(state.warnings),
        "pack": {name: _asset_json(ref) for name, ref in state.pack} or None,
        "failure": dataclasses.asdict(state.failure) if state.failure else None,
        "updated_at": now,
    }


def upload_from_row(row: Row[Any] | dict[str, Any]) -> UploadState:
    data = dict(row._mapping) if isinstance(row, Row) else row
    pack = data["pack"] or {}
    return UploadState(
        upload_id=data["upload_id"],
        space_id=data["space_id"],
        editor_id=data["editor_id"],
        status=data["status"],
        stage=data["stage"],
        uploaded_at=data["uploaded_at"],
        first_seen_at=data["first_seen_at"],
        status_at=data["status_at"],
        original_key=data["original_key"],
        terminal_event_type=data["terminal_event_type"],
        reasons=tuple(data["reasons"]),
        editor_messages=tuple(data["editor_messages"]),
        checks=tuple(data["checks"]),
        warnings=tuple(data["warnings"]),
        pack=_pack_from(pack),
        failure=Failure(**data["failure"]) if data["failure"] else None,
    )


def _pack_from(data: dict[str, Any]) -> tuple[tuple[str, AssetRef], ...]:
    """Stored pack entries: the named assets in PACK_ASSETS order, then alternates as stored."""
    names = [*status.PACK_ASSETS, *(n for n in data if n.startswith(status.ALTERNATE_PREFIX))]
    return tuple((name, _asset_from(data[name])) for name in names if name in data)


def avatar_to_json(avatar: CurrentAvatar) -> dict[str, Any]:
    return {
        "kind": avatar.kind,
        "avatar_id": avatar.avatar_id,
        "upload_id": avatar.upload_id,
        "assets": {name: _asset_json(ref) for name, ref in avatar.assets},
    }


def avatar_from_json(data: dict[str, Any] | None) -> CurrentAvatar:
    if not data:
        return status.DEFAULT_AVATAR
    assets = data.get("assets") or {}
    return CurrentAvatar(
        kind=data["kind"],
        avatar_id=data.get("avatar_id"),
        upload_id=data.get("upload_id"),
        assets=_pack_from(assets),
    )


# ---- the store --------------------------------------------------------------------------------


class StatusStore:
    def __init__(self, engine: AsyncEngine, *, support_url: str) -> None:
        self.engine = engine
        self.support_url = support_url
        self._listeners: list[ChangeListener] = []

    @classmethod
    def from_url(cls, url: str, *, support_url: str) -> StatusStore:
        return cls(create_engine_for(url), support_url=support_url)

    async def close(self) -> None:
        await self.engine.dispose()

    def add_listener(self, listener: ChangeListener) -> None:
        """Called (synchronously, after commit) for every change this process writes."""
        self._listeners.append(listener)

    def _publish(self, change: StatusChange) -> None:
        for listener in self._listeners:
            listener(change)

    @property
    def _insert(self) -> Callable[..., Any]:
        return pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    @contextlib.asynccontextmanager
    async def _locked_space(self, space_id: str) -> AsyncIterator[tuple[AsyncConnection, dict[str, Any]]]:
        """A transaction holding the space row's lock; yields the row (created if missing)."""
        async with self.engine.begin() as conn:
            now = utcnow()
            await conn.execute(
                self._insert(spaces)
                .values(space_id=space_id, version=0, updated_at=now)
                .on_conflict_do_nothing(index_elements=["space_id"])
            )
            row = (await conn.execute(select(spaces).where(spaces.c.space_id == space_id).with_for_update())).one()
            yield conn, dict(row._mapping)

    async def _latest(self, conn: AsyncConnection, space_id: str, *, ready_only: bool) -> UploadState | None:
        query = select(uploads).where(uploads.c.space_id == space_id)
        if ready_only:
            query = query.where(uploads.c.status == "ready")
        query = query.order_by(uploads.c.order_at.desc(), uploads.c.upload_id.desc()).limit(1)
        row = (await conn.execute(query)).first()
        return upload_from_row(row) if row else None

    async def _refresh_space(
        self, conn: AsyncConnection, space: dict[str, Any], *, force_bump: bool, **updates: Any
    ) -> int | None:
        """Re-evaluate the space-level rule; write and bump the version when anything changed."""
        merged = {**space, **updates}
        latest = await self._latest(conn, space["space_id"], ready_only=False)
        newest_ready = await self._latest(conn, space["space_id"], ready_only=True)
        pick = (
            Pick(avatar_id=merged["picked_avatar_id"], picked_at=merged["picked_at"])
            if merged["picked_avatar_id"]
            else None
        )
        new_fields = {
            **updates,
            "latest_upload_id": latest.upload_id if latest else None,
            "avatar": avatar_to_json(status.choose_avatar(newest_ready, pick)),
        }
        changed = force_bump or any(space.get(k) != v for k, v in new_fields.items())
        if not changed:
            return None
        version = space["version"] + 1
        await conn.execute(
            spaces.update()
            .where(spaces.c.space_id == space["space_id"])
            .values(**new_fields, version=version, updated_at=utcnow())
        )
        return version

    async def apply(self, event: Envelope) -> StatusChange | None:
        """Apply one event idempotently; returns the change, or None if it changed nothing."""
        upload_id = str(event.upload_id)
        async with self._locked_space(event.space_id) as (conn, space):
            now = utcnow()
            recorded = await conn.execute(
                self._insert(applied_events)
                .values(
                    event_id=str(event.event_id),
                    event_type=event.event_type,
                    upload_id=upload_id,
                    space_id=event.space_id,
                    occurred_at=event.occurred_at,
                    applied_at=now,
                )
                .on_conflict_do_nothing(index_elements=["event_id"])
            )
            if recorded.rowcount == 0:
                return None  # redelivery of an event already applied
            row = (
                await conn.execute(select(uploads).where(uploads.c.upload_id == upload_id).with_for_update())
            ).first()
            before = upload_from_row(row) if row else None
            after = status.apply_event(before, event)
            if after == before:
                return None
            values = upload_to_row(after, now)
            await conn.execute(
                self._insert(uploads)
                .values(**values)
                .on_conflict_do_update(
                    index_elements=["upload_id"],
                    set_={k: v for k, v in values.items() if k != "upload_id"},
                )
            )
            version = await self._refresh_space(conn, space, force_bump=True)
        assert version is not None
        change = StatusChange(
            space_id=event.space_id,
            version=version,
            upload_id=upload_id,
            upload_status=after.status,
            cause=event.event_type,
        )
        self._publish(change)
        return change

    async def prune_applied_events(self, applied_before: datetime, *, batch_size: int = 5000) -> int:
        """Delete the idempotency records of events applied before ``applied_before``; returns how many.

        In batches, each its own short transaction, so a large backlog never holds locks (or,
        on SQLite, the single writer slot) for long. Safe on any number of replicas at once.
        """
        deleted = 0
        while True:
            oldest = (
                select(applied_events.c.event_id)
                .where(applied_events.c.applied_at < applied_before)
                .limit(batch_size)
                .scalar_subquery()
            )
            async with self.engine.begin() as conn:
                result = await conn.execute(delete(applied_events).where(applied_events.c.event_id.in_(oldest)))
            deleted += result.rowcount
            if result.rowcount < batch_size:
                return deleted

    async def dismiss_prompt(self, space_id: str) -> StatusChange | None:
        """The editor dismissed the prompt of the space's latest upload."""
        async with self._locked_space(space_id) as (conn, space):
            latest_id = space["latest_upload_id"]
            if not latest_id or space["prompt_dismissed_upload_id"] == latest_id:
                return None
            version = await self._refresh_space(
                conn, space, force_bump=True, prompt_dismissed_upload_id=space["latest_upload_id"]
            )
        assert version is not None
        change = StatusChange(space_id, version, space["latest_upload_id"], None, "prompt.dismissed")
        self._publish(change)
        return change

    async def choose_pregenerated(self, space_id: str, avatar_id: str) -> StatusChange:
        """The editor picked a pre-generated avatar: it becomes current and clears the prompt."""
        async with self._locked_space(space_id) as (conn, space):
            version = await self._refresh_space(
                conn,
                space,
                force_bump=True,
                picked_avatar_id=avatar_id,
                picked_at=utcnow(),
                prompt_dismissed_upload_id=space["latest_upload_id"],
            )
        assert version is not None
        change = StatusChange(space_id, version, space["latest_upload_id"], None, "avatar.chosen")
        self._publish(change)
        return change

    # ---- reads ---------------------------------------------------------------------------

    async def space_version(self, space_id: str) -> int:
        async with self.engine.connect() as conn:
            value = (
                await conn.execute(select(spaces.c.version).where(spaces.c.space_id == space_id))
            ).scalar_one_or_none()
        return int(value or 0)

    async def view(self, space_id: str) -> tuple[int, SpaceView]:
        """The space's version and what its editors see (an empty view for an unknown space)."""
        async with self.engine.connect() as conn:
            space = (await conn.execute(select(spaces).where(spaces.c.space_id == space_id))).first()
            if space is None:
                return 0, status.SpaceView(space_id, None, status.DEFAULT_AVATAR, None)
            latest = None
            if space.latest_upload_id:
                row = (await conn.execute(select(uploads).where(uploads.c.upload_id == space.latest_upload_id))).first()
                latest = upload_from_row(row) if row else None
        view = SpaceView(
            space_id=space_id,
            latest=latest,
            avatar=avatar_from_json(space.avatar),
            prompt=status.build_prompt(latest, space.prompt_dismissed_upload_id, support_url=self.support_url),
            hints=status.build_hints(latest),
        )
        return int(space.version), view

    async def current_avatar(self, space_id: str) -> CurrentAvatar:
        async with self.engine.connect() as conn:
            value = (
                await conn.execute(select(spaces.c.avatar).where(spaces.c.space_id == space_id))
            ).scalar_one_or_none()
        return avatar_from_json(value)

    async def uploads_page(
        self, space_id: str, *, limit: int, before: tuple[datetime, str] | None = None
    ) -> list[UploadState]:
        """Uploads newest first (keyset pagination on (order_at, upload_id))."""
        query = select(uploads).where(uploads.c.space_id == space_id)
        if before is not None:
            order_at, upload_id = before
            query = query.where(
                (uploads.c.order_at < order_at) | ((uploads.c.order_at == order_at) & (uploads.c.upload_id < upload_id))
            )
        query = query.order_by(uploads.c.order_at.desc(), uploads.c.upload_id.desc()).limit(limit)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [upload_from_row(r) for r in rows]

    async def upload(self, upload_id: str) -> UploadState | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(uploads).where(uploads.c.upload_id == upload_id))).first()
        return upload_from_row(row) if row else None
