"""One submission graded: a folder of its own, a worker in the sandbox, its messages, its end.

``run`` is blocking (the grader calls it from a thread per job): it copies the notebook into a
new temporary folder, starts the worker, gives it its orders and a nonce on stdin, reads the
channel and the worker's output (keeping only the last ``OUTPUT_KEPT`` bytes, however much is
printed), and stops the worker's whole process tree when it ends or when ``timeout`` passes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import selectors
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from course_server.grading import channel, sandbox

OUTPUT_KEPT = 4096
DRAIN_SECONDS = 2.0
"""After the worker ended: how long to read what is left in its pipes."""


@dataclasses.dataclass
class Outcome:
    """What came back from one worker."""

    messages: list[dict[str, Any]]
    stopped: bool = False  # the timeout passed: the worker was killed
    returncode: int | None = None
    forged: str = ""  # why the channel cannot be trusted, if it cannot
    output: str = ""  # the last bytes the worker (the learner's code) printed


class _Reader:
    """Reads a pipe into a buffer that keeps at most ``keep`` bytes (the last ones, or the
    first ones with ``head``) and counts the rest."""

    def __init__(self, fd: int, keep: int, head: bool = False) -> None:
        self.fd, self.keep, self.head = fd, keep, head
        self.data = bytearray()
        self.total = 0

    def read(self) -> bool:
        """Read what is there; False at the end of the pipe."""
        chunk = os.read(self.fd, 1 << 16)
        self.total += len(chunk)
        if self.head:
            self.data += chunk[: max(0, self.keep - len(self.data))]
        else:
            self.data += chunk
            del self.data[: max(0, len(self.data) - self.keep)]
        return bool(chunk)


def _pump(readers: list[_Reader], until: float, process: subprocess.Popen[bytes] | None) -> None:
    """Read the pipes until ``until``, until all end, or (given a process) until it exits."""
    with selectors.DefaultSelector() as selector:
        for reader in readers:
            selector.register(reader.fd, selectors.EVENT_READ, reader)
        while selector.get_map() and time.monotonic() < until:
            if process is not None and process.poll() is not None:
                return
            wait = min(0.1, max(0.0, until - time.monotonic()))
            for key, _ in selector.select(wait):
                if not key.data.read():
                    selector.unregister(key.fd)
        while process is not None and process.poll() is None and time.monotonic() < until:
            time.sleep(0.05)  # both pipes closed but the worker still runs: wait for it, bounded


def run(
    notebook: bytes,
    name: str,
    lesson: str,
    *,
    isolation: sandbox.Isolation,
    limits: sandbox.Limits,
    timeout: float,
    cell_timeout: float,
    slot: int = 0,
) -> Outcome:
    """Grade one notebook (its bytes, read before any worker started) in a fresh worker."""
    nonce = secrets.token_hex(16)
    orders = {
        "nonce": nonce,
        "lesson": lesson,
        "notebook": name,
        "cell_timeout": cell_timeout,
        "limits": dataclasses.asdict(limits),
    }
    with tempfile.TemporaryDirectory(prefix="grade-", ignore_cleanup_errors=True) as workdir:
        folder = Path(workdir)
        (folder / name).write_bytes(notebook)
        sandbox.prepare(isolation, folder, slot)
        read_end, write_end = os.pipe()
        uid = sandbox.user(isolation, slot)
        try:
            process = subprocess.Popen(
                sandbox.worker_command(isolation, folder, write_end),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                pass_fds=(write_end,), start_new_session=True, cwd=folder,
                env=sandbox.environment(sandbox.home(isolation, folder)),
                user=uid, group=uid, extra_groups=[] if uid is not None else None,
            )  # fmt: skip
        finally:
            os.close(write_end)
        assert process.stdin is not None and process.stdout is not None
        messages = _Reader(read_end, channel.LIMIT + 1, head=True)
        output = _Reader(process.stdout.fileno(), OUTPUT_KEPT)
        try:
            process.stdin.write(json.dumps(orders).encode() + b"\n")
            process.stdin.close()
        except BrokenPipeError:  # the worker is already gone; its return code says why
            pass
        _pump([messages, output], time.monotonic() + timeout, process)
        stopped = process.poll() is None
        sandbox.end(isolation, process, slot)
        _pump([messages, output], time.monotonic() + DRAIN_SECONDS, None)
        os.close(read_end)
        process.stdout.close()
    printed = output.data.decode("utf-8", "replace")
    outcome = Outcome([], stopped, process.returncode, output=printed)
    try:
        outcome.messages = channel.receive(bytes(messages.data), nonce, cut=stopped)
    except channel.Forged as exc:
        outcome.forged = str(exc)
    return outcome
