"""Find Debian's Chromium and start it headless: for the browser tests and exercise 04.3's checks.

Playwright's own browser download does not work everywhere the course runs, so the course drives
the system's ``chromium`` through Playwright's ``executable_path`` (``COURSE_CHROMIUM`` names
another binary). The flags keep it quiet and deterministic: no GPU, no updates or sync in the
background, no QUIC to 127.0.0.1. Each launch gets a fresh temporary profile from Playwright.

This is the one place that knows how to find and start Chromium: ``doctor`` and the tests use it.
Playwright is imported only when a browser is launched: the server never needs it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.async_api import Browser

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
"""The names a Chromium goes by on PATH, in the order the course tries them."""

CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)

INSTALL = "install Debian's `chromium` (`sudo apt-get install chromium`) or set COURSE_CHROMIUM"


class ChromiumMissing(RuntimeError):
    """No Chromium (or no Playwright) here: the message says what to install."""


def find_chromium(candidates: Sequence[str] = BROWSERS) -> str | None:
    """The Chromium binary to drive: ``COURSE_CHROMIUM``, else the first of ``candidates``."""
    named = os.environ.get("COURSE_CHROMIUM")
    if named:
        return named
    for name in candidates:
        if path := shutil.which(name):
            return path
    return None


@contextlib.asynccontextmanager
async def headless_chromium(timeout: float = 20) -> AsyncIterator[Browser]:
    """A headless Chromium driven by Playwright's async API, closed on the way out.

    Raises ``ChromiumMissing`` when there is no browser or no Playwright, and when the browser
    does not start (a sandbox that forbids it, say): the message says which.
    """
    executable = find_chromium()
    if executable is None:
        raise ChromiumMissing(f"no Chromium on this machine: {INSTALL}")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        raise ChromiumMissing("Playwright is not installed: pip install playwright") from None
    async with contextlib.AsyncExitStack() as stack:
        try:
            playwright = await stack.enter_async_context(async_playwright())
            browser = await playwright.chromium.launch(
                executable_path=executable,
                headless=True,
                args=list(CHROMIUM_ARGS),
                timeout=timeout * 1000,
            )
        except Exception as exc:  # Playwright's driver or the browser: either way, no browser
            said = str(exc).strip().splitlines()
            raise ChromiumMissing(
                f"{executable} did not start ({said[0] if said else type(exc).__name__})"
            ) from None
        stack.push_async_callback(browser.close)
        yield browser
