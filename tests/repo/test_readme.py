"""The README tells the truth: its commands, settings, endpoints, lessons and files exist."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import ROOT
from fastapi import FastAPI
from starlette.routing import Match

import course_server.settings
from course_server import Settings, create_app
from course_server.lab.reference import endpoints

README = (ROOT / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    """The README's ``## title`` section, up to the next ``## ``."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.M | re.S)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


def code_blocks(text: str) -> list[str]:
    return re.findall(r"^```[a-z]*\n(.*?)^```", text, re.M | re.S)


def table(text: str) -> list[list[str]]:
    """Rows of the first markdown table in ``text``, cells stripped of backticks and spacing."""
    rows = []
    for line in text.splitlines():
        if re.fullmatch(r"\|[-|\s]+\|", line.strip()):
            continue  # the line under the header
        if line.startswith("|"):
            cells = line.strip().strip("|").split("|")
            rows.append([" ".join(cell.replace("`", "").split()) for cell in cells])
        elif rows:
            break
    assert rows, "no table found"
    return rows[1:]  # without the header


def make_targets() -> set[str]:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([A-Za-z][\w-]*):(?!=)", makefile, re.M))


def test_quickstart_is_exactly_make_course_and_make_test() -> None:
    blocks = code_blocks(section("Quickstart"))
    commands = [line.strip() for block in blocks for line in block.splitlines() if line.strip()]
    assert commands == ["make course", "make test"]


def test_makefile_has_the_quickstart_targets() -> None:
    assert {"course", "test"} <= make_targets()


def test_make_test_runs_the_typecheck() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    rules = dict(re.findall(r"^([A-Za-z][\w-]*):(?!=)([^#\n]*)", makefile, re.M))
    assert "typecheck" in rules["test"].split()
    assert re.search(r"^typecheck:.*\n\t\$\(BIN\)/python -m mypy$", makefile, re.M)


def test_ci_runs_make_test() -> None:
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in [line.strip() for line in script.splitlines()]


def test_settings_table_is_the_one_in_the_settings_module() -> None:
    assert table(section("Settings")) == table(course_server.settings.__doc__ or "")


def test_settings_table_lists_every_variable_the_code_reads() -> None:
    source = Path(course_server.settings.__file__).read_text(encoding="utf-8")
    code = source.split('"""', 2)[2]  # after the module docstring
    read = set(re.findall(r"\"(COURSE_[A-Z_]+)\"", code))
    assert {row[0] for row in table(section("Settings"))} == read


def routed(app: FastAPI, method: str, path: str) -> bool:
    """Does the app route ``METHOD path`` (``WS`` for a WebSocket) to an endpoint?"""
    kind = "websocket" if method == "WS" else "http"
    concrete = re.sub(r"\{[^}]+\}", "x", path)  # a value for every path parameter
    scope = {"type": kind, "method": method, "path": concrete, "root_path": "", "headers": []}
    return any(route.matches(scope)[0] == Match.FULL for route in app.router.routes)


def test_every_endpoint_in_the_readme_exists_in_the_app() -> None:
    app = create_app(Settings())
    listed = [row[0].split(" ", 1) for row in table(section("The server on its own"))]
    assert [" ".join(endpoint) for endpoint in listed if not routed(app, *endpoint)] == []


def test_every_endpoint_of_the_app_is_in_the_readme() -> None:
    listed = {row[0] for row in table(section("The server on its own"))}
    served = {
        f"{method} {endpoint.path}"
        for endpoint in endpoints(create_app(Settings()))
        for method in endpoint.method.split(", ")
        if method != "HEAD"  # Starlette adds HEAD to every GET
    }
    assert sorted(served - listed) == []


def test_the_endpoint_check_tells_a_missing_endpoint_from_a_present_one() -> None:
    app = create_app(Settings())
    assert routed(app, "GET", "/healthz")
    assert not routed(app, "POST", "/healthz")
    assert not routed(app, "WS", "/healthz")
    assert not routed(app, "GET", "/no-such-endpoint")


def test_lessons_marked_available_are_exactly_the_notebooks() -> None:
    rows = table(section("The lessons"))
    assert [row[0] for row in rows] == [f"{n:02d}" for n in range(12)]
    available = {f"{row[1]}.ipynb" for row in rows if row[3] == "available"}
    assert available == {path.name for path in (ROOT / "notebooks").glob("*.ipynb")}


def layout_paths() -> list[str]:
    """Every path the README's layout names, from the indentation (two spaces per folder level).

    Lines indented as far as the descriptions continue the line above; ``a.py, b.py`` stands for
    several files and names none.
    """
    (block,) = code_blocks(section("Repository layout"))
    paths: list[str] = []
    folders: list[str] = []  # the folder at each depth
    for line in block.splitlines():
        match = re.match(r"^( *)(\S+)", line)
        if match is None or len(match.group(1)) >= 10 or "," in match.group(2):
            continue
        depth, name = len(match.group(1)) // 2, match.group(2)
        folders = folders[:depth]
        paths.append("".join(folders) + name)
        if name.endswith("/"):
            folders.append(name)
    return paths


def test_repository_layout_names_only_files_that_exist() -> None:
    missing = [path for path in layout_paths() if not (ROOT / path).exists()]
    assert missing == []


def test_the_readme_layout_names_every_module_of_the_package_and_no_other() -> None:
    modules = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "course_server").rglob("*.py")
        if path.name != "__init__.py"
    }
    named = {path for path in layout_paths() if path.startswith("course_server/")}
    assert sorted(modules - named) == []
