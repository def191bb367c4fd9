"""The avatar.failed event a stage publishes when it gives up on an upload (same wording everywhere)."""

from __future__ import annotations

from avatarflow_contracts import AvatarFailed, Envelope

from .errors import PermanentError


def failure_event(event: Envelope, stage: str, error: BaseException, attempts: int) -> AvatarFailed:
    """avatar.failed for a stage that gave up; shared wording for every stage."""
    if isinstance(error, PermanentError):
        code, message = error.code, error.editor_message
        advice = "upload_different_image" if code in {"object_too_large", "unprocessable_image"} else "retry_upload"
    else:
        code = "processing_error"
        message = "Something went wrong on our side while making your avatar. Please upload the image again."
        advice = "retry_upload"
    return event.follow_up(
        AvatarFailed,
        stage=stage,
        error_code=code[:64],
        error=f"{type(error).__name__}: {error}"[:2000],
        editor_message=message,
        retry_advice=advice,
        attempts=attempts,
    )
