"""The notifier's HTTP API as routers; the operations router (``/healthz``, ``/readyz``,
``/metrics``) is the runtime's, added by the app's wiring."""

from __future__ import annotations

from fastapi import APIRouter

from . import assets, editor, pages, public

ROUTERS: list[APIRouter] = [editor.router, public.router, assets.router, pages.router]
