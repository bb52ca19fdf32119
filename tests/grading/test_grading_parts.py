"""The grader's parts, one at a time: what ``extract`` keeps, what ``channel`` refuses, what
``guard`` notices, and how ``sandbox`` ends a user's processes."""

from __future__ import annotations

import builtins
import gc
import json
import os
import subprocess
import sys
import threading
import time
import types

import psutil
import pytest

from course_server import checks
from course_server.grading import channel, extract, guard, sandbox

NONCE = "0123abcd"


def notebook(*sources: str) -> str:
    cells = [{"cell_type": "code", "source": source, "metadata": {}} for source in sources]
    cells.insert(1, {"cell_type": "markdown", "source": "check(...) in prose", "metadata": {}})
    return json.dumps({"cells": cells, "nbformat": 4, "nbformat_minor": 5, "metadata": {}})


def kept(*sources: str) -> dict[str, object]:
    namespace: dict[str, object] = {}
    for cell in extract.cells(notebook(*sources)):
        for code in cell.code:
            exec(code, namespace)
    namespace.pop("__builtins__", None)
    namespace.pop("__annotations__", None)  # made by ``LIMIT: int = 3``
    return namespace


def test_extract_keeps_imports_definitions_and_assignments_to_names() -> None:
    namespace = kept(
        "import math\nfrom os import path as p\nLIMIT: int = 3\nA, B = 1, 2",
        "def f():\n    return LIMIT\n\n\nclass C:\n    pass\n\n\nasync def g():\n    pass",
    )
    assert set(namespace) == {"math", "p", "LIMIT", "A", "B", "f", "C", "g"}


def test_extract_drops_calls_attribute_and_item_assignments_and_loops() -> None:
    namespace = kept(
        "import types\nbox = types.SimpleNamespace(x=1)\nbox.x = 2\nlog = []\nlog.append(1)",
        "check('02.1', box)\nlog[0] = 9\nfor i in range(3):\n    log.append(i)",
        "while False:\n    pass",
    )
    assert namespace["box"].x == 1  # type: ignore[attr-defined]
    assert namespace["log"] == []


def test_extract_skips_magics_and_cells_that_do_not_parse() -> None:
    namespace = kept("%load_ext autoreload\n!ls\nX = 1", "def broken(:\n    pass", "Y = 2")
    assert set(namespace) == {"X", "Y"}


def test_channel_reads_signed_messages_in_order() -> None:
    read, write = os.pipe()
    channel.send(write, NONCE, {"kind": "done", "text": "é\n"})
    os.close(write)
    assert channel.receive(os.read(read, 1 << 16), NONCE) == [{"kind": "done", "text": "é\n"}]


@pytest.mark.parametrize(
    "data",
    [
        b'wrong {"kind": "done"}\n',
        b"0123abcd not json\n",
        b"0123abcd [1]\n",
        b'0123abcd {"kind": "done"}',
        b"0123abcd " + b"x" * channel.LIMIT + b"\n",
    ],
    ids=["other nonce", "not JSON", "not an object", "no end of line", "too much"],
)
def test_channel_calls_anything_else_forged(data: bytes) -> None:
    with pytest.raises(channel.Forged):
        channel.receive(data, NONCE)


def test_channel_drops_a_cut_last_line_of_a_killed_worker() -> None:
    data = b'0123abcd {"kind": "done"}\n0123abcd {"kin'
    assert channel.receive(data, NONCE, cut=True) == [{"kind": "done"}]


def test_guard_sees_no_change_when_nothing_changed() -> None:
    checks.exercises()
    assert guard.Snapshot.take().changes() == []


def test_guard_sees_a_replaced_function() -> None:
    before = guard.Snapshot.take()
    original = checks.evaluate
    checks.evaluate = lambda *args: None  # type: ignore[assignment]
    try:
        assert "course_server.checks.evaluate" in before.changes()
    finally:
        checks.evaluate = original
    assert before.changes() == []


def test_guard_sees_an_exercise_that_lost_its_checks() -> None:
    exercise = checks.get("02.1")
    before = guard.Snapshot.take()
    saved = list(exercise.checks)
    exercise.checks.clear()
    try:
        assert any("02.1" in change for change in before.changes())
    finally:
        exercise.checks.extend(saved)


def test_guard_sees_swapped_code() -> None:
    before = guard.Snapshot.take()
    code = checks.check.__code__
    checks.check.__code__ = (lambda exercise_id, implementation: None).__code__
    try:
        assert "course_server.checks.check.__code__" in before.changes()
    finally:
        checks.check.__code__ = code


def test_guard_sees_a_patched_class() -> None:
    before = guard.Snapshot.take()
    passed = checks.Report.passed
    checks.Report.passed = property(lambda self: True)  # type: ignore[method-assign]
    try:
        assert any(change.endswith("Report.passed") for change in before.changes())
    finally:
        checks.Report.passed = passed  # type: ignore[method-assign]


def test_guard_sees_a_replaced_library_function() -> None:
    before = guard.Snapshot.take()
    original = json.dumps
    json.dumps = lambda *args, **kwargs: "{}"
    try:
        assert "json.dumps" in before.changes()
    finally:
        json.dumps = original


def test_guard_sees_a_profile_hook_every_new_thread_inherits() -> None:
    before = guard.Snapshot.take()
    threading.setprofile(lambda frame, event, arg: None)
    try:
        assert "threading.setprofile" in before.changes()
    finally:
        threading.setprofile(None)  # type: ignore[arg-type]


