"""A learner's browser JavaScript on a page of the check's own, run in headless Chromium.

The check serves a page (``serve_page``): a list, a guard script, the learner's script, then a
driver that calls it. The guard runs first and wraps every way a script can hand a string to the
HTML parser (``innerHTML``, ``outerHTML``, ``insertAdjacentHTML``, ``document.write``, …), so a
check sees what the code *did*, whatever it is called or however it is spelled. ``opened``
opens the page in a fresh browser context and collects what the page raised. The checks of one
run share one Chromium (``tools.chromium``, started once through ``checks.shared``); without a
Chromium every check fails with a hint that says so, never passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi.responses import HTMLResponse, Response

from course_server.checks.harness import CheckFailed, Harness
from course_server.checks.shared import shared
from course_server.tools.chromium import ChromiumMissing, headless_chromium

LIST = "messages"
"""The id of the page's list: the learner's code renders into it."""

ANSWER = 3.0
"""Seconds the page has to answer a question (it answers in milliseconds unless it is stuck)."""

GUARD_JS = """
"use strict";
// Runs before the learner's script: note every string handed to the HTML parser, and errors.
window.htmlSinks = [];
window.pageErrors = [];
window.xss = 0;
addEventListener("error", (event) => { window.pageErrors.push(String(event.message)); });
const note = (name) => { window.htmlSinks.push(name); };
for (const [proto, prop] of [
  [Element.prototype, "innerHTML"], [Element.prototype, "outerHTML"],
  [ShadowRoot.prototype, "innerHTML"],
]) {
  const own = Object.getOwnPropertyDescriptor(proto, prop);
  Object.defineProperty(proto, prop, {
    ...own, set(value) { note(prop); own.set.call(this, value); },
  });
}
for (const [proto, name] of [
  [Element.prototype, "insertAdjacentHTML"], [Element.prototype, "setHTMLUnsafe"],
  [Document.prototype, "write"], [Document.prototype, "writeln"],
  [Range.prototype, "createContextualFragment"], [DOMParser.prototype, "parseFromString"],
]) {
  const own = proto[name];
  if (typeof own !== "function") continue;
  proto[name] = function (...args) { note(name); return own.apply(this, args); };
}
"""

PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>exercise</title></head>
<body><ul id="{LIST}"></ul>
<script src="guard.js"></script>
<script src="answer.js"></script>
<script src="driver.js"></script>
</body></html>
"""


def serve_page(h: Harness, source: str, driver: str) -> None:
    """Serve the page at ``/``: the list, the guard, ``source`` (the learner's), ``driver``."""
    scripts = {"guard.js": GUARD_JS, "answer.js": source, "driver.js": driver}

    def page() -> HTMLResponse:
        return HTMLResponse(PAGE, headers={"Cache-Control": "no-store"})

    h.get("/", page, response_class=HTMLResponse)
    for name, text in scripts.items():

        def script(text: str = text) -> Response:
            return Response(text, media_type="text/javascript")

        # A closure per script, its text bound by default: FastAPI injects no parameter for it.
        h.app.add_api_route(f"/{name}", script, methods=["GET"], include_in_schema=False)


class Page:
    """The opened page, read through Playwright: its list, its errors, what it parsed as HTML."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    async def run(self, expression: str, arg: Any = None) -> Any:
        """Evaluate a JS function expression on the page, with ``arg``.

        A page whose script never returns (a loop with no end) never answers: fail, saying so.
        """
        try:
            async with asyncio.timeout(ANSWER):
                return await self.page.evaluate(expression, arg)
        except TimeoutError:
            raise CheckFailed(
                f"the page did not answer within {ANSWER:g} s: does your JavaScript loop forever?"
            ) from None

    async def lines(self) -> list[str]:
        """The text of each element in the list, top to bottom."""
        lines: list[str] = await self.run(
            f"() => [...document.getElementById({json.dumps(LIST)}).children]"
            ".map((e) => e.textContent)"
        )
        return lines

    async def until(self, predicate: str, arg: Any = None, timeout: float = 3) -> bool:
        """Wait until the JS function ``predicate(arg)`` is true; False if it never is."""
        with contextlib.suppress(Exception):  # Playwright's TimeoutError, or a page that broke
            await self.page.wait_for_function(predicate, arg=arg, timeout=timeout * 1000)
            return True
        return False

    async def sinks(self) -> list[str]:
        """The HTML parsers the page's scripts used, in call order."""
        sinks: list[str] = await self.run("() => window.htmlSinks")
        return sinks

    async def raised(self) -> str:
        """What the page's scripts raised, for a hint: "" if nothing."""
        # The page's own record first: it names the error's kind ("Uncaught SyntaxError: …").
        found = await self.run("() => window.pageErrors") + self.errors
        return f" (your JavaScript raised: {found[0]})" if found else ""


@contextlib.asynccontextmanager
async def opened(h: Harness) -> AsyncIterator[Page]:
    """The check's page (``serve_page``), open in a fresh context of the run's one Chromium."""
    assert h.server is not None, "serve() first"
    try:
        browser = await shared("chromium", headless_chromium)
    except ChromiumMissing as exc:
        raise CheckFailed(
            f"this check runs your JavaScript in Chromium, and cannot: {exc}"
        ) from None
    context = await browser.new_context()  # its own storage and cache: nothing from a check before
    try:
        page = Page(await context.new_page())
        page.page.set_default_timeout(5000)
        await page.page.goto(h.server.url("/"))
        yield page
    finally:
        await context.close()
