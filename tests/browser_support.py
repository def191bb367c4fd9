"""Headless Debian Chromium for the browser tests: one set of flags and one way to start and stop it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.async_api import Browser

CHROMIUM = Path("/usr/bin/chromium")
# No sandbox (CI runs as root), no GPU, and nothing that reaches the network on its own.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


@asynccontextmanager
async def chromium(*extra_args: str) -> AsyncIterator[Browser]:
    """A started browser, closed on the way out. A missing browser fails the test: `./dev test` installs it,
    so a skip here would hide that the browser suite never ran."""
    if not CHROMIUM.exists():
        pytest.fail("Debian chromium is required for the browser tests (./dev test installs it)")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, *extra_args])
        try:
            yield browser
        finally:
            await browser.close()
