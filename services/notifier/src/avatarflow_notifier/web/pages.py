"""The editor page and the end-user page (HTML from ``static/``, with their config and CSP).

The pages themselves are public; the editor page's API calls carry the editor token from the URL
fragment.
"""

from __future__ import annotations

import html
import json
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from ..settings import NotifierSettings
from .deps import Settings

router = APIRouter(tags=["pages"])
PAGE_DIR = resources.files("avatarflow_notifier") / "static"
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self' {ingest}; frame-ancestors 'none'; base-uri 'none'"
)


def render_page(settings: NotifierSettings, name: str, space_id: str, *, uploads: bool) -> HTMLResponse:
    # Only the editor page uploads, so only it learns the ingest origin; the end-user page's config
    # and CSP name no other service (it talks to this origin alone).
    ingest_origin = settings.notifier_ingest_public_url.rstrip("/") if uploads else ""
    config = {"spaceId": space_id, **({"ingestBaseUrl": ingest_origin} if uploads else {})}
    # JSON in a non-executed <script> block; '<' escaped so it cannot close the element.
    config_json = json.dumps(config).replace("<", "\\u003c")
    body = (PAGE_DIR / name).read_text().replace("{{CONFIG_JSON}}", config_json)
    body = body.replace("{{SPACE_ID}}", html.escape(space_id))
    headers = {
        "content-security-policy": PAGE_CSP.format(ingest=ingest_origin).replace(" ;", ";"),
        "referrer-policy": "no-referrer",
        "x-content-type-options": "nosniff",
        "cache-control": "no-store",
    }
    return HTMLResponse(body, headers=headers)


@router.get("/editor/{space_id}", response_class=HTMLResponse, summary="Space editor page")
async def editor_page(space_id: str, settings: Settings) -> HTMLResponse:
    return render_page(settings, "editor.html", space_id, uploads=True)


@router.get("/spaces/{space_id}", response_class=HTMLResponse, summary="End-user view")
async def space_page(space_id: str, settings: Settings) -> HTMLResponse:
    return render_page(settings, "space.html", space_id, uploads=False)
