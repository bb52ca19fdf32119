"""Keep the course's own implementation of an exercise out of the learner's answer to it.

An exercise names its references
(``exercise(..., references=("course_server.clients.sse:parse",))``, ``"module:qualname"``; a
class covers its methods). While its checks run, ``guard`` refuses a learner's answer that uses
one, however the learner got hold of it:

- up front (``screen``): the answer *is* a reference (or a ``functools.partial`` of one, or a
  copy running its code object), subclasses a reference class, borrows a reference method as its
  own, or its code reads a reference by name (``from x import y``, an alias, ``module.attr``);
- while the checks run (the tripwire): each reference function's ``__code__`` is swapped for a
  stub that asks who called it before running the original. A caller in the ``course_server``
  package (a check reading the learner's SSE stream with the course's client) goes through; any
  other caller (skipping the standard library's and installed packages' frames: ``map``,
  asyncio) is the learner's code, which gets ``ReferenceUsed`` and the check fails. A reference
  coroutine run as a task has only asyncio below it: where it was made decides (the checks'
  threads keep coroutine origins).

Swapping ``__code__`` changes the function object itself, so every alias sees the tripwire, and
swapping it back restores the function exactly (Python 3.11 has no ``sys.monitoring``). Several
exercises may be checked at once (the tests do): a call is charged to the run whose learner code
is on the stack, and the functions stay armed until the last run that needs them ends.

Not caught: the reference's source text pasted into the notebook. That is the learner's own code
as far as any check can tell.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import dis
import functools
import importlib
import inspect
import itertools
import os
import sys
import sysconfig
import threading
import types
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import course_server


def _folders(*paths: str) -> tuple[str, ...]:
    """Each folder as written and resolved (a symlinked checkout has two names), with a slash."""
    return tuple({str(p) + os.sep for path in paths for p in (Path(path), Path(path).resolve())})


COURSE = _folders(str(Path(course_server.__file__).parent))
LIBRARIES = _folders(
    *(p for key in ("stdlib", "platstdlib", "purelib", "platlib") if (p := sysconfig.get_path(key)))
)


class ReferenceUsed(Exception):
    """The learner's code used the course's own implementation of the exercise."""


@dataclasses.dataclass(frozen=True)
class Reference:
    """One ``"module:qualname"`` an exercise's answer may not use."""

    spec: str

    @property
    def name(self) -> str:
        return self.spec.replace(":", ".")

    def resolve(self) -> object:
        module, _, qualname = self.spec.partition(":")
        if not qualname:
            raise ValueError(f"reference {self.spec!r} is not 'module:qualname'")
        found: object = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
        return found


def calls(reference: Reference, used: object) -> str:
    """The hint for an answer that uses ``reference``."""
    verb = "calls" if callable(used) else "uses"
    return f"{verb} the course's own {reference.name}: write your own"


def unwrap(obj: object) -> object:
    """What ``obj`` stands for: a partial's function, a method's function, a decorator's target."""
    for _ in range(20):  # a cycle of __wrapped__ must not loop forever
        if isinstance(obj, functools.partial):
            obj = obj.func
        elif isinstance(obj, (types.MethodType, staticmethod, classmethod)):
            obj = obj.__func__
        elif isinstance(obj, property) and obj.fget is not None:
            obj = obj.fget
        elif (inner := getattr(obj, "__wrapped__", None)) is not None and not isinstance(obj, type):
            obj = inner
        else:
            return obj
    return obj


def functions_of(obj: object) -> list[types.FunctionType]:
    """The Python functions ``obj`` runs: itself, or a class's methods (not inherited ones)."""
    if isinstance(obj, types.FunctionType):
        return [obj]
    if not isinstance(obj, type):
        return []
    found = []
    for value in vars(obj).values():
        accessors = (value.fget, value.fset, value.fdel) if isinstance(value, property) else ()
        for candidate in (value, *accessors):
            if isinstance(candidate, (staticmethod, classmethod)):
                candidate = candidate.__func__
            if isinstance(candidate, types.FunctionType):
                found.append(candidate)
    return found


