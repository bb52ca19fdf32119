"""The chat page and its static files, served over HTTP (no browser: see test_chat_browser.py)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from course_server.lessons.pages import STATIC_DIR

PAGE_FILES = ("chat.html", "chat.js", "chat.css")
# Every way to turn a string into markup; the page must build its DOM with textContent.
HTML_SINKS = ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(")


def test_root_serves_the_chat_page_as_html(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert '<script src="static/chat.js" defer></script>' in response.text


def test_page_forbids_inline_scripts_with_a_content_security_policy(client: TestClient) -> None:
    policy = client.get("/").headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "unsafe-inline" not in policy


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/static/chat.js", "text/javascript; charset=utf-8"),
        ("/static/chat.css", "text/css; charset=utf-8"),
    ],
)
def test_static_assets_are_served_with_their_types(
    client: TestClient, path: str, content_type: str
) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.content == (STATIC_DIR / path.removeprefix("/static/")).read_bytes()


def test_static_files_stay_inside_their_directory(client: TestClient) -> None:
    assert client.get("/static/%2e%2e/pages.py").status_code == 404


@pytest.mark.parametrize("name", PAGE_FILES)
def test_page_source_never_parses_text_as_html(name: str) -> None:
    """A guard against the seed's stored XSS: no HTML sink anywhere in the page's source."""
    source = (STATIC_DIR / name).read_text(encoding="utf-8")
    assert [sink for sink in HTML_SINKS if sink in source] == []


def test_sign_in_form_posts_so_a_password_never_lands_in_a_url(client: TestClient) -> None:
    page = client.get("/").text
    assert '<form id="signin-form" method="post" action="session"' in page
    assert '<input id="password" name="password" type="password"' in page
