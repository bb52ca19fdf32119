"""The README's `make course` really serves the course: JupyterLab comes up and lists the lessons.

The command is the Makefile's own ``course`` recipe, as ``make -n`` expands it, with ``BIN``
pointed at the environment running the tests. The test adds only what a headless run needs: no
browser, a loopback address, a port the OS picks, a token, and Jupyter's runtime, config and
data folders in a temporary directory so nothing in your home directory is read or written.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import wait_timeout

ROOT = Path(__file__).resolve().parent.parent
MAKEFILE = ROOT / "Makefile"


def course_command(makefile: Path = MAKEFILE) -> list[str]:
    """The ``jupyter lab`` line of ``make course``, with this environment's ``bin`` folder."""
    if shutil.which("make") is None:
        if os.environ.get("CI"):
            pytest.fail("make is not installed: the README's quickstart needs it")
        pytest.skip("make is not installed")
    bin_dir = Path(sys.executable).parent
    # PYTHON is given only so make skips its search for an interpreter; the recipe uses BIN.
    variables = [f"BIN={bin_dir}", f"PYTHON={sys.executable}"]
    dry_run = subprocess.run(
        ["make", "--no-print-directory", "-n", "-f", str(makefile), "course", *variables],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=wait_timeout(10),
        check=True,
    )
    lines = [line for line in dry_run.stdout.splitlines() if " lab" in line and "jupyter" in line]
    assert len(lines) == 1, (
        f"expected one `jupyter lab` line in `make -n course`:\n{dry_run.stdout}"
    )
    return shlex.split(lines[0])


def headless(command: list[str], token: str) -> list[str]:
    return [
        *command,
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        "--ServerApp.port=0",  # the OS picks; the runtime file tells us which
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={ROOT}",
    ]


def wait_for_server_info(runtime_dir: Path, process: subprocess.Popen[bytes], log: Path) -> dict:
    """The ``jpserver-PID.json`` Jupyter writes once it listens, or fail by the deadline."""
    deadline = time.monotonic() + wait_timeout(30)
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"jupyter lab exited with {process.returncode}:\n{log.read_text()}")
        found = list(runtime_dir.glob("jpserver-*.json"))
        if found:
            try:
                return json.loads(found[0].read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                pass  # caught mid-write; the next poll reads it whole
        time.sleep(0.1)  # polling another process's file: there is no event to wait on
    pytest.fail(f"jupyter lab did not start in time:\n{log.read_text()}")


@pytest.fixture
def jupyter_lab(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """JupyterLab started by the course command; yields its base URL and token, then stops it."""
    token = secrets.token_hex(16)
    runtime_dir = tmp_path / "runtime"
    env = {
        **os.environ,
        "JUPYTER_RUNTIME_DIR": str(runtime_dir),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_DATA_DIR": str(tmp_path / "data"),
        "JUPYTER_PLATFORM_DIRS": "1",
    }
    log = tmp_path / "jupyter.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            headless(course_command(), token),
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            info = wait_for_server_info(runtime_dir, process, log)
            yield info["url"].rstrip("/"), token
        finally:
            process.terminate()
            try:
                process.wait(timeout=wait_timeout(10))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def get(url: str, token: str, path: str) -> Any:
    # trust_env=False: a proxy from the environment must not see requests to 127.0.0.1.
    with httpx.Client(trust_env=False, timeout=wait_timeout(10)) as client:
        response = client.get(url + path, headers={"Authorization": f"token {token}"})
    assert response.status_code == 200, f"{path}: {response.status_code} {response.text[:200]}"
    return response


def test_make_course_serves_jupyterlab_with_every_lesson(
    jupyter_lab: tuple[str, str],
) -> None:
    url, token = jupyter_lab
    listing = get(url, token, "/api/contents/notebooks?content=1").json()
    served = {item["name"] for item in listing["content"] if item["type"] == "notebook"}
    on_disk = {path.name for path in (ROOT / "notebooks").glob("*.ipynb")}
    assert "00_start_here.ipynb" in served
    assert served == on_disk
    opened = get(url, token, "/api/contents/notebooks/00_start_here.ipynb?content=0").json()
    assert opened["type"] == "notebook"
    assert "JupyterLab" in get(url, token, "/lab").text