class _Table:
    """Every reference object of one exercise, and the reference each stands for."""

    def __init__(self, references: Iterable[Reference]) -> None:
        self.by_id: dict[int, tuple[Reference, object]] = {}
        self.by_code: dict[types.CodeType, Reference] = {}  # a copy has the same code
        self.classes: list[tuple[Reference, type]] = []
        for reference in references:
            obj = reference.resolve()
            self.by_id[id(obj)] = (reference, obj)
            for function in functions_of(obj):
                self.by_id.setdefault(id(function), (reference, function))
                self.by_code.setdefault(function.__code__, reference)
                with _lock:  # armed by another run now: its original code is kept aside
                    armed = _armed.get(id(function))
                if armed is not None:
                    self.by_code.setdefault(armed.original, reference)
            if isinstance(obj, type):
                self.classes.append((reference, obj))

    def find(self, obj: object) -> Reference | None:
        """The reference ``obj`` is, wraps or copies (``FunctionType(ref.__code__, ...)``)."""
        inner = unwrap(obj)
        for candidate in (obj, inner):
            entry = self.by_id.get(id(candidate))
            if entry is not None and entry[1] is candidate:
                return entry[0]
        if isinstance(inner, types.FunctionType):
            return self.by_code.get(inner.__code__)
        return None


# --- up front: what the answer is, and which names its code uses --------------------------------


def learner_functions(implementation: object) -> list[types.FunctionType]:
    """The functions of the learner's answer, and the learner's functions and classes they name.

    "The learner's" means defined in the answer's own module (the notebook's namespace), so the
    course's code, the standard library's and other packages' are never followed.
    """
    home = getattr(implementation, "__module__", None)
    seen: set[int] = set()
    found: list[types.FunctionType] = []
    queue: list[object] = [implementation]
    while queue:
        obj = unwrap(queue.pop())
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, type):
            if obj.__module__ != home:
                continue
            queue.extend(vars(obj).values())
            queue.extend(obj.__bases__)
            continue
        if not isinstance(obj, types.FunctionType) or obj.__module__ != home:
            continue
        found.append(obj)
        for code in nested_codes(obj.__code__):
            queue.extend(obj.__globals__[n] for n in code.co_names if n in obj.__globals__)
        queue.extend(cell.cell_contents for cell in obj.__closure__ or () if _filled(cell))
    return found


def _filled(cell: types.CellType) -> bool:
    try:
        cell.cell_contents  # noqa: B018 — an empty cell raises
    except ValueError:
        return False
    return True


def nested_codes(code: types.CodeType) -> Iterator[types.CodeType]:
    """``code`` and the code of every function, lambda and class body defined inside it."""
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from nested_codes(const)


_MISSING = object()


def _looked_up(function: types.FunctionType) -> Iterator[object]:
    """Every object the function's code (nested functions included) reads by name.

    Read from the bytecode: a global, a closure cell or an import, then each ``.attr`` after it,
    so ``sse_client.parse`` yields the module and then the function, while ``urllib.parse``
    next to an unrelated ``sse_client`` yields no ``sse_client.parse``.
    """
    cells = dict(zip(function.__code__.co_freevars, function.__closure__ or (), strict=True))
    for code in nested_codes(function.__code__):
        value: object = _MISSING
        for instruction in dis.get_instructions(code):
            name, op = instruction.argval, instruction.opname
            if op in ("LOAD_GLOBAL", "LOAD_NAME"):
                value = function.__globals__.get(name, _MISSING)
            elif op in ("LOAD_DEREF", "LOAD_CLASSDEREF") and name in cells:
                value = cells[name].cell_contents if _filled(cells[name]) else _MISSING
            elif op == "IMPORT_NAME":
                value = sys.modules.get(name, _MISSING)  # imported in the function: seen loaded
            elif op in ("LOAD_ATTR", "LOAD_METHOD", "IMPORT_FROM") and value is not _MISSING:
                value = getattr(value, name, _MISSING)
            else:
                value = _MISSING
                continue
            if value is not _MISSING:
                yield value


def _named(function: types.FunctionType, table: _Table) -> tuple[Reference, object] | None:
    """A reference the function's code names: a global, ``module.attr``, a closure cell."""
    for value in _looked_up(function):
        if (reference := table.find(value)) is not None:
            return reference, value
    return None


