"""Exercise 04.3 runs the learner's JavaScript in Chromium: without one, it says so, never passes.

Which check rejects each of its mutants is in ``test_checks_lesson04_08.py``; here, what the
check does on a machine that cannot run a browser, and how the package finds one.
"""

from __future__ import annotations

import asyncio

import pytest
from exercise_reports import notebook_namespace

from course_server import checks
from course_server.checks import Status
from course_server.tools import chromium


def test_find_chromium_prefers_course_chromium(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSE_CHROMIUM", "/opt/my-chromium")
    assert chromium.find_chromium(("no-such-browser",)) == "/opt/my-chromium"


def test_find_chromium_is_none_without_a_browser(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COURSE_CHROMIUM", raising=False)
    assert chromium.find_chromium(("no-such-browser-a", "no-such-browser-b")) is None


def test_no_browser_raises_chromium_missing_naming_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(chromium, "find_chromium", lambda: None)

    async def launch() -> None:
        async with chromium.headless_chromium():
            pass

    with pytest.raises(chromium.ChromiumMissing, match="apt-get install chromium"):
        asyncio.run(launch())


def test_without_chromium_every_check_of_04_3_fails_saying_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COURSE_CHROMIUM", "/nonexistent/chromium")
    solution = notebook_namespace("solutions", "04")["chat_script"]
    report = checks.evaluate("04.3", solution)
    assert [v.status for v in report.verdicts] == [Status.FAILED] * len(report.verdicts)
    for verdict in report.verdicts:
        assert "runs your JavaScript in Chromium, and cannot" in verdict.hint
        assert "/nonexistent/chromium did not start" in verdict.hint