def test_guard_sees_a_garbage_collector_callback_and_threshold() -> None:
    before = guard.Snapshot.take()
    threshold = gc.get_threshold()
    gc.callbacks.append(eval(compile("lambda phase, info: None", "<cell 3>", "eval")))
    gc.set_threshold(50)
    try:
        assert {"gc.callbacks", "gc.set_threshold"} <= set(before.changes())
    finally:
        gc.callbacks.pop()
        gc.set_threshold(*threshold)


def test_guard_lets_a_library_add_its_garbage_collector_callback() -> None:
    before = guard.Snapshot.take()
    gc.callbacks.append(_a_librarys_callback)  # hypothesis does, once its first test runs
    try:
        assert before.changes() == []
    finally:
        gc.callbacks.remove(_a_librarys_callback)


def _a_librarys_callback(phase: str, info: dict[str, int]) -> None:
    """A callback defined in a source file, as a library's is."""


def test_refused_hooks_cannot_be_set_on_any_thread() -> None:
    # In a process of its own: an audit hook, once added, stays for the life of the process.
    script = (
        "import sys, threading\n"
        "from course_server.grading import guard\n"
        "guard.refuse_hooks()\n"
        "refused = []\n"
        "def attempt(setter):\n"
        "    try:\n"
        "        setter(lambda *args: None)\n"
        "    except RuntimeError:\n"
        "        refused.append(setter.__name__)\n"
        "thread = threading.Thread(target=attempt, args=(sys.setprofile,))\n"
        "thread.start()\n"
        "thread.join()\n"
        "attempt(sys.settrace)\n"
        "sys.addaudithook(lambda event, args: refused.append('audited'))\n"
        "print(sorted(refused), sys.gettrace(), sys.getprofile())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["['setprofile',", "'settrace']", "None", "None"]


@pytest.mark.skipif(os.geteuid() != 0, reason="running as another user needs root")
def test_sandbox_ends_every_process_of_a_workers_user() -> None:
    uid = sandbox.UID_BASE + 99
    sleeper = ["setsid", "sh", "-c", "sleep 300 & sleep 300"]
    started = subprocess.Popen(sleeper, user=uid, group=uid, extra_groups=[])
    deadline = time.monotonic() + 10
    while len(sandbox._processes_of(uid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)  # polling: the shell starts its sleeps when it gets to them
    assert len(sandbox._processes_of(uid)) >= 2
    sandbox._kill_user(uid)
    started.wait(timeout=10)
    alive = [
        p.info["pid"]
        for p in psutil.process_iter(["pid", "uids", "status"])
        if p.info["uids"] and p.info["uids"].real == uid
        if p.info["status"] != psutil.STATUS_ZOMBIE  # dead, waiting for init to reap it
    ]
    assert alive == []


def test_the_environment_holds_nothing_of_the_graders(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRADER_SECRET", "s3cret")
    env = sandbox.environment("/home/learner")
    assert "GRADER_SECRET" not in env
    assert env["HOME"] == "/home/learner"
    assert set(env) <= {*sandbox.environment("/x"), "COURSE_CHECK_TIMEOUT_FACTOR"}


def test_a_seal_holds_while_nothing_changes_and_breaks_on_a_patched_method() -> None:
    intact = guard.seal(guard, channel)
    assert intact()
    original = guard.Snapshot.changes
    guard.Snapshot.changes = lambda self, later=None: []  # type: ignore[method-assign]
    try:
        assert not intact()
    finally:
        guard.Snapshot.changes = original  # type: ignore[method-assign]
    assert intact()


def test_a_seal_breaks_on_a_replaced_builtin() -> None:
    intact = guard.seal(guard)
    original = builtins.sorted
    builtins.sorted = lambda *args, **kwargs: []
    try:
        assert not intact()
    finally:
        builtins.sorted = original


def test_the_sealed_sender_writes_whatever_os_write_became_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    read, write = os.pipe()
    send = channel.sealed_sender(write, NONCE)
    monkeypatch.setattr(os, "write", lambda fd, data: len(data))
    monkeypatch.setattr(json, "dumps", lambda *args, **kwargs: "{}")
    send({"kind": "done", "n": [1, 2.5, None, True]})
    os.close(write)
    received = channel.receive(os.read(read, 1 << 16), NONCE)
    assert received == [{"kind": "done", "n": [1, 2.5, None, True]}]


def test_guard_ignores_what_is_running_changing() -> None:
    from course_server import runner

    before = guard.Snapshot.take()
    runner._running["guard-test"] = None  # type: ignore[assignment]
    try:
        assert before.changes() == []
    finally:
        del runner._running["guard-test"]


def test_guard_ignores_a_reference_implementations_code_swapped_by_a_tripwire() -> None:
    from course_server.clients import sse as sse_client

    before = guard.Snapshot.take()
    code = sse_client.parse.__code__
    sse_client.parse.__code__ = (lambda *args, **kwargs: None).__code__
    try:
        assert before.changes() == []
    finally:
        sse_client.parse.__code__ = code


def test_guard_tells_a_submodule_imported_late_from_an_added_global() -> None:
    import course_server

    before = guard.Snapshot.take()
    course_server.late = types.ModuleType("course_server.late")  # type: ignore[attr-defined]
    try:
        assert before.changes() == []
        course_server.late = "not a module"  # type: ignore[attr-defined]
        assert before.changes() == ["course_server#keys"]
    finally:
        del course_server.late  # type: ignore[attr-defined]