def screen(implementation: object, references: Iterable[Reference]) -> str | None:
    """Why the answer is the course's own code, or None: what it is, inherits, or names."""
    table = _Table(references)
    if (reference := table.find(implementation)) is not None:
        return f"is the course's own {reference.name}: write your own"
    for reference, cls in table.classes:
        if isinstance(implementation, type) and issubclass(implementation, cls):
            return f"subclasses the course's own {reference.name}: write your own"
        if isinstance(implementation, cls):
            return f"is the course's own {reference.name}: write your own"
    if isinstance(implementation, type):
        for klass in implementation.__mro__:
            for attribute, value in vars(klass).items():
                if (reference := table.find(value)) is not None:
                    return (
                        f"takes {attribute} from the course's own {reference.name}: write your own"
                    )
    for function in learner_functions(implementation):
        if (found := _named(function, table)) is not None:
            return calls(*found)
    return None


# --- while the checks run: the tripwire -----------------------------------------------------------


@dataclasses.dataclass(eq=False)
class Run:
    """One run of an exercise's checks: its references, its learner's code, what it used."""

    table: _Table
    codes: frozenset[types.CodeType]
    functions: list[types.FunctionType]  # the reference functions armed for it
    used: list[str] = dataclasses.field(default_factory=list)

    def take(self) -> str | None:
        """The hint for what the learner's code used since the last ``take``, if anything."""
        used, self.used[:] = list(dict.fromkeys(self.used)), []
        return "; ".join(used) or None


@dataclasses.dataclass
class _Armed:
    """A reference function while its ``__code__`` is the tripwire."""

    function: types.FunctionType
    original: types.CodeType
    runs: int
    had_signature: bool


_lock = threading.Lock()
_runs: list[Run] = []
_armed: dict[int, _Armed] = {}
# key -> (the reference function, a twin running its original code); kept after disarming, as
# a call may be on its way through the tripwire meanwhile.
_twins: dict[str, tuple[types.FunctionType, types.FunctionType]] = {}
_reference_codes: set[types.CodeType] = set()
_keys = itertools.count()
current: contextvars.ContextVar[Run | None] = contextvars.ContextVar("check_run", default=None)

_CALL = "_enter({key!r})(*args, **kwargs)"
_TEMPLATES = {
    "function": "def f(*args, **kwargs):\n{use}    return CALL\n",
    "coroutine": "async def f(*args, **kwargs):\n{use}    return await CALL\n",
    "generator": "def f(*args, **kwargs):\n{use}    return (yield from CALL)\n",
    "asyncgen": (
        "async def f(*args, **kwargs):\n{use}    inner = CALL\n"
        "    try:\n        async for item in inner:\n            yield item\n"
        "    finally:\n        await inner.aclose()\n"
    ),
}
_ENTER = "__import__('course_server.checks.references', fromlist=['_']).enter"


def _kind(function: types.FunctionType) -> str:
    if inspect.isasyncgenfunction(function):
        return "asyncgen"
    if inspect.iscoroutinefunction(function):
        return "coroutine"
    if inspect.isgeneratorfunction(function):
        return "generator"
    return "function"


def _tripwire(function: types.FunctionType, key: str) -> types.CodeType:
    """Code that runs ``enter(key)``'s function with the same arguments, of ``function``'s kind.

    It has as many free variables as ``function`` has closure cells (``__code__`` may only be
    swapped for code that fits the closure), and ``function``'s name, file and first line, so
    ``inspect.getsource`` and tracebacks still point at the original.
    """
    original = function.__code__
    free = [f"cell{i}" for i in range(len(original.co_freevars))]
    use = "".join(f"    {name}\n" for name in free)
    template = _TEMPLATES[_kind(function)].replace("CALL", _CALL)
    body = template.format(use=use, key=key).replace("_enter", _ENTER)
    factory = "def make({}):\n{}    return f\n".format(
        ", ".join(free), "".join("    " + line + "\n" for line in body.splitlines())
    )
    namespace: dict[str, Any] = {}
    exec(compile(factory, "<tripwire>", "exec", dont_inherit=True), namespace)
    code: types.CodeType = namespace["make"](*free).__code__
    return code.replace(
        co_name=original.co_name,
        co_qualname=original.co_qualname,
        co_filename=original.co_filename,
        co_firstlineno=original.co_firstlineno,
    )


