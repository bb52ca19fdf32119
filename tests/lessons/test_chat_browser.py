"""The chat page in headless Chromium against a real server: chat, XSS, reconnect and resume.

Other members of a room are Python clients (``websockets``' sync API). Nothing here sleeps: the
tests wait on ``window.chatState`` and on the page's text, with deadlines. A page is kept from
reconnecting at the wrong moment by taking the browser offline (existing sockets live on, new
ones fail) and brought back with ``set_offline(False)``, whose ``online`` event makes the page
retry at once instead of after its backoff.
"""

from __future__ import annotations

from typing import Any

import pytest
from browser import open_chat, send_from_page, texts, wait_for, wait_for_text
from chat_members import member, say, until
from playwright.sync_api import BrowserContext, Page, expect
from websockets.sync.client import ClientConnection

from course_server import RunningServer, Settings, create_app, start

pytestmark = [pytest.mark.browser, pytest.mark.timeout(60)]

# Cutting a page off ---------------------------------------------------------------------------


def drop(server: RunningServer, room: str, name: str, witness: ClientConnection) -> None:
    """Close ``name``'s connection from the server side; return once ``witness`` saw it leave."""

    async def close() -> None:
        server.app.state.chat_rooms.get(room).members[name].close(1012, "dropped by the test")

    server.call(close())
    until(witness, lambda f: f["type"] == "leave" and f["username"] == name)


def wait_until_cut_off(page: Page) -> None:
    """Wait until the page knows its connection is gone, whichever phase of retrying it is in.

    Full jitter can make the first retry come within a millisecond, and offline a retry stays
    ``connecting`` until it fails: waiting for ``reconnecting`` alone can miss it.
    """
    wait_for(page, "s => s.state === 'reconnecting' || s.state === 'connecting'")


def wait_until_shown(page: Page, ids: list[int]) -> None:
    """Wait until the page is connected again and shows the events ``ids``."""
    wait_for(page, "(s, ids) => s.state === 'open' && ids.every(i => s.ids.includes(i))", ids)


def chat_state(page: Page) -> dict[str, Any]:
    return page.evaluate("({...window.chatState})")


# The tests ----------------------------------------------------------------------------------


def test_two_pages_see_each_others_messages_and_presence(
    browser_context: BrowserContext, server: RunningServer
) -> None:
    ana = open_chat(browser_context, server, "general", "ana")
    ben = open_chat(browser_context, server, "general", "ben")
    for page in (ana, ben):
        expect(page.locator("#users li")).to_have_text(["ana", "ben"])

    send_from_page(ana, "hello ben")
    wait_for_text(ben, "hello ben")
    send_from_page(ben, "hi ana")
    wait_for_text(ana, "hi ana")

    assert texts(ana) == texts(ben) == ["hello ben", "hi ana"]
    expect(ben.locator("#messages li.message.mine .text")).to_have_text(["hi ana"])


def test_presence_drops_a_member_who_leaves(
    browser_context: BrowserContext, server: RunningServer
) -> None:
    ana = open_chat(browser_context, server, "general", "ana")
    with member(server, "general", "ben"):
        expect(ana.locator("#users li")).to_have_text(["ana", "ben"])
    wait_for_text(ana, "ben left the room")
    expect(ana.locator("#users li")).to_have_text(["ana"])


def test_markup_from_another_client_shows_as_text_and_never_runs(
    browser_context: BrowserContext, server: RunningServer
) -> None:
    payload = '<img src=x onerror="window.__xss=1">'
    # Markup cannot come in through a username: the server refuses such names (lesson 09,
    # tests/realtime/test_limits.py). Messages are free text, so the page must treat them as text.
    page = open_chat(browser_context, server, "general", "ana")
    with member(server, "general", "eve") as eve:
        say(eve, payload)
        wait_for_text(page, payload)
        expect(page.locator("#users li")).to_have_text(["ana", "eve"])

    assert texts(page) == [payload]
    assert page.locator("#messages li.message .user").all_text_contents() == ["eve"]
    assert page.locator("#messages img, #users img").count() == 0
    assert page.evaluate("window.__xss") is None


def test_page_stops_when_its_name_is_taken(
    browser_context: BrowserContext, server: RunningServer
) -> None:
    with member(server, "general", "ana"):
        page = browser_context.new_page()
        page.goto(server.url("/?room=general&name=ana"))
        wait_for(page, "s => s.state === 'closed'")
        expect(page.locator("#status")).to_have_text("closed: Username taken")
        assert chat_state(page)["connects"] == 1  # and no retry: 'closed' is final


