"""An exercise cannot be passed with the course's own implementation of it, however it is reached.

The references are real course functions (``sse_client.parse``, ``ratelimit.TokenBucket``);
the answers are cheats a learner could write, checked as ``check()`` checks them.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import types
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from exercise_reports import notebook_namespace
from fastapi import WebSocket

from course_server import checks
from course_server.checks import Status, references
from course_server.checks.harness import Harness
from course_server.clients import sse as sse_client
from course_server.clients.sse import parse as aliased_parse
from course_server.realtime import ratelimit
from course_server.seed import heartbeat

HINT = "calls the course's own course_server.clients.sse.parse: write your own"


def as_dicts(found: list[sse_client.SSEvent]) -> list[dict[str, str]]:
    return [{"event": e.event, "data": e.data, "id": e.id or ""} for e in found if not e.comment]


def parse_through_an_alias(lines: list[str]) -> list[dict[str, str]]:
    return as_dicts(aliased_parse(lines))


def parse_found_at_run_time(lines: list[str]) -> list[dict[str, str]]:
    """A wrapper whose code names no reference: only the tripwire can see what it calls."""
    module = importlib.import_module("course_server.clients." + "sse")
    return as_dicts(getattr(module, "pa" + "rse")(lines))


class BucketOverridingTheCourses(ratelimit.TokenBucket):
    def allow(self, cost: float = 1.0) -> bool:
        return super().allow(cost)


def hints(report: checks.Report) -> set[str]:
    return {v.hint for v in report.verdicts}


def test_an_aliased_reference_fails_every_check_with_the_hint() -> None:
    report = checks.evaluate("08.2", parse_through_an_alias)
    assert {v.status for v in report.verdicts} == {Status.FAILED}
    assert hints(report) == {HINT}


def test_the_reference_itself_is_refused_up_front() -> None:
    report = checks.evaluate("08.2", sse_client.parse)
    assert hints(report) == {"is the course's own course_server.clients.sse.parse: write your own"}


def test_a_subclass_of_the_reference_class_is_refused() -> None:
    report = checks.evaluate("04.2", BucketOverridingTheCourses)
    expected = (
        "subclasses the course's own course_server.realtime.ratelimit.TokenBucket: write your own"
    )
    assert hints(report) == {expected}


def test_a_method_borrowed_from_the_reference_class_is_refused() -> None:
    class Bucket:
        __init__ = ratelimit.TokenBucket.__init__
        allow = ratelimit.TokenBucket.allow

    (hint,) = hints(checks.evaluate("04.2", Bucket))
    assert "from the course's own course_server.realtime.ratelimit.TokenBucket" in hint


def test_a_wrapper_found_at_run_time_is_caught_by_the_tripwire() -> None:
    parse = references.Reference("course_server.clients.sse:parse")
    assert references.screen(parse_found_at_run_time, [parse]) is None
    report = checks.evaluate("08.2", parse_found_at_run_time)
    assert {v.status for v in report.verdicts} == {Status.FAILED}
    assert hints(report) == {HINT}


def test_the_checks_own_use_of_the_reference_still_works() -> None:
    """08.2's checks read their streams with ``sse_client.parse`` while it is armed."""
    solution = notebook_namespace("solutions", "08")["parse_events"]
    report = checks.evaluate("08.2", solution)
    assert report.passed, str(report)


def test_a_cheat_next_to_a_solution_fails_alone() -> None:
    """Checked at the same time, the cheat's calls are charged to the cheat's run only."""
    solution = notebook_namespace("solutions", "08")["parse_events"]
    with ThreadPoolExecutor(2) as pool:
        honest = pool.submit(checks.evaluate, "08.2", solution)
        cheat = pool.submit(checks.evaluate, "08.2", parse_found_at_run_time)
        assert honest.result().passed, str(honest.result())
        assert hints(cheat.result()) == {HINT}


def test_the_reference_works_as_before_after_the_checks() -> None:
    code, signature = sse_client.parse.__code__, inspect.signature(sse_client.parse)
    checks.evaluate("08.2", parse_found_at_run_time)
    assert sse_client.parse.__code__ is code
    assert "__signature__" not in vars(sse_client.parse)
    assert inspect.signature(sse_client.parse) == signature
    assert aliased_parse("data: x\n\n")[0].data == "x"


