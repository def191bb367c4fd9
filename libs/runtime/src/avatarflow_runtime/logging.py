"""structlog JSON logs with upload_id / space_id / trace_id (the current trace) per message, secrets scrubbed."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

from .tracing import add_trace_context

# A JWT (three base64url segments) or a bearer credential must never reach a log line.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}")
_BEARER = re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/=-]+")
_SECRET_KEYS = {"authorization", "token", "access_token", "jwt", "password", "secret", "jwt_secret"}


# A token in a query string (an SSE client's ``?access_token=``), whatever its shape.
_QUERY_TOKEN = re.compile(r"(?i)(access_token=)[^&\s\"]*")


def _scrub_value(value: Any) -> Any:
    if isinstance(value, str):
        value = _QUERY_TOKEN.sub(r"\1[redacted]", value)
        return _BEARER.sub("Bearer [redacted]", _JWT.sub("[redacted-jwt]", value))
    return value


def scrub_secrets(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    for key in list(event_dict):
        if key.lower() in _SECRET_KEYS:
            event_dict[key] = "[redacted]"
        else:
            event_dict[key] = _scrub_value(event_dict[key])
    return event_dict


class _ScrubbingFilter(logging.Filter):
    """Scrubs stdlib log records too (uvicorn access logs carry query strings)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = _scrub_value(record.msg)
        if record.args:
            record.args = tuple(_scrub_value(a) for a in record.args) if isinstance(record.args, tuple) else record.args
        return True


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at write time, not at configure time: a process that swaps
    stderr later (a test runner's capture, a daemon redirecting it) never leaves the loggers holding a
    closed file."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(service: str, level: str = "INFO", json_output: bool = True) -> None:
    """One log format for our lines and library lines alike.

    structlog lines and stdlib records (aiokafka, uvicorn, FastStream, botocore) go through the same
    processors and renderer (``structlog.stdlib.ProcessorFormatter``), so a library message with quotes,
    backslashes or newlines is still one valid JSON object per line.
    """
    renderer: Any = structlog.processors.JSONRenderer() if json_output else structlog.dev.ConsoleRenderer()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        add_trace_context,  # the current OpenTelemetry trace/span ids (a consumed record's, a request's)
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        scrub_secrets,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        # _CurrentStderr is a write/flush proxy, not a full TextIO (all PrintLogger uses of it).
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.bind_contextvars(service=service)
    handler = logging.StreamHandler(_CurrentStderr())
    handler.addFilter(_ScrubbingFilter())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "botocore", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    for name in ("uvicorn", "uvicorn.access", "uvicorn.error"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    # structlog.get_logger is typed Any: it returns whatever wrapper configure_logging() installed.
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger


def security_event(kind: str, **fields: Any) -> None:
    """One structured line per security-relevant outcome (401, 403, 429, presign, confirm), always
    ``event="security_event"`` with a ``kind``, so a log pipeline can alert on them. Never pass a
    token: values are scrubbed anyway (:func:`scrub_secrets`)."""
    level = "info" if kind in {"presign_granted", "upload_confirmed"} else "warning"
    getattr(get_logger("avatarflow.security"), level)("security_event", kind=kind, **fields)
