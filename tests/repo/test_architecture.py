"""The package's folders are its architecture: who may import whom, and no import cycles.

The layers, from the bottom: ``realtime`` (the core) ← ``security`` ← ``lessons`` ← ``scaling``
← the app. ``seed`` is the chapter's broken code, mounted by the app beside the lessons. The
server never imports what only notebooks, tests and tools use (``clients``, ``lab``, ``tools``,
``checks``, ``grading``), so ``python -m course_server`` carries none of it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import course_server

PACKAGE = Path(course_server.__file__).parent

# What each part of the server may import besides itself (top-level modules by name).
SERVER_LAYERS = {
    "realtime": {"settings"},
    "security": {"realtime", "settings"},
    "lessons": {"realtime", "security", "settings"},
    "scaling": {"lessons", "realtime", "security", "settings"},
    "seed": {"realtime", "settings"},
}
LESSON_SIDE = {"clients", "lab", "tools", "checks", "grading"}
TOP_LEVEL_LIMIT = 12


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imports_at_load(name: str) -> set[str]:
    """The course modules ``name`` imports when it is loaded (not under ``TYPE_CHECKING``)."""
    found: set[str] = set()
    for node in ast.parse(MODULES[name].read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if full in MODULES:
                    found.add(full)
                elif node.module in MODULES:
                    found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in MODULES)
    return found


def part(name: str) -> str:
    """``course_server.lessons.chat`` → ``lessons``; a top-level module → its own name."""
    return name.split(".")[1] if name.count(".") else "course_server"


def server_modules() -> list[str]:
    return sorted(m for m in MODULES if part(m) in SERVER_LAYERS)


def test_at_most_a_dozen_modules_sit_at_the_top_of_the_package() -> None:
    top = sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    assert len(top) <= TOP_LEVEL_LIMIT, top


def test_no_module_imports_itself_back_through_others() -> None:
    graph = {name: imports_at_load(name) for name in MODULES}
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            cycle = [*path[path.index(name) :], name]
            pytest.fail("import cycle: " + " → ".join(cycle))
        if name in done:
            return
        for dependency in graph[name]:
            visit(dependency, [*path, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


@pytest.mark.parametrize("name", server_modules())
def test_a_server_module_imports_only_its_own_layer_and_those_below(name: str) -> None:
    allowed = SERVER_LAYERS[part(name)] | {part(name)}
    outside = {
        dependency
        for dependency in imports_at_load(name)
        if dependency != "course_server" and part(dependency) not in allowed
    }
    assert not outside, f"{name} imports {sorted(outside)}"


def test_the_app_never_imports_what_only_notebooks_and_tests_use() -> None:
    loaded = {"course_server.app"}
    queue = ["course_server.app"]
    while queue:
        for dependency in imports_at_load(queue.pop()):
            if dependency not in loaded:
                loaded.add(dependency)
                queue.append(dependency)
    lesson_side = sorted(m for m in loaded if part(m) in LESSON_SIDE)
    assert not lesson_side, lesson_side


def test_the_test_folders_mirror_the_package() -> None:
    # repo/ holds what spans the repository, mutants/ the wrong solutions; every other folder is
    # named for the subpackage whose modules its tests exercise, and top-level modules keep
    # their tests at the top (tests/test_settings.py).
    tests = Path(__file__).resolve().parent.parent
    folders = {path.name for path in tests.iterdir() if path.is_dir() and path.name[0] != "_"}
    subpackages = {path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    assert sorted(folders - {"repo", "mutants"} - subpackages) == []


def test_every_top_level_test_module_tests_a_top_level_module() -> None:
    tests = Path(__file__).resolve().parent.parent
    top = {path.stem.strip("_") for path in PACKAGE.glob("*.py")}  # test_main: __main__.py
    strays = [path.name for path in tests.glob("test_*.py") if path.stem[5:] not in top]
    assert strays == []


def test_no_test_module_imports_another() -> None:
    # Shared helpers live in modules of their own at the top (browser.py, lobby_clients.py): a
    # test module imported from another folder would fail when that folder runs alone.
    tests = Path(__file__).resolve().parent.parent
    importers = [
        path.relative_to(tests).as_posix()
        for path in tests.rglob("*.py")
        if re.search(r"^(from|import) test_", path.read_text(encoding="utf-8"), re.MULTILINE)
    ]
    assert importers == []
