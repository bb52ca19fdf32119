"""environment.yml (the conda route) asks for what pyproject.toml (the pip route) asks for."""

from __future__ import annotations

import tomllib

import yaml
from conftest import ROOT
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

# conda-forge packages whose name differs from the PyPI requirement they stand for.
CONDA_TO_PYPI = {
    "fastapi-core": "fastapi",  # conda-forge's `fastapi` is fastapi[standard]
    "uvicorn-standard": "uvicorn[standard]",
    "redis-py": "redis",
    "matplotlib-base": "matplotlib",
    "playwright-python": "playwright",
}
# Tools the conda environment needs to exist at all, not dependencies of the course.
CONDA_ONLY = {"python", "pip"}

Key = tuple[str, frozenset[str], str]


def key(requirement: str) -> Key:
    """Name, extras and version range, normalised: ``PyJWT>=2`` and ``pyjwt>=2`` are equal."""
    req = Requirement(requirement)
    extras = frozenset(canonicalize_name(extra) for extra in req.extras)
    return canonicalize_name(req.name), extras, str(req.specifier)


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def environment() -> dict:
    return yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))


def conda_specs() -> list[str]:
    return [spec for spec in environment()["dependencies"] if isinstance(spec, str)]


def pip_lines() -> list[str]:
    sections = [spec["pip"] for spec in environment()["dependencies"] if isinstance(spec, dict)]
    assert len(sections) == 1, "environment.yml should have exactly one pip: section"
    return sections[0]


def conda_requirements() -> set[Key]:
    """Every course dependency environment.yml installs, in PyPI terms."""
    keys: set[Key] = set()
    for spec in conda_specs():
        req = Requirement(spec)
        if req.name in CONDA_ONLY:
            continue
        keys.add(key(CONDA_TO_PYPI.get(req.name, req.name) + str(req.specifier)))
    keys |= {key(line) for line in pip_lines() if not line.startswith("-")}
    return keys


def test_environment_has_the_course_name_and_only_conda_forge() -> None:
    env = environment()
    assert env["name"] == "realtime-course"
    assert env["channels"] == ["conda-forge"]


def test_environment_asks_for_every_pyproject_dependency_at_the_same_minimum() -> None:
    project = pyproject()
    extras = project["optional-dependencies"]
    wanted = {key(r) for r in project["dependencies"] + extras["dev"] + extras["bench"]}
    found = conda_requirements()
    assert sorted(wanted - found) == [], "in pyproject.toml, missing from environment.yml"
    assert sorted(found - wanted) == [], "in environment.yml, not in pyproject.toml"


def test_environment_and_pyproject_agree_on_the_python_minimum() -> None:
    pythons = [Requirement(spec) for spec in conda_specs() if Requirement(spec).name == "python"]
    assert [str(p.specifier) for p in pythons] == [pyproject()["requires-python"]]


def test_environment_installs_the_course_package_itself_editable() -> None:
    assert "-e ." in pip_lines()


def test_the_conda_name_of_a_pypi_package_counts_as_that_package() -> None:
    """The normalisation the comparison relies on: renames, extras, case and separators."""
    assert key("PyJWT>=2.10") == key("pyjwt>=2.10")
    assert key("nest_asyncio>=1.6") == key("nest-asyncio>=1.6")
    assert key(CONDA_TO_PYPI["uvicorn-standard"] + ">=0.35") == key("uvicorn[standard]>=0.35")
