"""The environment check: each check's verdicts, the report's format, the command line."""

from __future__ import annotations

import importlib.metadata
import io
import os
import platform
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import ROOT, wait_timeout
from packaging.requirements import Requirement

from course_server import doctor
from course_server.doctor import Check


@pytest.fixture
def fake_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An installed distribution (real metadata on sys.path) with one satisfied, one unmet extra."""
    info = tmp_path / "fake_course_dep-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\n"
        "Name: fake-course-dep\n"
        "Version: 1.0\n"
        "Provides-Extra: present\n"
        "Provides-Extra: absent\n"
        'Requires-Dist: pytest; extra == "present"\n'
        'Requires-Dist: no-such-package-for-the-course; extra == "absent"\n',
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return "fake-course-dep"


def executable(path: Path, script: str) -> str:
    path.write_text(f"#!/bin/sh\n{script}\n", encoding="utf-8")
    path.chmod(0o755)
    return str(path)


def test_python_check_accepts_this_interpreter() -> None:
    assert doctor.check_python(">=3.11") == Check("python", "OK", platform.python_version())


def test_python_check_fails_below_the_minimum_and_says_what_to_do() -> None:
    check = doctor.check_python(">=99")
    assert check.status == "FAIL"
    assert "needs >=99" in check.detail
    assert "Python 3.11 or newer" in check.hint


def test_requirements_are_read_from_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    needs = doctor.requirements()
    assert [str(r) for r in needs.runtime] == [str(Requirement(r)) for r in project["dependencies"]]
    dev = project["optional-dependencies"]["dev"]
    assert [str(r) for r in needs.dev] == [str(Requirement(r)) for r in dev]
    assert str(needs.python) == project["requires-python"]


def test_installed_package_at_a_good_version_is_ok() -> None:
    assert doctor.check_package("pytest>=1") == Check(
        "pytest", "OK", importlib.metadata.version("pytest")
    )


def test_missing_package_fails_with_an_install_hint() -> None:
    check = doctor.check_package("no-such-package-for-the-course>=1")
    assert (check.status, check.detail) == ("FAIL", "not installed")
    assert "make setup" in check.hint


def test_too_old_package_fails_naming_both_versions() -> None:
    check = doctor.check_package("pytest>=999")
    assert check.status == "FAIL"
    assert check.detail == f"{importlib.metadata.version('pytest')} installed, >=999 needed"


def test_a_dev_tool_problem_is_only_a_warning() -> None:
    check = doctor.check_package("no-such-package-for-the-course", needed=False)
    assert check.status == "WARN"
    assert "the server does not" in check.detail


def test_extra_with_its_packages_installed_is_ok(fake_distribution: str) -> None:
    check = doctor.check_package(f"{fake_distribution}[present]>=1")
    assert check == Check("fake-course-dep[present]", "OK", "1.0")


def test_extra_missing_a_package_fails_naming_it(fake_distribution: str) -> None:
    check = doctor.check_package(f"{fake_distribution}[absent]")
    assert check.status == "FAIL"
    assert "without no-such-package-for-the-course" in check.detail


def test_find_redis_server_returns_an_executable() -> None:
    binary = doctor.find_redis_server()
    assert binary is not None
    assert os.access(binary, os.X_OK)


def test_redis_check_starts_a_real_server_and_pings_it() -> None:
    check = doctor.check_redis(timeout=wait_timeout(10))
    assert check.status == "OK", check
    assert check.detail.endswith("answered PING")


def test_redis_check_fails_for_a_binary_that_does_not_exist(tmp_path: Path) -> None:
    check = doctor.check_redis(str(tmp_path / "redis-server"), timeout=wait_timeout(5))
    assert check.status == "FAIL"
    assert "apt-get install redis-server" in check.hint


def test_redis_check_fails_when_the_server_exits(tmp_path: Path) -> None:
    binary = executable(tmp_path / "redis-server", "exit 3")
    check = doctor.check_redis(binary, timeout=wait_timeout(5))
    assert check.status == "FAIL"
    assert "exited with code 3" in check.detail


def test_redis_check_gives_up_at_its_deadline(tmp_path: Path) -> None:
    binary = executable(tmp_path / "redis-server", "exec sleep 30")
    check = doctor.check_redis(binary, timeout=0.3)
    assert check.status == "FAIL"
    assert "did not answer PING in time" in check.detail


def test_browser_check_warns_with_the_apt_command_when_none_is_found() -> None:
    check = doctor.check_browser(["no-such-browser-for-the-course"])
    assert check.status == "WARN"
    assert "sudo apt-get install chromium" in check.hint


def test_browser_check_warns_when_the_browser_does_not_run(tmp_path: Path) -> None:
    broken = executable(tmp_path / "chromium", "exit 1")
    check = doctor.check_browser([broken])
    assert check.status == "WARN"
    assert check.detail == f"{broken} --version failed"


@pytest.mark.skipif(
    not any(shutil.which(name) for name in doctor.BROWSERS), reason="no Chromium installed"
)
def test_browser_check_reports_the_version_of_an_installed_chromium() -> None:
    check = doctor.check_browser(timeout=wait_timeout(10))
    assert check.status == "OK", check
    assert any(word in check.detail for word in ("Chromium", "Chrome"))


def test_report_prints_one_line_per_check_and_a_hint_under_problems() -> None:
    out = io.StringIO()
    checks = [Check("python", "OK", "3.11.7"), Check("chromium", "WARN", "none found", "install")]
    doctor.report(checks, file=out)
    assert out.getvalue().splitlines() == [
        "[ OK ] python 3.11.7",
        "[WARN] chromium none found",
        "       -> install",
    ]


def test_report_without_versions_leaves_out_only_what_passed_checks_found() -> None:
    out = io.StringIO()
    checks = [Check("python", "OK", "3.11.7"), Check("redis", "FAIL", "not installed", "pip")]
    doctor.report(checks, versions=False, file=out)
    assert out.getvalue().splitlines() == [
        "[ OK ] python",
        "[FAIL] redis not installed",
        "       -> pip",
    ]


def test_command_line_prints_the_report_and_exits_zero_on_this_machine() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "course_server.doctor"],
        capture_output=True,
        text=True,
        timeout=wait_timeout(30),
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"[ OK ] python {platform.python_version()}"
    assert any(line.startswith("[ OK ] redis-server ") for line in lines)


def test_command_line_exits_one_and_names_the_failures(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    checks = [Check("python", "OK", "3.11.7"), Check("redis", "FAIL", "not installed", "pip")]
    monkeypatch.setattr(doctor, "run_checks", lambda: checks)
    assert doctor.main() == 1
    out, err = capsys.readouterr()
    assert out.startswith("[ OK ] python 3.11.7\n[FAIL] redis not installed\n")
    assert "1 problem(s) to fix: redis" in err
