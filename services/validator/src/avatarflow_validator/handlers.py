"""Messaging layer: image.uploaded -> face.validated | face.rejected (thin; the work is in core)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from avatarflow_contracts import (
    AvatarFailed,
    Envelope,
    FaceRejected,
    FaceValidated,
    ImageUploaded,
    editor_message,
)
from avatarflow_runtime.failures import failure_event
from avatarflow_runtime.storage import ObjectStore
from prometheus_client import Counter

from .core import ValidationOutcome, Validator
from .settings import ValidatorSettings

DECISIONS = Counter("avatarflow_validator_decisions_total", "Validation decisions", ["decision"])
REJECTIONS = Counter(
    "avatarflow_validator_rejection_reasons_total",
    "Reason codes of rejected uploads (one per reason)",
    ["reason"],
)
WARNINGS = Counter("avatarflow_validator_warnings_total", "Warnings raised on uploads", ["warning"])


class ValidationStage:
    def __init__(self, store: ObjectStore, settings: ValidatorSettings, factory: Callable[[], Validator]) -> None:
        """``factory`` builds the validator (with its models) on the stage's own thread at start."""
        self.store = store
        self.settings = settings
        self.factory = factory
        # MediaPipe graphs are not thread-safe: one worker thread owns the validator.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="validator")
        self.validator: Validator | None = None

    async def start(self) -> None:
        self.validator = await asyncio.get_running_loop().run_in_executor(self.executor, self.factory)

    async def stop(self) -> None:
        if self.validator is not None:
            await asyncio.get_running_loop().run_in_executor(self.executor, self.validator.close)
        self.executor.shutdown(wait=True)

    async def validate(self, data: bytes) -> ValidationOutcome:
        assert self.validator is not None, "stage not started"
        return await asyncio.get_running_loop().run_in_executor(self.executor, self.validator.validate_bytes, data)

    async def handle(self, event: ImageUploaded) -> list[Envelope]:
        data = await self.store.get_bytes(event.original, max_bytes=self.settings.ingest_max_upload_bytes)
        outcome = await self.validate(data)
        DECISIONS.labels("accept" if outcome.accepted else "reject").inc()
        for reason in outcome.reasons:
            REJECTIONS.labels(reason.value).inc()
        for warning in outcome.warnings:
            WARNINGS.labels(warning.value).inc()
        return [outcome_event(event, outcome)]

    @staticmethod
    def on_failure(event: ImageUploaded, error: BaseException, attempts: int) -> AvatarFailed:
        return failure_event(event, "validator", error, attempts)


def outcome_event(event: ImageUploaded, outcome: ValidationOutcome) -> Envelope:
    if outcome.accepted:
        assert outcome.face is not None
        return event.follow_up(
            FaceValidated,
            original=event.original,
            face=outcome.face,
            checks=outcome.checks,
            warnings=outcome.warnings,
            illustration_hint=outcome.illustration_hint,
        )
    return event.follow_up(
        FaceRejected,
        original=event.original,
        reasons=outcome.reasons,
        editor_messages=[editor_message(code) for code in outcome.reasons],
        checks=outcome.checks,
        warnings=outcome.warnings,
    )
