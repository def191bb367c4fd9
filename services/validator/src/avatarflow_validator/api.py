"""Synchronous pre-check: the same decision as the asynchronous path, before the upload is sent."""

from typing import Annotated

from avatarflow_contracts import CheckResult, ReasonCode, WarningCode, editor_message
from avatarflow_imaging.admission import Refusal, admit
from avatarflow_runtime.auth import Principal
from avatarflow_runtime.http_auth import editor_of
from fastapi import APIRouter, Depends, File, Path, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from .handlers import ValidationStage
from .settings import ValidatorSettings

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


def build_router(stage: ValidationStage, settings: ValidatorSettings) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["pre-check"])

    def editor(request: Request, space_id: SpaceId) -> Principal:
        return editor_of(request, settings, space_id)

    @router.post(
        "/spaces/{space_id}/precheck",
        response_model=PrecheckResult,
        responses={code: {"model": ErrorBody} for code in (400, 401, 403, 413, 415, 422)},
        summary="Check an image before uploading it: same decision, reasons and scores as the pipeline",
    )
    async def precheck(
        space_id: SpaceId,
        principal: Annotated[Principal, Depends(editor)],
        file: Annotated[UploadFile, File()],
    ) -> JSONResponse:
        data = await file.read(settings.ingest_max_upload_bytes + 1)
        try:
            admit(data, **settings.admission_limits())
        except Refusal as exc:
            return JSONResponse({"error": exc.code, "detail": exc.message}, status_code=exc.status_code)
        outcome = await stage.validate(data)
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
