"""The URL helpers every started server has, in a thread (``runner``) or a process.

Two audiences reach a course server. Code in the kernel (clients, checks, ``httpx``) is on the
same machine and uses ``url()``/``ws()``: ``http://127.0.0.1:PORT/…``. The learner's browser
opens ``browser_url()``: the same address on a laptop, but on hosted Jupyter (JupyterHub, Binder,
Codespaces) the browser reaches nothing except Jupyter itself, so the page goes through
jupyter-server-proxy at ``{base}/proxy/PORT/…``. Where that base comes from (``public_base``):

- ``COURSE_PUBLIC_URL``: explicit, e.g. ``https://hub.example.org/user/ada/proxy/{port}`` (an
  absolute URL also lets the server accept that host and origin: see ``public_host``);
- else ``JUPYTERHUB_SERVICE_PREFIX`` (set by JupyterHub and Binder for the single-user server,
  e.g. ``/user/ada/``): ``/user/ada/proxy/{port}``, a path on the page's own origin, which is
  what an IFrame in the notebook needs;
- else none: the browser uses the direct URL.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlsplit

PUBLIC_URL = "COURSE_PUBLIC_URL"
HUB_PREFIX = "JUPYTERHUB_SERVICE_PREFIX"


def public_base(port: int, environ: Mapping[str, str] | None = None) -> str | None:
    """The browser's base URL for a server on ``port`` (no trailing /), or None: go direct."""
    env = os.environ if environ is None else environ
    template = env.get(PUBLIC_URL, "").strip()
    if not template:
        prefix = env.get(HUB_PREFIX, "").strip()
        if not prefix:
            return None
        path = prefix.strip("/")
        template = f"/{path}/proxy/{{port}}" if path else "/proxy/{port}"
    return template.replace("{port}", str(port)).rstrip("/")


def public_host(environ: Mapping[str, str] | None = None) -> str | None:
    """``host[:port]`` of an absolute ``COURSE_PUBLIC_URL``: the one proxied name to accept."""
    env = os.environ if environ is None else environ
    parts = urlsplit(env.get(PUBLIC_URL, "").strip())
    if not parts.hostname:
        return None
    name = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    # No port written: the name at any port. The proxy forwards the browser's ``Host``
    # (``hub.example.org``, no port) over plain HTTP, so a scheme's port could not be inferred.
    return f"{name}:{parts.port}" if parts.port else name


class ServerURLs:
    """``url(path)`` and ``ws(path)`` from the ``http_url`` a subclass provides (no trailing /)."""

    http_url: str

    @property
    def ws_url(self) -> str:
        """Base URL for WebSockets, e.g. ``ws://127.0.0.1:PORT``."""
        return "ws" + self.http_url.removeprefix("http")

    def url(self, path: str = "/") -> str:
        """The direct URL of ``path``: for clients in the kernel or on this machine."""
        return self.http_url + path

    def ws(self, path: str) -> str:
        """The direct WebSocket URL of ``path``: for clients in the kernel."""
        return self.ws_url + path

    def browser_url(self, path: str = "/") -> str:
        """The URL of ``path`` for the learner's browser: an IFrame's ``src``, a link.

        Through jupyter-server-proxy on hosted Jupyter, else the direct URL (module docstring).
        """
        base = public_base(urlsplit(self.http_url).port or 80)
        return self.url(path) if base is None else base + path
