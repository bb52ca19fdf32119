"""Hosted Jupyter: the browser reaches the course server only through jupyter-server-proxy.

The browser tests run the README's JupyterLab with jupyter-server-proxy, serve the course from
this process on 127.0.0.1 port 0 as a lesson's kernel does, and open the pages at
``{lab}/proxy/{port}/…`` in Chromium; the clients in this process keep the direct address.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest
from browser import ms, send_from_page, texts, wait_for, wait_for_text
from chat_members import member, say, until
from conftest import eventually, wait_timeout
from credentials import bearer
from lab_launcher import Lab, running_lab
from playwright.sync_api import Browser, BrowserContext, Page

from course_server import RunningServer, Settings, start
from course_server.runner import with_public_host
from course_server.urls import public_base, public_host

HUB = {"JUPYTERHUB_SERVICE_PREFIX": "/user/ada/"}
PUBLIC = {"COURSE_PUBLIC_URL": "https://hub.example.org/user/ada/proxy/{port}"}


def test_no_hosted_environment_means_the_direct_url() -> None:
    assert public_base(8000, {}) is None


def test_a_hub_prefix_gives_a_proxy_path_on_the_page_origin() -> None:
    assert public_base(8000, HUB) == "/user/ada/proxy/8000"


def test_the_root_prefix_gives_the_bare_proxy_path() -> None:
    assert public_base(8000, {"JUPYTERHUB_SERVICE_PREFIX": "/"}) == "/proxy/8000"


def test_an_explicit_public_url_wins_over_the_hub_prefix() -> None:
    assert public_base(8000, {**HUB, **PUBLIC}) == "https://hub.example.org/user/ada/proxy/8000"


def test_the_public_host_is_the_name_of_the_public_url() -> None:
    assert public_host(PUBLIC) == "hub.example.org"


def test_the_public_host_keeps_a_written_port() -> None:
    assert public_host({"COURSE_PUBLIC_URL": "http://127.0.0.1:8888/proxy/{port}"}) == (
        "127.0.0.1:8888"
    )


def test_a_relative_public_url_names_no_host() -> None:
    assert public_host({"COURSE_PUBLIC_URL": "/user/ada/proxy/{port}"}) is None


def test_the_public_host_is_added_to_the_allowed_hosts_alone() -> None:
    settings = with_public_host(Settings(allowed_hosts=("example.net",)), PUBLIC)
    assert settings.allowed_hosts == ("example.net", "hub.example.org")


def test_browser_url_goes_through_the_proxy_and_url_stays_direct(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/ada/")
    with start(name="hosted-urls") as server:
        assert server.url("/") == f"http://127.0.0.1:{server.port}/"
        assert server.browser_url("/?room=r") == f"/user/ada/proxy/{server.port}/?room=r"


def test_browser_url_is_the_direct_url_outside_hosted_jupyter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("COURSE_PUBLIC_URL", "JUPYTERHUB_SERVICE_PREFIX"):
        monkeypatch.delenv(name, raising=False)
    with start(name="hosted-urls") as server:
        assert server.browser_url("/notifications/page") == server.url("/notifications/page")


def test_start_reads_the_course_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """#15: ``start()`` built a plain ``Settings()``, unlike ``create_app(None)``."""
    monkeypatch.setenv("COURSE_HISTORY_SIZE", "7")
    with start(name="hosted-env") as server:
        assert server.app.state.settings.history_size == 7


def test_start_accepts_the_public_host_and_still_refuses_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COURSE_PUBLIC_URL", "https://hub.example.org/user/ada/proxy/{port}")
    with start(name="hosted-hosts") as server:
        ours = httpx.get(server.url("/healthz"), headers={"Host": "hub.example.org"})
        theirs = httpx.get(server.url("/healthz"), headers={"Host": "attacker.example"})
    assert (ours.status_code, theirs.status_code) == (200, 400)


# --- through a real JupyterLab with jupyter-server-proxy -------------------------------------


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    try:
        import jupyter_server_proxy  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("jupyter-server-proxy is not installed: `make setup` installs it")
        pytest.skip("jupyter-server-proxy is not installed (`make setup`)")
    home = tmp_path_factory.mktemp("hosted-lab")
    # Enabled explicitly: a pip install enables it through etc/jupyter, which this home hides.
    config = home / "config"
    config.mkdir()
    extensions = {"ServerApp": {"jpserver_extensions": {"jupyter_server_proxy": True}}}
    (config / "jupyter_server_config.json").write_text(json.dumps(extensions))
    with running_lab(home) as running:
        yield running


@pytest.fixture
def proxied(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningServer]:
    """A course server started as a lesson starts it, told the lab is its public address."""
    monkeypatch.setenv("COURSE_PUBLIC_URL", lab.url + "/proxy/{port}")
    monkeypatch.setenv("COURSE_JWT_SECRET", "hosted-jupyter-test-secret-32-bytes!")
    with start(name="hosted-proxied") as server:
        yield server


@pytest.fixture
def signed_in(browser: Browser, lab: Lab) -> Iterator[BrowserContext]:
    """A browser context with Jupyter's login cookie, as a learner on the hub has one."""
    context = browser.new_context()
    context.set_default_timeout(ms(10))
    try:
        response = context.request.get(f"{lab.url}/api/status?token={lab.token}")
        assert response.ok, response.status
        yield context
    finally:
        context.close()


@pytest.mark.browser
def test_the_chat_page_through_the_proxy_talks_with_a_direct_client(
    proxied: RunningServer, signed_in: BrowserContext
) -> None:
    page = signed_in.new_page()
    page.goto(proxied.browser_url("/?" + urlencode({"room": "hosted", "name": "ada"})))
    wait_for(page, "s => s.state === 'open'")
    with member(proxied, "hosted", "grace") as grace:
        wait_for_text(page, "grace joined the room")
        say(grace, "hello through the proxy")
        wait_for_text(page, "hello through the proxy")
        send_from_page(page, "hello from the hub")
        heard = until(grace, lambda f: f["type"] == "message" and f["username"] == "ada")
        wait_for_text(page, "hello from the hub")  # shown once the page's own echo is back
    assert (heard["content"], texts(page)) == (
        "hello from the hub",
        ["hello through the proxy", "hello from the hub"],
    )


@pytest.mark.browser
def test_notifications_arrive_through_the_proxy(
    proxied: RunningServer, signed_in: BrowserContext
) -> None:
    page: Page = signed_in.new_page()
    page.goto(proxied.browser_url("/notifications/page"))
    # The proxy forwards the stream's headers with its first bytes, so the page's "open" comes
    # with the first notification: wait on the server's side for the subscription instead.
    counter = proxied.app.state.sse_streams
    proxied.call(eventually(lambda: counter.active == 1), timeout=wait_timeout(15))
    response = httpx.post(
        proxied.url("/notifications"), json={"title": "proxied"}, headers=bearer(proxied.app)
    )
    response.raise_for_status()
    page.wait_for_function("() => window.notificationState.ids.length === 1", timeout=ms(10))
    assert page.locator("#messages li b").all_text_contents() == ["proxied"]