def test_an_armed_reference_raises_when_the_learners_code_calls_it() -> None:
    with references.guard(["course_server.clients.sse:parse"], parse_found_at_run_time) as run:
        with pytest.raises(references.ReferenceUsed, match=r"clients\.sse\.parse"):
            sse_client.parse("data: x\n\n")
        assert run.take() == HINT


def test_an_armed_endpoint_keeps_its_signature_kind_and_source_for_fastapi() -> None:
    endpoint = heartbeat.websocket_with_heartbeat
    code, signature = endpoint.__code__, inspect.signature(endpoint)
    source = inspect.getsource(endpoint)
    spec = "course_server.seed.heartbeat:websocket_with_heartbeat"
    with references.guard([spec], parse_found_at_run_time):
        assert endpoint.__code__ is not code  # armed: the tripwire runs first
        assert inspect.signature(endpoint) == signature
        assert inspect.iscoroutinefunction(endpoint)
        assert inspect.getsource(endpoint) == source


@pytest.mark.parametrize("exercise", checks.exercises(), ids=lambda e: e.id)
def test_every_reference_names_a_course_object(exercise: checks.Exercise) -> None:
    for spec in exercise.references:
        module, _, _ = spec.partition(":")
        assert module.startswith("course_server."), spec
        found: Any = references.Reference(spec).resolve()  # raises if the name is gone
        if inspect.isclass(found) or inspect.isfunction(found):
            assert found.__module__ == module, spec


def test_a_name_shared_with_an_unrelated_module_is_not_a_use() -> None:
    """``urllib.parse`` beside ``sse_client.SSEvent``: no ``sse_client.parse`` is read."""
    import urllib.parse

    def events_with_quoted_data(lines: list[str]) -> list[Any]:
        return [sse_client.SSEvent(data=urllib.parse.quote(line)) for line in lines]

    parse = references.Reference("course_server.clients.sse:parse")
    assert references.screen(events_with_quoted_data, [parse]) is None


def test_a_reference_imported_inside_the_answer_is_a_use() -> None:
    def parse_events(lines: list[str]) -> list[dict[str, str]]:
        from course_server.clients.sse import parse

        return as_dicts(parse(lines))

    parse = references.Reference("course_server.clients.sse:parse")
    assert references.screen(parse_events, [parse]) == HINT


def test_a_released_guard_lets_the_learner_call_the_reference_again() -> None:
    """What ``evaluate`` does for checks stuck past their deadline: the notebook goes on."""
    code = sse_client.parse.__code__
    with references.guard(["course_server.clients.sse:parse"], parse_found_at_run_time) as run:
        references.release(run)
        assert sse_client.parse.__code__ is code
        assert sse_client.parse("data: x\n\n")[0].data == "x"
    assert sse_client.parse.__code__ is code


def test_a_copy_of_the_reference_function_is_the_reference() -> None:
    """``FunctionType(parse.__code__, ...)``: a new function object running the course's code."""
    original = sse_client.parse
    copy = types.FunctionType(original.__code__, original.__globals__, "parse_events")
    report = checks.evaluate("08.2", copy)
    assert hints(report) == {"is the course's own course_server.clients.sse.parse: write your own"}


async def watchdog_scheduled_as_a_task(websocket: WebSocket) -> None:
    """The course's endpoint, found at run time and run as a task: asyncio starts it, not us."""
    module = importlib.import_module("course_server.seed." + "heartbeat")
    endpoint = getattr(module, "websocket_with" + "_heartbeat")
    await asyncio.create_task(endpoint(websocket, 0.5))


def test_a_reference_coroutine_made_by_the_learner_and_run_as_a_task_is_caught() -> None:
    report = checks.evaluate("09.1", watchdog_scheduled_as_a_task)
    expected = (
        "calls the course's own course_server.seed.heartbeat.websocket_with_heartbeat:"
        " write your own"
    )
    assert hints(report) == {expected}


def test_a_call_from_the_course_package_goes_through_while_armed() -> None:
    """``Harness.call`` (course code) calls ``parse``: a check's own use, not the learner's."""
    with references.guard(["course_server.clients.sse:parse"], parse_found_at_run_time) as run:
        found = asyncio.run(Harness("course-caller").call(sse_client.parse, "data: x\n\n"))
        assert run.take() is None
    assert found[0].data == "x"
