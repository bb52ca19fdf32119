"""The fan-out benchmark's Node peer (``benchmarks.node_ws``): it broadcasts, or it is skipped.

Node's ``ws`` comes from the npm registry, installed once into a cache outside the repository.
Where ``node`` is missing the live tests skip, under CI too: CI's image (``.ci/run``) does not
install Node, and the benchmark itself runs without it. Where ``node`` is there but ``ws`` cannot
be installed (no ``npm``, the registry out of reach), they skip on a learner's machine and fail
under CI (``CI=true``): CI reaches package mirrors anyway (it installs from Debian), so there a
failed install is a broken build, and a peer silently skipped would hide it.

Like ``tests/repo/test_benchmarks.py``, nothing here looks at a rate or a latency's value.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, wait_timeout
from websockets.asyncio.client import connect

from course_server.tools.processes import ServerProcess, start

for _module in ("picows", "socketio"):  # the benchmarks' own dependencies: the bench extra
    pytest.importorskip(_module, reason="the bench extra is not installed")

from benchmarks import fanout, node_ws  # noqa: E402
from benchmarks.designs import EVERY, PEERS  # noqa: E402
from benchmarks.harness import Scenario, measure  # noqa: E402

pytestmark = pytest.mark.anyio
RECEIVERS, MESSAGES = 3, 12


@pytest.fixture(scope="module")
def node_ready() -> None:
    """``ws`` installed (once, cached); a skip, or under CI a failure, where it cannot be."""
    reason = node_ws.prepare()
    if reason is None:
        return
    if reason != node_ws.NO_NODE and os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def server(node_ready: None) -> Iterator[ServerProcess]:
    with EVERY["node ws"].start() as process:
        yield process


@pytest.fixture
def no_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A PATH on which neither ``node`` nor ``npm`` is found (an empty folder)."""
    monkeypatch.setenv("PATH", str(tmp_path))
    return str(tmp_path)


async def test_the_node_server_broadcasts_a_text_to_every_receiver(server: ServerProcess) -> None:
    assert server.ws_url.startswith("ws://127.0.0.1:")
    async with asyncio.timeout(wait_timeout(10)):
        receivers = [await connect(server.ws_url + "/") for _ in range(RECEIVERS)]
        async with connect(server.ws_url + "/") as sender:
            await sender.send("hello")
            heard = [await r.recv() for r in (*receivers, sender)]
        for receiver in receivers:
            await receiver.close()
    assert heard == ["Someone said: hello"] * (RECEIVERS + 1)


async def test_a_tiny_burst_through_node_reaches_every_receiver_once(node_ready: None) -> None:
    tiny = Scenario("burst", receivers=RECEIVERS, messages=MESSAGES)
    async with asyncio.timeout(wait_timeout(30)):
        run = await measure(EVERY["node ws"], tiny, workers=2)
    assert (run.sent, run.delivered, run.lost, run.duplicates) == (
        MESSAGES,
        RECEIVERS * MESSAGES,
        0,
        0,
    )
    assert run.note == "" and run.peak_rss_mb > 0  # node's own process, measured


def test_the_node_peer_is_a_design_of_the_fanout_benchmark_after_the_python_ones() -> None:
    assert list(PEERS) == ["node ws"]
    assert fanout.parse_args([]).designs[-1] == "node ws"


def test_without_node_the_peer_says_why_in_one_line(no_node: str) -> None:
    assert node_ws.prepare() == "node not found: skipping Node ws peer"


def test_an_install_that_fails_says_why_in_one_line(
    no_node: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Offline, ``npm ci`` fails (here a stand-in ``npm``); its first error line is the reason."""
    for tool, script in (
        ("node", "exit 0"),
        ("npm", "echo 'npm error code ENOTFOUND' >&2; exit 1"),
    ):
        path = Path(no_node) / tool
        path.write_text(f"#!/bin/sh\n{script}\n")
        path.chmod(0o755)
    monkeypatch.setenv("XDG_CACHE_HOME", str(Path(no_node) / "cache"))
    assert node_ws.prepare() == (
        "npm could not install ws (npm error code ENOTFOUND): skipping Node ws peer"
    )


def test_without_node_the_fanout_benchmark_skips_the_peer_and_keeps_the_others(
    no_node: str,
) -> None:
    said: list[str] = []
    assert fanout.available(["raw", "node ws", "course"], said.append) == ["raw", "course"]
    assert said == [node_ws.NO_NODE]


def test_without_node_the_benchmark_still_runs_and_reports_the_skip(no_node: str) -> None:
    """The command line, end to end: a tiny raw burst runs, the Node peer is skipped and said."""
    command = [sys.executable, "-m", "benchmarks.fanout", "--designs", "raw,node ws"]
    tiny = ["--receivers", "2", "--messages", "5", "--workers", "1"]
    done = subprocess.run(
        [*command, *tiny, "--skip-slow", "--skip-deflate"],
        cwd=ROOT,
        env={**os.environ, "PATH": no_node},
        capture_output=True,
        text=True,
        timeout=wait_timeout(60),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[0] == node_ws.NO_NODE
    rows = done.stdout.split("\n\n", 1)[0].splitlines()[2:]  # the table, below its header
    assert [row.split()[0] for row in rows] == ["raw"]
    assert node_ws.NO_NODE in done.stdout.splitlines()


def test_without_node_the_launcher_fails_with_the_reason(no_node: str) -> None:
    with pytest.raises(RuntimeError, match="node not found"):
        start("benchmarks.node_ws", ready_path=None, env={"PATH": no_node}, cwd=ROOT)