def test_page_resumes_a_dropped_connection_without_loss_or_doubles(
    browser_context: BrowserContext, server: RunningServer
) -> None:
    page = open_chat(browser_context, server, "general", "ana")
    with member(server, "general", "ben") as ben:
        before = say(ben, "before the drop")
        wait_for(page, "(s, id) => s.ids.includes(id)", before)
        browser_context.set_offline(True)
        drop(server, "general", "ana", witness=ben)
        wait_until_cut_off(page)
        missed = [say(ben, f"missed {n}") for n in range(3)]

        browser_context.set_offline(False)
        wait_until_shown(page, missed)

    state = chat_state(page)
    assert state["ids"] == list(range(state["ids"][0], state["ids"][-1] + 1))  # no gap, no double
    assert state["gaps"] == 0
    assert texts(page) == ["before the drop", "missed 0", "missed 1", "missed 2"]


def test_page_shows_a_notice_when_missed_messages_were_evicted(
    browser_context: BrowserContext,
) -> None:
    with start(name="browser-evicted", settings=Settings(history_size=3)) as server:
        page = open_chat(browser_context, server, "general", "ana")
        with member(server, "general", "ben") as ben:
            browser_context.set_offline(True)
            drop(server, "general", "ana", witness=ben)
            wait_until_cut_off(page)
            missed = [say(ben, f"missed {n}") for n in range(5)]
            browser_context.set_offline(False)
            wait_until_shown(page, missed[-1:])

        expect(page.locator("#messages li.notice.gap")).to_have_count(1)
        assert chat_state(page)["gaps"] == 1
        # History holds 3 events: the last 3 messages were still there, the first 2 were not.
        assert texts(page) == ["missed 2", "missed 3", "missed 4"]


def test_message_typed_offline_is_sent_once_after_reconnect(
    browser_context: BrowserContext, server: RunningServer
) -> None:
    page = open_chat(browser_context, server, "general", "ana")
    with member(server, "general", "ben") as ben:
        browser_context.set_offline(True)
        drop(server, "general", "ana", witness=ben)
        wait_until_cut_off(page)
        send_from_page(page, "typed while offline")
        expect(page.locator("#outbox li .text")).to_have_text(["typed while offline"])

        browser_context.set_offline(False)
        until(ben, lambda f: f["type"] == "message" and f["content"] == "typed while offline")
        wait_for(page, "s => s.state === 'open' && s.outbox.length === 0")

    wait_for_text(page, "typed while offline")
    expect(page.locator("#outbox li")).to_have_count(0)
    assert texts(page) == ["typed while offline"]


def test_page_catches_up_after_the_server_restarts(
    browser_context: BrowserContext, settings: Settings
) -> None:
    """Restarted with the same app (so the same rooms registry), on the same port."""
    app = create_app(settings)
    server = start(app, name="browser-restart")
    try:
        page = open_chat(browser_context, server, "general", "ana")
        with member(server, "general", "ben") as ben:
            say(ben, "before the restart")
        wait_for_text(page, "before the restart")

        browser_context.set_offline(True)
        port = server.port
        server.stop()
        wait_until_cut_off(page)
        server = start(app, name="browser-restart", port=port)
        # ben stays until ana is back: a room is freed, history and all, once it is empty.
        with member(server, "general", "ben") as ben:
            sent = [say(ben, f"after the restart {n}") for n in range(3)]
            browser_context.set_offline(False)
            wait_until_shown(page, sent)
        state = chat_state(page)
        assert state["ids"] == sorted(set(state["ids"]))  # each event once, in order
        assert texts(page) == ["before the restart"] + [f"after the restart {n}" for n in range(3)]
    finally:
        server.stop()


def test_page_shows_new_messages_after_a_restart_that_lost_the_history(
    browser_context: BrowserContext, settings: Settings
) -> None:
    """A new app counts ids from 1 again: ids the page has seen must not hide its messages."""
    server = start(name="browser-amnesia", settings=settings)
    try:
        page = open_chat(browser_context, server, "general", "ana")
        with member(server, "general", "ben") as ben:
            for n in range(3):
                say(ben, f"old {n}")
        wait_for_text(page, "old 2")

        browser_context.set_offline(True)
        port = server.port
        server.stop()
        wait_until_cut_off(page)
        server = start(name="browser-amnesia", settings=settings, port=port)
        with member(server, "general", "ben") as ben:
            fresh = say(ben, "new 0")
            browser_context.set_offline(False)
            wait_for_text(page, "new 0")

        assert fresh <= max(chat_state(page)["ids"])  # an id the page had already seen once
        assert texts(page) == ["old 0", "old 1", "old 2", "new 0"]
        expect(page.locator("#messages li.notice.gap")).to_have_count(1)
    finally:
        server.stop()
