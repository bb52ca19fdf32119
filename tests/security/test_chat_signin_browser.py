"""Signing in on the chat page (``POST /session``) in headless Chromium, against a real server.

Cookies belong to a browser context, so two users chat from two contexts; two pages of one
context share one sign-in. The server's demo users are ``alice:wonderland`` and
``bob:builder``, hashed with argon2 at its lowest cost so that logging in takes microseconds.
Nothing here sleeps: the tests wait on ``window.chatState`` and on the page's text.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from browser import bounded_context, texts, wait_for, wait_for_text
from playwright.sync_api import Browser, BrowserContext, Page, WebSocket, expect
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from course_server import RunningServer, Settings, create_app, start
from course_server.security.tokens import SESSION_COOKIE, Users

pytestmark = [pytest.mark.browser, pytest.mark.timeout(60)]

CHEAP = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=8, parallelism=1),))


@pytest.fixture
def server(settings: Settings) -> Iterator[RunningServer]:
    """The full app with the demo users, cheaply hashed."""
    app = create_app(settings)
    app.state.users = Users(settings.demo_users, hasher=CHEAP)
    with start(app, name=f"test-{__name__}") as running:
        yield running


@pytest.fixture
def other_context(browser: Browser) -> Iterator[BrowserContext]:
    """A second browser (its own cookies), for a second user."""
    with bounded_context(browser) as context:
        yield context


def open_page(context: BrowserContext, server: RunningServer) -> Page:
    """The chat page, once it knows whether its cookie signs it in."""
    page = context.new_page()
    page.goto(server.url("/"))
    wait_for(page, "s => s.session !== 'checking'")
    return page


def sign_in(page: Page, username: str, password: str) -> None:
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#signin")


def signed_in_page(context: BrowserContext, server: RunningServer, user: str, pw: str) -> Page:
    """A page signed in as ``user`` and in ``general``, its own join on the page."""
    page = open_page(context, server)
    sign_in(page, user, pw)
    wait_for(page, "(s, user) => s.state === 'open' && s.name === user", user)
    wait_for_text(page, f"{user} joined the room")
    return page


def sockets_of(page: Page) -> list[WebSocket]:
    """Every WebSocket the page opens from now on."""
    opened: list[WebSocket] = []
    page.on("websocket", lambda socket: opened.append(socket))
    return opened


def send_from_page(page: Page, content: str) -> None:
    page.fill("#content", content)
    page.press("#content", "Enter")


def test_signed_in_users_chat_under_their_own_names(
    browser_context: BrowserContext, other_context: BrowserContext, server: RunningServer
) -> None:
    alice = signed_in_page(browser_context, server, "alice", "wonderland")
    bob = signed_in_page(other_context, server, "bob", "builder")
    expect(alice.locator("#account")).to_have_text("signed in as alice Sign out")
    expect(bob.locator("#account")).to_have_text("signed in as bob Sign out")
    expect(alice.locator("#signin-form")).to_be_hidden()

    send_from_page(alice, "hello bob")
    wait_for_text(bob, "hello bob")
    send_from_page(bob, "hi alice")
    wait_for_text(alice, "hi alice")

    for page in (alice, bob):
        assert texts(page) == ["hello bob", "hi alice"]
        users = page.locator("#messages li.message .user").all_text_contents()
        assert users == ["alice", "bob"]
        expect(page.locator("#users li")).to_have_text(["alice", "bob"])


def test_the_cookie_is_httponly_so_the_page_cannot_read_it(
    browser_context: BrowserContext, server: RunningServer
) -> None:
    page = signed_in_page(browser_context, server, "alice", "wonderland")
    cookies = {c["name"]: c for c in browser_context.cookies()}
    assert cookies[SESSION_COOKIE]["httpOnly"]
    assert SESSION_COOKIE not in page.evaluate("document.cookie")


def test_wrong_password_shows_an_error_and_does_not_connect(
    browser_context: BrowserContext, server: RunningServer
) -> None:
    page = open_page(browser_context, server)
    opened = sockets_of(page)
    sign_in(page, "alice", "builder")

    expect(page.locator("#signin-error")).to_have_text("Wrong username or password.")
    expect(page.locator("#signin-form")).to_be_visible()
    expect(page.locator("#account")).to_be_hidden()
    expect(page.locator("#password")).to_have_value("")
    state = page.evaluate("({...window.chatState})")
    assert (state["session"], state["user"], state["state"]) == ("signed-out", None, "idle")
    assert opened == []
    assert browser_context.cookies() == []


def test_a_page_loaded_again_is_still_signed_in_and_joins_as_its_user(
    browser_context: BrowserContext, server: RunningServer
) -> None:
    page = signed_in_page(browser_context, server, "alice", "wonderland")
    # Another room: in general, the old page's leave could reach the server after the new join.
    page.goto(server.url("/?room=elsewhere"))
    wait_for(page, "s => s.state === 'open' && s.user === 'alice' && s.name === 'alice'")
    expect(page.locator("#account-name")).to_have_text("alice")
    expect(page.locator("#signin-form")).to_be_hidden()


def test_joining_as_another_user_from_the_url_is_refused_and_the_page_says_so(
    browser_context: BrowserContext, server: RunningServer
) -> None:
    signed_in_page(browser_context, server, "alice", "wonderland")
    page = browser_context.new_page()  # same context: alice's cookie
    opened = sockets_of(page)
    page.goto(server.url("/?room=elsewhere&name=bob"))  # the URL tampered with

    expect(page.locator("#messages li.notice.error")).to_have_text(
        [
            "The server refused to let you chat as bob (Token does not match username). "
            "You are signed in as alice."
        ]
    )
    # 'closed', not 'reconnecting': no retry is scheduled, so no reconnect loop.
    expect(page.locator("#status")).to_have_text(
        "closed: not allowed to chat as bob: Token does not match username"
    )
    assert len(opened) == 1
    assert page.evaluate("window.chatState.connects") == 1

    expect(page.locator("#name")).to_have_value("alice")  # so Join now joins as alice
    page.click("#join")
    wait_for(page, "s => s.state === 'open' && s.name === 'alice' && s.room === 'elsewhere'")


def test_a_socket_opened_by_page_script_as_another_user_is_closed_4003(
    browser_context: BrowserContext, server: RunningServer
) -> None:
    page = signed_in_page(browser_context, server, "alice", "wonderland")
    closed = page.evaluate(
        """url => new Promise(resolve => {
            const socket = new WebSocket(url);
            socket.onmessage = (event) => resolve({ message: event.data });
            socket.onclose = (event) => resolve({ code: event.code, reason: event.reason });
        })""",
        server.ws("/chat/general/bob"),
    )
    assert closed == {"code": 4003, "reason": "Token does not match username"}


def test_sign_out_leaves_the_room_and_a_reload_shows_the_sign_in_form(
    browser_context: BrowserContext, other_context: BrowserContext, server: RunningServer
) -> None:
    page = signed_in_page(browser_context, server, "alice", "wonderland")
    bob = signed_in_page(other_context, server, "bob", "builder")
    page.click("#signout")

    wait_for(page, "s => s.state === 'closed' && s.session === 'signed-out'")
    wait_for_text(bob, "alice left the room")
    expect(page.locator("#signin-form")).to_be_visible()
    assert browser_context.cookies() == []

    page.reload()
    wait_for(page, "s => s.session === 'signed-out'")
    expect(page.locator("#signin-form")).to_be_visible()
    expect(page.locator("#account")).to_be_hidden()
    assert page.evaluate("window.chatState.state") == "idle"  # and no join as alice
