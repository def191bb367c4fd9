"""Synchronous pre-check: the same decision as the asynchronous path, before the upload is sent."""

from typing import Annotated

from avatarflow_contracts import CheckResult, ReasonCode, WarningCode, editor_message
from avatarflow_imaging.admission import Refusal, admit
from avatarflow_runtime.auth import Principal
from avatarflow_runtime.http_auth import editor_of
from avatarflow_runtime.logging import get_logger, security_event
from avatarflow_runtime.ratelimit import RateLimiter
from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.datastructures import UploadFile as StarletteUploadFile

from .handlers import ValidationStage
from .precheck import PrecheckBusy, PrecheckPool
from .settings import ValidatorSettings

log = get_logger("avatarflow.validator.precheck")
SpaceId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@-]+$")]


class PrecheckResult(BaseModel):
    decision: str
    reasons: list[ReasonCode]
    warnings: list[WarningCode]
    editor_messages: list[str]
    warning_messages: list[str]
    scores: dict[str, float]
    checks: list[CheckResult]


class ErrorBody(BaseModel):
    error: str
    detail: str


def build_router(stage: ValidationStage, pool: PrecheckPool, settings: ValidatorSettings) -> APIRouter:
    """``stage`` is the pipeline's; pre-checks run in ``pool`` (their own threads and validators)."""
    del stage  # the pipeline's validator is never lent to the public endpoint
    router = APIRouter(prefix="/v1", tags=["pre-check"])
    limiter = RateLimiter(settings.validator_precheck_rate_limit_per_minute)

    def editor(request: Request, space_id: SpaceId) -> Principal:
        return editor_of(request, settings, space_id)

    def error(status: int, code: str, detail: str, retry_after: float | None = None) -> JSONResponse:
        headers = {"Retry-After": str(max(1, int(retry_after + 0.999)))} if retry_after is not None else None
        return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)

    @router.post(
        "/spaces/{space_id}/precheck",
        response_model=PrecheckResult,
        responses={code: {"model": ErrorBody} for code in (400, 401, 403, 413, 415, 422, 429, 503)},
        summary="Check an image before uploading it: same decision, reasons and scores as the pipeline",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["file"],
                            "properties": {"file": {"type": "string", "format": "binary"}},
                        }
                    }
                },
            }
        },
    )
    async def precheck(
        space_id: SpaceId, request: Request, principal: Annotated[Principal, Depends(editor)]
    ) -> JSONResponse:
        # Rate limit and capacity first: a refused request's body is never read or parsed.
        allowed, retry_after = limiter.allow(principal.subject)
        if not allowed:
            security_event("rate_limited", status=429, subject=principal.subject, space_id=space_id, route="precheck")
            return error(429, "rate_limited", "Too many pre-checks; please wait a moment.", retry_after)
        try:
            async with pool.reserve():
                return await run_precheck(request)
        except PrecheckBusy:
            log.warning("precheck_busy", capacity=pool.capacity)
            return error(503, "temporarily_unavailable", "The pre-check is busy; please try again shortly.", 2)

    async def run_precheck(request: Request) -> JSONResponse:
        async with request.form(max_files=1, max_fields=4) as form:
            file = form.get("file")
            if not isinstance(file, StarletteUploadFile):
                return error(422, "invalid_request", "body.file: a multipart file field named 'file' is required")
            data = await file.read(settings.ingest_max_upload_bytes + 1)
        try:
            admit(data, **settings.admission_limits())
        except Refusal as exc:
            return error(exc.status_code, exc.code, exc.message)
        outcome = await pool.validate(data)
        result = PrecheckResult(
            decision="accept" if outcome.accepted else "reject",
            reasons=outcome.reasons,
            warnings=outcome.warnings,
            editor_messages=[editor_message(c) for c in outcome.reasons],
            warning_messages=[editor_message(w) for w in outcome.warnings],
            scores=outcome.scores,
            checks=outcome.checks,
        )
        return JSONResponse(result.model_dump(mode="json"))

    return router
