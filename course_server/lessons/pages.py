"""The browser chat page at ``/``: plain HTML, CSS and JavaScript, no build step, no CDN.

The page (``static/chat.html`` with ``chat.js`` and ``chat.css``) speaks the chat protocol of
``WS /chat/{room}/{username}`` and reads presence from ``GET /rooms/{room}/users``. It writes
every piece of user text with ``textContent``: the seed's client used ``innerHTML`` and so ran
any ``<img onerror=…>`` a user sent. The Content-Security-Policy below is a second line of
defence: even if markup got in, the browser would refuse inline scripts and handlers.
``/?room=general&name=alice`` joins at once, which tests and a notebook's IFrame use.

Signing in (lesson 06) goes through ``POST /session``: the token lands in an HttpOnly cookie that
the browser adds to the chat's handshake, where the server refuses (4003) a name that is not the
cookie's user; the page asks ``GET /session`` whom it is signed in as.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent.parent / "static"

# Only this server's own scripts, styles and connections ('self' covers ws:// to the same host).
# No frame-ancestors: notebooks show the page in an IFrame served from Jupyter's origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'"
)

router = APIRouter(tags=["chat page"])


@router.get("/", include_in_schema=False)
async def chat_page() -> FileResponse:
    """The chat page; ``no-cache`` so an edited page shows up on the next reload."""
    return FileResponse(
        STATIC_DIR / "chat.html",
        media_type="text/html; charset=utf-8",
        headers={
            "Cache-Control": "no-cache",
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "X-Content-Type-Options": "nosniff",
        },
    )


router.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
