"""Error classes that drive the retry / dead-letter / avatar.failed decisions."""

from __future__ import annotations


class TransientError(Exception):
    """A fault that may go away on retry (storage or broker unavailable, timeout)."""


class PermanentError(Exception):
    """Processing can never succeed for this input; do not retry.

    ``code`` is a short machine code for avatar.failed; ``editor_message`` is what the editor sees.
    """

    def __init__(self, code: str, message: str, *, editor_message: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.editor_message = editor_message or (
            "We couldn't finish making your avatar from this image. Please try again, or upload a different image."
        )


class CorruptObject(PermanentError):
    """A stored object does not match the sha256 its event promised."""

    def __init__(self, message: str) -> None:
        super().__init__("corrupt_object", message)


class RecordTooLarge(PermanentError):
    """A record the producer or broker refuses for its size: the same bytes will never fit."""

    def __init__(self, message: str) -> None:
        super().__init__("record_too_large", message)
