"""The status store on PostgreSQL and SQLite: idempotent upserts, latest-upload-wins, concurrency."""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from datetime import timedelta

import pytest
import structlog.testing
from avatarflow_contracts import ReasonCode, WarningCode
from avatarflow_notifier import handlers
from avatarflow_notifier.adapters.store import StatusStore
from avatarflow_notifier.adapters.store import utcnow as status_store_now
from avatarflow_notifier.core import status
from avatarflow_notifier.core.status import fold_events
from avatarflow_notifier.handlers import UnsupportedEvent, apply_event
from notifier_factories import T0, Run

SUPPORT = "https://support.example/processing"


def new_space() -> str:
    return f"space-{uuid.uuid4().hex[:12]}"


async def test_pipeline_run_reaches_ready_and_sets_the_avatar(store):
    space = new_space()
    run = Run(space, T0)
    changes = [await apply_event(store, e) for e in (run.uploaded(), run.validated(), run.matted(), run.rendered())]
    assert [c.upload_status for c in changes] == ["processing"] * 3 + ["ready"]
    assert [c.version for c in changes] == [1, 2, 3, 4]
    version, view = await store.view(space)
    assert version == 4
    assert view.latest.status == "ready"
    assert view.avatar.kind == "custom" and view.avatar.upload_id == str(run.upload_id)
    assert dict(view.avatar.assets)["idle_loop"].key.endswith("idle.webm")
    assert (await store.current_avatar(space)).upload_id == str(run.upload_id)


async def test_redelivered_and_stale_events_change_nothing(store):
    space = new_space()
    run = Run(space, T0)
    uploaded, matted = run.uploaded(), run.matted()
    assert await apply_event(store, uploaded) is not None
    assert await apply_event(store, matted) is not None
    assert await apply_event(store, uploaded) is None  # same event_id: recorded, skipped
    assert await apply_event(store, run.validated()) is None  # stale stage: new id, no change
    assert (await store.upload(str(run.upload_id))).stage == "matted"
    assert await store.space_version(space) == 2


async def test_terminal_before_processing_stays_terminal(store):
    space = new_space()
    run = Run(space, T0)
    await apply_event(store, run.rejected((ReasonCode.BLURRY, ReasonCode.NO_FACE)))
    for late in (run.uploaded(), run.validated()):
        await apply_event(store, late)
    state = await store.upload(str(run.upload_id))
    assert state.status == "rejected" and state.uploaded_at == T0
    assert state.reasons == ("no_face", "blurry")
    _, view = await store.view(space)
    assert view.prompt is not None and view.prompt.reasons[0].code == "no_face"


async def test_older_upload_finishing_late_never_overwrites_the_newer(store):
    space = new_space()
    older, newer = Run(space, T0), Run(space, T0 + timedelta(minutes=2))
    for event in (older.uploaded(), newer.uploaded(), newer.rejected(), older.rendered()):
        await apply_event(store, event)
    _, view = await store.view(space)
    assert view.latest.upload_id == str(newer.upload_id) and view.latest.status == "rejected"
    assert view.prompt.upload_id == str(newer.upload_id)


async def test_dismiss_and_choose_pregenerated(store):
    space = new_space()
    run = Run(space, T0)
    await apply_event(store, run.uploaded())
    await apply_event(store, run.failed("retry_upload"))
    _, view = await store.view(space)
    assert view.prompt.kind == "failed"
    dismissed = await store.dismiss_prompt(space)
    assert dismissed is not None and dismissed.cause == "prompt.dismissed"
    assert await store.dismiss_prompt(space) is None  # already dismissed
    _, view = await store.view(space)
    assert view.prompt is None

    second = Run(space, T0 + timedelta(minutes=1))
    await apply_event(store, second.uploaded())
    await apply_event(store, second.rejected())
    _, view = await store.view(space)
    assert view.prompt.upload_id == str(second.upload_id)  # a new upload raises a new prompt
    await store.choose_pregenerated(space, "basil")
    _, view = await store.view(space)
    assert view.prompt is None
    assert view.avatar.kind == "pregenerated" and view.avatar.avatar_id == "basil"


async def test_uploads_are_paginated_newest_first(store):
    space = new_space()
    runs = [Run(space, T0 + timedelta(minutes=i)) for i in range(5)]
    for run in runs:
        await apply_event(store, run.uploaded())
    page1 = await store.uploads_page(space, limit=2)
    page2 = await store.uploads_page(space, limit=2, before=page1[-1].order_key)
    page3 = await store.uploads_page(space, limit=2, before=page2[-1].order_key)
    got = [u.upload_id for u in page1 + page2 + page3]
    assert got == [str(r.upload_id) for r in reversed(runs)]


