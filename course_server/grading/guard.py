"""Notice learner code that changes the check machinery while it runs: snapshot, then compare.

Dropping ``checks.evaluate = ...`` from a notebook is not enough: a decorator, a default value or
an endpoint the checks call can run ``setattr(checks, "evaluate", ...)`` too. So before any
learner code runs the worker takes a ``Snapshot`` of what the checks are made of, and compares
after each step:

- every ``course_server`` module, deeply: its globals (no key added, removed or rebound), the
  functions in it (code, defaults, closure cells), its classes' attributes, and the containers
  and course objects it holds (the exercise registry and each exercise's list of checks);
- every other module, shallowly: each function, class or module it held is still the same
  object (``websockets.connect``, ``builtins.isinstance``...); data globals that libraries set
  lazily are not compared;
- ``sys.modules``: no module the checks may import later swapped for another;
- the interpreter's hooks that run Python code in threads the learner did not start: the trace
  and profile functions ``threading`` gives each new thread (the checks' threads), the garbage
  collector's callbacks and thresholds (a callback runs in whichever thread collects). Such a
  hook changes no module, yet it can rewrite a verdict as it is made or sent.

``refuse_hooks`` also stops learner code from setting a trace, profile or audit hook on any
thread, once the worker calls it (before any learner code runs).

This raises the bar; it is not a wall. Learner code runs in the same process as the checks
while it is being checked, so code written to defeat this snapshot can (see the README).
"""

from __future__ import annotations

import builtins
import gc
import inspect
import sys
import threading
import types
from collections.abc import Callable
from typing import Any

WATCHED = "course_server"
MACHINERY = ("course_server.checks", "course_server.grading")
"""Packages whose functions' code is compared too. Not the rest of ``course_server``: the checks
may swap a reference implementation's ``__code__`` for a tripwire while they run."""
DEPTH = 6
KEEP_CONTENTS = frozenset({"course_server.checks._registry"})
"""Private module-level containers whose contents are compared all the same. Others
(``_running``, ``_armed``...) are what is running now: their contents change as checks run."""
_CODE_LIKE = (types.FunctionType, type, types.ModuleType, types.BuiltinFunctionType)
_WRAPPERS = (classmethod, staticmethod)


def _within(name: object, *packages: str) -> bool:
    return isinstance(name, str) and any(name == p or name.startswith(p + ".") for p in packages)


def _ours(name: object) -> bool:
    return _within(name, WATCHED)


class Snapshot:
    """What the checks are made of, by identity, at one moment."""

    def __init__(self) -> None:
        self.same: dict[str, object] = {}  # path -> object that must still be there (``is``)
        self.equal: dict[str, object] = {}  # path -> value that must still compare equal
        self._seen: set[int] = set()

    @classmethod
    def take(cls) -> Snapshot:
        snapshot = cls()
        for name, module in list(sys.modules.items()):
            snapshot.same[f"sys.modules[{name!r}]"] = module
            namespace = getattr(module, "__dict__", None)
            if not isinstance(namespace, dict):
                continue
            if _ours(name):
                snapshot._module(name, namespace)
            else:
                for key, value in list(namespace.items()):
                    if isinstance(value, _CODE_LIKE):
                        snapshot.same[f"{name}.{key}"] = value
        snapshot.equal.update(hooks())
        return snapshot

    def _module(self, name: str, namespace: dict[str, Any]) -> None:
        """A ``course_server`` module: its globals, and what each holds (private containers:
        only which object they are)."""
        items = list(namespace.items())
        # A submodule imported for the first time while checks run appears in its package.
        self.equal[f"{name}#keys"] = frozenset(
            key
            for key, value in items
            if not (isinstance(value, types.ModuleType) and value.__name__ == f"{name}.{key}")
        )
        for key, value in items:
            path = f"{name}.{key}"
            runtime = key.startswith("_") and path not in KEEP_CONTENTS
            if runtime and isinstance(value, dict | list | set):
                self.same[path] = value
            else:
                self._deep(path, value, 1)

    def _deep(self, path: str, value: Any, depth: int) -> None:
        self.same[path] = value
        if depth >= DEPTH or id(value) in self._seen:
            return
        self._seen.add(id(value))
        if isinstance(value, dict):
            self._mapping(path, value, depth)
        elif isinstance(value, list | tuple | set | frozenset):
            items = list(value)
            self.equal[f"{path}#len"] = len(items)
            for index, item in enumerate(items):
                self._deep(f"{path}[{index}]", item, depth + 1)
        elif isinstance(value, types.FunctionType):
            self._function(path, value)
        elif isinstance(value, _WRAPPERS):
            self._deep(f"{path}.__func__", value.__func__, depth + 1)
        elif isinstance(value, property):
            for part in ("fget", "fset", "fdel"):
                self._deep(f"{path}.{part}", getattr(value, part), depth + 1)
        elif isinstance(value, type) and _ours(value.__module__):
            self._mapping(path, vars(value), depth)
        elif _ours(type(value).__module__) and isinstance(getattr(value, "__dict__", None), dict):
            self._mapping(path, vars(value), depth)

    def _mapping(self, path: str, mapping: Any, depth: int) -> None:
        """Every key of a dict, a class's or an object's ``__dict__``, and what each holds."""
        self.equal[f"{path}#keys"] = frozenset(map(repr, mapping))
        for key, item in list(mapping.items()):
            where = f"{path}.{key}" if isinstance(key, str) else f"{path}[{key!r}]"
            self._deep(where, item, depth + 1)

    def _function(self, path: str, function: types.FunctionType) -> None:
        if not _within(function.__module__, *MACHINERY):
            return
        self.same[f"{path}.__code__"] = function.__code__
        self.same[f"{path}.__defaults__"] = function.__defaults__
        self.same[f"{path}.__kwdefaults__"] = function.__kwdefaults__
        self.same[f"{path}.__globals__"] = function.__globals__
        for index, cell in enumerate(function.__closure__ or ()):
            try:
                contents = cell.cell_contents
            except ValueError:  # an empty cell: a name not bound yet
                continue
            if inspect.isfunction(contents) or isinstance(contents, type):
                self.same[f"{path}.__closure__[{index}]"] = contents

    def changes(self, later: Snapshot | None = None) -> list[str]:
        """What differs in ``later`` (a snapshot taken now if not given): paths, sorted."""
        later = later or Snapshot.take()
        changed = [
            path
            for path, value in self.same.items()
            if path in later.same or not path.startswith("sys.modules")
            if later.same.get(path, _MISSING) is not value
        ]
        changed += [p for p, v in self.equal.items() if later.equal.get(p, _MISSING) != v]
        return sorted(set(changed))


