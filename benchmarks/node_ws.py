"""Node's ``ws`` library as a peer design: find ``node``, install ``ws`` once, run its server.

``prepare()`` installs the ``ws`` version pinned in ``benchmarks/package-lock.json`` (``npm ci``)
into a cache folder outside the repository, once, and reuses it after; it returns why the peer
cannot run here (no ``node``, no ``npm``, the registry out of reach), or ``None``.

``python -m benchmarks.node_ws --port 0`` becomes ``node benchmarks/node_ws_server.js --port 0``
in the same process (``exec``): the one launcher (``course_server.tools.processes.start``) starts
it like every other design, reads the URL it prints, and measures the CPU and memory of the
process that serves, which is node's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SERVER = HERE / "node_ws_server.js"
PINNED = ("package.json", "package-lock.json")  # copied into the cache, installed by ``npm ci``
NO_NODE = "node not found: skipping Node ws peer"
INSTALL_TIMEOUT = 50.0  # seconds: ws is one small tarball; offline, npm fails well before this
# npm's own defaults retry for minutes and wait 5 minutes on a registry that does not answer.
NPM_PATIENCE = (
    "--fetch-retries=1",
    "--fetch-retry-mintimeout=1000",
    "--fetch-retry-maxtimeout=5000",
)


def cache_dir() -> Path:
    """Where ``ws`` is installed: ``$XDG_CACHE_HOME/course-bench/node`` (default ``~/.cache``)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "course-bench" / "node"


def pinned_version() -> str:
    """The ``ws`` version ``benchmarks/package-lock.json`` pins."""
    lock = json.loads((HERE / "package-lock.json").read_text())
    return str(lock["packages"]["node_modules/ws"]["version"])


def installed_version(cache: Path) -> str | None:
    manifest = cache / "node_modules" / "ws" / "package.json"
    if not manifest.exists():
        return None
    return str(json.loads(manifest.read_text()).get("version"))


def prepare() -> str | None:
    """Install the pinned ``ws`` unless the cache has it; why the peer cannot run, or ``None``."""
    if shutil.which("node") is None:
        return NO_NODE
    cache = cache_dir()
    if installed_version(cache) == pinned_version():
        return None
    npm = shutil.which("npm")
    if npm is None:
        return "npm not found: skipping Node ws peer"
    cache.mkdir(parents=True, exist_ok=True)
    for name in PINNED:
        shutil.copyfile(HERE / name, cache / name)
    command = [npm, "ci", "--prefix", str(cache), "--no-audit", "--no-fund", "--loglevel=error"]
    command += [*NPM_PATIENCE, f"--fetch-timeout={int(INSTALL_TIMEOUT * 1000 / 3)}"]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        return f"npm ci took over {INSTALL_TIMEOUT:.0f} s (offline?): skipping Node ws peer"
    if done.returncode != 0 or installed_version(cache) != pinned_version():
        said = (done.stderr.strip().splitlines() or ["no error output"])[0]  # npm's error code
        return f"npm could not install ws ({said}): skipping Node ws peer"
    return None


def main(argv: list[str]) -> int:
    """Prepare, then become ``node node_ws_server.js ARGV`` (the same process, the same pid)."""
    reason = prepare()
    node = shutil.which("node")
    if reason is not None or node is None:
        print(reason or NO_NODE, file=sys.stderr)
        return 1
    env = {**os.environ, "NODE_PATH": str(cache_dir() / "node_modules")}
    os.execve(node, [node, str(SERVER), *argv], env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