async def test_changes_are_published_to_listeners(store):
    space = new_space()
    seen = []
    store.add_listener(seen.append)
    run = Run(space, T0)
    await apply_event(store, run.uploaded())
    await apply_event(store, run.uploaded())
    assert [(c.space_id, c.version, c.cause) for c in seen] == [(space, 1, "image.uploaded")]


async def test_upload_id_reused_in_another_space_is_poison(store):
    run = Run(new_space(), T0)
    await apply_event(store, run.uploaded())
    hijack = Run(new_space(), T0, upload_id=run.upload_id)
    with pytest.raises(UnsupportedEvent):
        await apply_event(store, hijack.rendered())
    assert (await store.upload(str(run.upload_id))).space_id == run.space_id


def test_the_consumer_topics_cover_every_event_the_notifier_handles():
    assert {t.value for t in handlers.NOTIFIER_TOPICS} == {cls.EVENT_TYPE for cls in handlers.HANDLED_EVENTS}


async def test_concurrent_consumers_converge_to_the_pure_result(db_url):
    """Four consumers (own engines = own connections) apply shuffled, duplicated events at once."""
    space = new_space()
    events = []
    for i, terminal in enumerate(["rendered", "rejected", "failed", "rendered", None]):
        run = Run(space, T0 + timedelta(minutes=i % 3))  # some equal upload times: tie-break
        events += [run.uploaded(), run.validated((WarningCode.BUSY_BACKGROUND,))]
        if terminal == "rendered":
            events += [run.matted(), run.rendered()]
        elif terminal:
            events.append(getattr(run, terminal)())
    deliveries = events * 2
    random.Random(7).shuffle(deliveries)
    consumers = [StatusStore.from_url(db_url, support_url=SUPPORT) for _ in range(4)]
    try:
        await asyncio.gather(
            *(
                asyncio.gather(*(apply_event(consumer, e) for e in deliveries[i::4]))
                for i, consumer in enumerate(consumers)
            )
        )
        expected = fold_events(events)
        for upload_id, state in expected.items():
            assert await consumers[0].upload(upload_id) == state
        _, view = await consumers[0].view(space)
        pure = status.space_view(space, expected.values(), pick=None, dismissed_upload_id=None, support_url=SUPPORT)
        assert view == pure
        # Exactly one version per distinct state change, no matter how the work interleaved.
        assert await consumers[0].space_version(space) >= len(expected)
    finally:
        for consumer in consumers:
            await consumer.close()


async def applied_records(store: StatusStore, upload_id: str) -> int:
    from avatarflow_notifier.adapters.models import applied_events
    from sqlalchemy import func, select

    async with store.engine.connect() as conn:
        query = select(func.count()).where(applied_events.c.upload_id == upload_id)
        return int((await conn.execute(query)).scalar_one())


async def test_pruning_old_idempotency_records_keeps_new_ones_and_changes_no_status(store):
    space = new_space()
    old, new = Run(space, T0), Run(space, T0 + timedelta(minutes=1))
    old_events = [old.uploaded(), old.validated(), old.matted(), old.rendered()]
    for event in old_events:
        await apply_event(store, event)
    cutoff = status_store_now()
    new_events = [new.uploaded(), new.rejected()]
    for event in new_events:
        await apply_event(store, event)
    before = await store.view(space)

    deleted = await store.prune_applied_events(cutoff, batch_size=1)  # one row per batch: the loop
    assert deleted >= len(old_events)
    assert await applied_records(store, str(old.upload_id)) == 0
    assert await applied_records(store, str(new.upload_id)) == len(new_events)
    # A redelivery of a pruned event is absorbed by the reducer: nothing changes, no version bump.
    for event in old_events:
        assert await apply_event(store, event) is None
    assert await store.view(space) == before


async def test_the_service_prunes_expired_records_in_the_background(store):
    from avatarflow_notifier.housekeeping import prune_forever
    from avatarflow_notifier.settings import NotifierSettings

    run = Run(new_space(), T0)
    await apply_event(store, run.uploaded())
    assert await applied_records(store, str(run.upload_id)) == 1
    # Retention of ~0.1 s, pruned every 0.05 s.
    settings = NotifierSettings(
        notifier_applied_events_retention_days=0.1 / 86400, notifier_prune_interval_s=0.05, database_url="sqlite://"
    )
    # Captured: structlog's global output may still point at an earlier test's closed stdout.
    with structlog.testing.capture_logs() as logs:
        pruner = asyncio.create_task(prune_forever(store, settings))
        try:
            for _ in range(200):
                if await applied_records(store, str(run.upload_id)) == 0:
                    break
                await asyncio.sleep(0.05)
            assert await applied_records(store, str(run.upload_id)) == 0
        finally:
            pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pruner
    assert any(entry["event"] == "applied_events_pruned" and entry["deleted"] >= 1 for entry in logs)
    assert not any(entry["event"] == "applied_events_prune_failed" for entry in logs)
