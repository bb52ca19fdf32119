"""The load test (``python -m loadtest``), run tiny: 20 connections held 1 s with pings on.

The full run (1,000 connections for 60 s) is ``python -m loadtest``; lesson 09 quotes it.
"""

from __future__ import annotations

import os
import re

import pytest

from loadtest.__main__ import main
from loadtest.hold import usage


def test_twenty_connections_are_held_through_several_ping_rounds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    options = ["--seconds", "1", "--ping-interval", "0.2", "--ping-timeout", "2"]
    assert main(["--connections", "20", "--room-size", "8", *options]) == 0
    report = capsys.readouterr().out
    assert re.search(r"20/20 open for \d+ s, 20 listed in rooms; pings every 0\.2 s", report)
    assert "memory per connection:" in report


def test_usage_reads_a_process_memory_and_cpu_time() -> None:
    now = usage(os.getpid())
    assert now.rss > 1024 * 1024 and now.cpu > 0