_MISSING = object()


def _from_a_file(function: object) -> bool:
    """Is this a function of a module's source file? Libraries add garbage-collector callbacks
    lazily (hypothesis, once its first test runs); a notebook's own code comes from ``<cell N>``."""
    if not isinstance(function, types.FunctionType):
        return False
    return not function.__code__.co_filename.startswith("<")


def hooks() -> dict[str, object]:
    """The hooks that would run code in every thread started from now on, or in any thread."""
    found: dict[str, object] = {
        "threading.settrace": threading.gettrace(),
        "threading.setprofile": threading.getprofile(),
        "gc.callbacks": tuple(c for c in gc.callbacks if not _from_a_file(c)),
        "gc.set_threshold": gc.get_threshold(),
    }
    monitoring = getattr(sys, "monitoring", None)  # Python 3.12+: tools see every thread
    if monitoring is not None:
        found["sys.monitoring"] = tuple(monitoring.get_tool(i) for i in range(6))
    return found


REFUSED_EVENTS = frozenset(
    {"sys.settrace", "sys.setprofile", "sys.addaudithook", "sys.monitoring.register_callback"}
)
"""Audit events of calls that hook Python code into threads: refused once ``refuse_hooks`` ran."""


def _refuse(event: str, args: tuple[object, ...]) -> None:
    """The audit hook of ``refuse_hooks``: a module function, so the worker's seal of this
    module notices its code swapped."""
    if event in REFUSED_EVENTS:
        raise RuntimeError(f"{event} is not allowed while grading")


def refuse_hooks() -> None:
    """From now on, in every thread, refuse to set a trace, profile or audit hook.

    An audit hook cannot be removed, so learner code cannot undo this; a ``sys.addaudithook``
    refused so fails silently (Python's rule), the others raise ``RuntimeError``.
    """
    sys.addaudithook(_refuse)


def seal(*modules: types.ModuleType) -> Callable[[], bool]:
    """A test, made now, that ``modules`` and ``builtins`` are still as they are now: the same
    globals (no key added, for ``modules``), and the same code in each of their functions and
    their classes' methods.

    The worker seals ``guard``, ``channel`` and itself before learner code runs, and tests the
    seal before it trusts ``Snapshot.changes``: a snapshot cannot vouch for itself, nor for the
    builtins it calls. The test uses no builtin and no global: only ``is`` and dict methods.
    """
    namespaces: list[tuple[Any, dict[str, Any], bool]] = [
        (vars(builtins), dict(vars(builtins)), False)
    ]
    functions = []
    for module in modules:
        namespaces.append((vars(module), dict(vars(module)), True))
        for value in list(vars(module).values()):
            members = [value]
            if isinstance(value, type) and value.__module__ == module.__name__:
                namespaces.append((vars(value), dict(vars(value)), True))
                members = list(vars(value).values())
            for member in members:
                function = getattr(member, "__func__", member)
                if isinstance(function, types.FunctionType):
                    functions.append((function, function.__code__))

    def intact() -> bool:
        for namespace, then, exact in namespaces:
            if exact and namespace.keys() != then.keys():
                return False
            for key, value in then.items():
                if namespace.get(key, namespace) is not value:
                    return False
        for function, code in functions:
            if function.__code__ is not code:
                return False
        return True

    return intact
