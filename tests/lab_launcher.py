"""JupyterLab started the way the README's `make course` starts it, for the tests that need one.

The command is the Makefile's own ``course`` recipe, as ``make -n`` expands it, with ``BIN``
pointed at the environment running the tests. ``headless`` adds only what a headless run needs: no
browser, a loopback address, a port the OS picks, a token; ``running_lab`` also puts Jupyter's
runtime, config, data and settings folders in a temporary directory so nothing in your home
directory is read or written.
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
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, wait_timeout

MAKEFILE = ROOT / "Makefile"


@dataclass(frozen=True)
class Lab:
    """A running JupyterLab: its base URL (no trailing slash) and its token."""

    url: str
    token: str


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


def headless(command: list[str], token: str, root_dir: Path = ROOT) -> list[str]:
    """``command`` headless: no browser, 127.0.0.1, a port the OS picks, ``token``, ``root_dir``."""
    return [
        *command,
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        "--ServerApp.port=0",  # the OS picks; the runtime file tells us which
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root_dir}",
    ]


def wait_for_server_info(
    runtime_dir: Path, process: subprocess.Popen[bytes], log: Path
) -> dict[str, Any]:
    """The ``jpserver-PID.json`` Jupyter writes once it listens, or fail by the deadline."""
    deadline = time.monotonic() + wait_timeout(30)
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"jupyter lab exited with {process.returncode}:\n{log.read_text()}")
        found = list(runtime_dir.glob("jpserver-*.json"))
        if found:
            try:
                info: dict[str, Any] = json.loads(found[0].read_text(encoding="utf-8"))
                return info
            except json.JSONDecodeError:
                pass  # caught mid-write; the next poll reads it whole
        time.sleep(0.1)  # polling another process's file: there is no event to wait on
    pytest.fail(f"jupyter lab did not start in time:\n{log.read_text()}")


@contextmanager
def running_lab(
    home: Path, root_dir: Path = ROOT, env: Mapping[str, str] | None = None
) -> Iterator[Lab]:
    """JupyterLab started by the course command from ``root_dir``, its state kept in ``home``.

    ``env`` adds to (or overrides) this process's environment, for the server and its kernels.
    The server's log is ``home / "jupyter.log"``.
    """
    token = secrets.token_hex(16)
    runtime_dir = home / "runtime"
    environment = {
        **os.environ,
        "JUPYTER_RUNTIME_DIR": str(runtime_dir),
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_PLATFORM_DIRS": "1",
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        **(env or {}),
    }
    log = home / "jupyter.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            headless(course_command(), token, root_dir),
            cwd=root_dir,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            info = wait_for_server_info(runtime_dir, process, log)
            yield Lab(url=info["url"].rstrip("/"), token=token)
        finally:
            process.terminate()
            try:
                process.wait(timeout=wait_timeout(10))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
