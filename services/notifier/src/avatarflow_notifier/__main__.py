"""``python -m avatarflow_notifier``: the HTTP API and the event consumers in one process."""

from __future__ import annotations

from avatarflow_runtime.service import serve

from .app import create_service_app
from .settings import NotifierSettings

settings = NotifierSettings()
serve(create_service_app(settings), settings)
