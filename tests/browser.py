"""Headless Chromium for the browser tests, driven by Playwright's Python API.

Playwright's own browser download does not work here, so the tests launch Debian's ``chromium``
through ``executable_path`` (``COURSE_CHROMIUM`` names another binary), with the package's flags
(``course_server.tools.chromium``, which exercise 04.3's checks use too). Without one the browser
tests skip, except under CI (``CI=true``), where a missing browser is a broken build and fails.
One browser serves a whole test module; every test gets a fresh context (its own cookies,
storage and network state) from ``browser_context``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlencode

import pytest
from conftest import missing_tool, wait_timeout
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from course_server import RunningServer
from course_server.tools.chromium import CHROMIUM_ARGS, find_chromium


def chromium_path() -> str:
    """The Chromium binary to drive; skips the test without one (fails it under CI)."""
    path = find_chromium()
    if path:
        return path
    missing_tool(
        "no Chromium: install Debian's `chromium` (or set COURSE_CHROMIUM) for browser tests"
    )


def ms(seconds: float) -> float:
    """Playwright counts in milliseconds; the suite's deadlines are seconds, scaled."""
    return wait_timeout(seconds) * 1000


expect.set_options(timeout=ms(5))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium; Playwright gives each launch a fresh temporary profile directory."""
    executable = chromium_path()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=list(CHROMIUM_ARGS), timeout=ms(20)
        )
        try:
            yield launched
        finally:
            launched.close()


@contextmanager
def bounded_context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser context (cookies of its own) whose every wait is bounded."""
    context = browser.new_context()
    context.set_default_timeout(ms(5))
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def browser_context(browser: Browser) -> Iterator[BrowserContext]:
    with bounded_context(browser) as context:
        yield context


def open_chat(context: BrowserContext, server: RunningServer, room: str, name: str) -> Page:
    """Open the chat page as ``name`` in ``room`` and wait until its own join is on the page."""
    page = context.new_page()
    page.goto(server.url("/?" + urlencode({"room": room, "name": name})))
    wait_for(page, "s => s.state === 'open'")
    wait_for_text(page, f"{name} joined the room")
    return page


def wait_for(page: Page, predicate: str, arg: object = None) -> None:
    """Wait until ``predicate(window.chatState, arg)`` (a JS arrow function) is true."""
    page.wait_for_function(
        f"([arg]) => ({predicate})(window.chatState, arg)", arg=[arg], timeout=ms(5)
    )


def wait_for_text(page: Page, text: str) -> None:
    """Wait until a line of the conversation shows ``text``."""
    page.locator("#messages li", has_text=text).first.wait_for(timeout=ms(5))


def texts(page: Page) -> list[str]:
    """The message texts on the page, as a person reads them, oldest first."""
    return page.locator("#messages li.message .text").all_text_contents()


def send_from_page(page: Page, content: str) -> None:
    """Type ``content`` into the chat page's box and press Enter, as a user does."""
    page.fill("#content", content)
    page.press("#content", "Enter")
