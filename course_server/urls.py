"""The URL helpers every started server has, in a thread (``runner``) or a process."""

from __future__ import annotations


class ServerURLs:
    """``url(path)`` and ``ws(path)`` from the ``http_url`` a subclass provides (no trailing /)."""

    http_url: str

    @property
    def ws_url(self) -> str:
        """Base URL for WebSockets, e.g. ``ws://127.0.0.1:PORT``."""
        return "ws" + self.http_url.removeprefix("http")

    def url(self, path: str = "/") -> str:
        return self.http_url + path

    def ws(self, path: str) -> str:
        return self.ws_url + path
