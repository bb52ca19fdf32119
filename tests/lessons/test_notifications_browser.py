"""The EventSource page in headless Chromium: live notifications, and resume after a restart."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from browser import ms
from credentials import bearer
from playwright.sync_api import BrowserContext, Page

from course_server import RunningServer, Settings, create_app, start

pytestmark = pytest.mark.browser


@pytest.fixture
def notifier() -> Iterator[RunningServer]:
    settings = Settings(jwt_secret="notifications-browser-test-secret-32b")
    server = start(create_app(settings), name="notifications-browser")
    try:
        yield server
    finally:
        server.stop()


def publish(server: RunningServer, title: str) -> int:
    response = httpx.post(
        server.url("/notifications"), json={"title": title}, headers=bearer(server.app)
    )
    response.raise_for_status()
    return response.json()["id"]


def wait_for(page: Page, predicate: str) -> None:
    page.wait_for_function(f"() => ({predicate})(window.notificationState)", timeout=ms(10))


def open_page(context: BrowserContext, server: RunningServer) -> Page:
    page = context.new_page()
    page.goto(server.url("/notifications/page"))
    wait_for(page, "s => s.state === 'open'")
    return page


def test_a_published_notification_appears_as_text(
    browser_context: BrowserContext, notifier: RunningServer
) -> None:
    page = open_page(browser_context, notifier)
    publish(notifier, '<img src=x onerror="window.__xss=1">')
    wait_for(page, "s => s.ids.length === 1")
    assert page.locator("#messages li b").all_text_contents() == [
        '<img src=x onerror="window.__xss=1">'
    ]
    assert page.evaluate("window.__xss") is None


def test_after_a_restart_the_browser_resumes_from_its_last_id(
    browser_context: BrowserContext, notifier: RunningServer
) -> None:
    page = open_page(browser_context, notifier)
    before = [publish(notifier, f"before {i}") for i in range(2)]
    wait_for(page, "s => s.ids.length === 2")

    port = notifier.port
    notifier.stop()
    wait_for(page, "s => s.state === 'reconnecting'")
    # The same app (and its notification history) comes back on the same address.
    restarted = start(notifier.app, name="notifications-browser", port=port)
    after = [publish(restarted, f"after {i}") for i in range(2)]

    wait_for(page, "s => s.opens === 2 && s.ids.length === 4")
    assert page.evaluate("window.notificationState.ids") == before + after
    assert page.locator("#messages li b").all_text_contents() == [
        "before 0",
        "before 1",
        "after 0",
        "after 1",
    ]