def _arm(function: types.FunctionType) -> None:
    armed = _armed.get(id(function))
    if armed is not None:
        armed.runs += 1
        return
    key = f"{function.__module__}.{function.__qualname__}#{next(_keys)}"
    twin = types.FunctionType(
        function.__code__,
        function.__globals__,
        function.__name__,
        function.__defaults__,
        function.__closure__,
    )
    twin.__kwdefaults__ = function.__kwdefaults__
    twin.__qualname__ = function.__qualname__
    _twins[key] = (function, twin)
    had_signature = "__signature__" in vars(function)
    if not had_signature:  # FastAPI reads a route's parameters from its signature
        # inspect honours __signature__, an attribute FunctionType does not declare.
        function.__signature__ = inspect.signature(function)  # type: ignore[attr-defined]
    _reference_codes.add(function.__code__)
    armed = _Armed(function, function.__code__, 1, had_signature)
    wire = _tripwire(function, key)
    _reference_codes.add(wire)
    function.__code__ = wire
    _armed[id(function)] = armed


def _disarm(function: types.FunctionType) -> None:
    armed = _armed[id(function)]
    armed.runs -= 1
    if armed.runs == 0:
        function.__code__ = armed.original
        if not armed.had_signature:
            del function.__signature__  # type: ignore[attr-defined]  # set by _arm, see there
        del _armed[id(function)]


def _is_library(filename: str) -> bool:
    return filename.startswith("<frozen") or filename.startswith(LIBRARIES)


def _learner_frame(frame: types.FrameType | None) -> types.FrameType | None:
    """The first frame up the stack that is neither the reference, a library nor the course's."""
    while frame is not None:
        code = frame.f_code
        if code not in _reference_codes and not _is_library(code.co_filename):
            return None if code.co_filename.startswith(COURSE) else frame
        frame = frame.f_back
    return None


def _runs_of(frame: types.FrameType | None) -> list[Run]:
    """The runs whose learner code is on the stack from ``frame`` up; else the current run."""
    stack = []
    while frame is not None:
        stack.append(frame.f_code)
        frame = frame.f_back
    with _lock:
        runs = [run for run in _runs if not run.codes.isdisjoint(stack)]
        if not runs and (run := current.get()) is not None and run in _runs:
            runs = [run]
        return runs or list(_runs)


ORIGIN_DEPTH = 8
"""Frames kept of where each coroutine was made, in the threads that run checks."""


def track_origins() -> None:
    """Keep where each coroutine is made, in this thread (a thread of the checks, never the
    notebook's): a reference coroutine that the learner's code hands to ``create_task``
    starts with only asyncio below it, and only its origin tells who made it."""
    sys.set_coroutine_origin_tracking_depth(ORIGIN_DEPTH)


def _made_by_learner(frame: types.FrameType) -> bool:
    """Is ``frame`` the first step of a task's coroutine that the learner's code made?"""
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no event loop in this thread
        return False
    coroutine = task.get_coro() if task is not None else None
    if getattr(coroutine, "cr_frame", None) is not frame:
        return False
    for filename, _line, _function in getattr(coroutine, "cr_origin", None) or ():
        if not _is_library(filename):
            return not filename.startswith(COURSE)
    return False


def enter(key: str) -> types.FunctionType:
    """The original function behind tripwire ``key``; raises if the learner's code called it."""
    function, twin = _twins[key]
    learner = _learner_frame(sys._getframe(2))
    if learner is None and not _made_by_learner(sys._getframe(1)):
        return twin
    hints = []
    for run in _runs_of(learner):
        reference = run.table.find(function)
        if reference is not None:
            hint = calls(reference, twin)
            run.used.append(hint)
            hints.append(hint)
    if hints:
        raise ReferenceUsed(hints[0])
    return twin


@contextlib.contextmanager
def guard(specs: Iterable[str], implementation: object) -> Iterator[Run]:
    """Arm the tripwires of ``specs`` for one run of checks on ``implementation``; then disarm.

    The run's ``take()`` gives the hint for each reference the learner's code called meanwhile.
    """
    references = [Reference(spec) for spec in specs]
    table = _Table(references)
    codes = frozenset(
        code for f in learner_functions(implementation) for code in nested_codes(f.__code__)
    )
    functions = [f for r in references for f in functions_of(r.resolve())]
    run = Run(table, codes, functions)
    with _lock:
        for function in functions:
            _arm(function)
        _runs.append(run)
    token = current.set(run)
    try:
        yield run
    finally:
        current.reset(token)
        release(run)


def release(run: Run) -> None:
    """Disarm ``run``'s tripwires now; again is a no-op.

    ``evaluate`` calls it for checks still stuck past their deadline: the notebook goes on, and
    the course's functions must work normally in its next cells.
    """
    with _lock:
        if run in _runs:
            _runs.remove(run)
            for function in run.functions:
                _disarm(function)
