"""Where a worker runs: its isolation, environment and limits, and the end of its process tree.

Three isolations, the strongest the machine allows (``choose``):

- ``bwrap`` (bubblewrap): new user, PID, network, IPC and UTS namespaces, no capabilities; the
  filesystem is a tmpfs holding only ``/usr``, Python, the ``course_server`` package and a few
  files of ``/etc``, read-only, and ``/home/learner`` holding the notebook (read-only); it
  writes only to ``/tmp`` and ``/home/learner``, small tmpfs of its own. Loopback is up (the
  checks serve on 127.0.0.1), nothing else. When the worker ends, the PID namespace ends and
  every process left in it with it.
- ``uid`` (the grader runs as root, without bubblewrap): the worker runs as a user of its own
  (``UID_BASE + slot``); afterwards everything that user runs is killed.
- ``group``: the worker leads a new session and its process group is killed afterwards. A
  process that calls ``setsid`` escapes that; so does reading what the grader's user can read.

In every case: the environment is scrubbed (``environment``), the folder is a temporary one
holding a copy of the notebook, and the worker sets ``Limits`` on itself before any learner
code runs (soft = hard: only root can raise them again, which is why ``group`` as root is weak).
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import functools
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import course_server

UID_BASE = 64000
"""Workers in ``uid`` isolation run as ``UID_BASE + slot``: users nothing else should use."""
HOME = "/home/learner"
"""The submission's folder as the worker sees it under bubblewrap."""
SCRATCH = 64 << 20
"""Bytes the worker may write under bubblewrap, in ``/tmp`` and in ``HOME`` each (memory)."""
ETC = (
    *("hosts", "nsswitch.conf", "localtime", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "ssl"),
    *("chromium.d", "fonts"),  # Debian's chromium script reads its flags there (exercise 04.3)
)


class Isolation(enum.StrEnum):
    BWRAP = "bwrap"
    UID = "uid"
    GROUP = "group"


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one worker may use; the worker applies them to itself (``apply``).

    Memory is bounded by ``RLIMIT_DATA`` (what a process writes: heap and private mappings),
    not ``RLIMIT_AS``: Chromium (exercise 04.3's checks) reserves tens of GB of address space
    it never touches, and would not start under a 2 GB ``RLIMIT_AS``.
    """

    cpu_seconds: int = 300
    memory_bytes: int = 2 << 30
    open_files: int = 1024
    processes: int = 512  # threads count: each check serves from threads of its own
    file_bytes: int = 64 << 20

    def apply(self) -> None:
        for limit, value in (
            (resource.RLIMIT_CPU, self.cpu_seconds),
            (resource.RLIMIT_DATA, self.memory_bytes),
            (resource.RLIMIT_NOFILE, self.open_files),
            (resource.RLIMIT_NPROC, self.processes),
            (resource.RLIMIT_FSIZE, self.file_bytes),
            (resource.RLIMIT_CORE, 0),
        ):
            resource.setrlimit(limit, (value, value))


def package_root() -> Path:
    """The folder that holds the ``course_server`` package the grader runs."""
    return Path(course_server.__file__).resolve().parent.parent


def environment(home: str) -> dict[str, str]:
    """All the worker gets: what Python needs, a HOME in its folder, the checks' time factor."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": home,
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(package_root()),
        "PYTHONDONTWRITEBYTECODE": "1",
        "MALLOC_ARENA_MAX": "2",  # each thread's arena is writable memory under RLIMIT_DATA
    }
    factor = os.environ.get("COURSE_CHECK_TIMEOUT_FACTOR")
    if factor:
        env["COURSE_CHECK_TIMEOUT_FACTOR"] = factor
    return env


def _python_folders() -> list[str]:
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    folders = {*prefixes, *(os.path.realpath(p) for p in prefixes)}
    folders.add(os.path.dirname(os.path.realpath(sys.executable)))
    return sorted(folders)


def bwrap_prefix(folder: Path) -> list[str]:
    """The ``bwrap`` command line that runs a command in ``folder``, seen as ``HOME``."""
    bwrap = shutil.which("bwrap") or "bwrap"
    args = [bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--cap-drop", "ALL"]
    args += ["--die-with-parent", "--new-session", "--uid", "65534", "--gid", "65534"]
    args += ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    # /tmp first: Python or the package may live below it, and a later mount would hide them.
    args += ["--proc", "/proc", "--dev", "/dev", "--size", str(SCRATCH), "--tmpfs", "/tmp"]
    for name in ETC:
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    for mount in [*_python_folders(), str(package_root() / "course_server")]:
        args += ["--ro-bind", mount, mount]
    # HOME is a small tmpfs too, not the folder on disk: writes cannot fill the grader's disk.
    args += ["--size", str(SCRATCH), "--tmpfs", HOME]
    for path in sorted(folder.iterdir()):
        args += ["--ro-bind", str(path), f"{HOME}/{path.name}"]
    return [*args, "--chdir", HOME]


def worker_command(isolation: Isolation, folder: Path, channel_fd: int) -> list[str]:
    """The command line that starts a worker for the submission in ``folder``."""
    worker = [sys.executable, "-m", "course_server.grading", str(channel_fd)]
    return [*bwrap_prefix(folder), *worker] if isolation is Isolation.BWRAP else worker


def home(isolation: Isolation, folder: Path) -> str:
    return HOME if isolation is Isolation.BWRAP else str(folder)


def prepare(isolation: Isolation, folder: Path, slot: int) -> None:
    """Let the worker's user write its folder (``uid`` isolation)."""
    if isolation is Isolation.UID:
        for path in [folder, *folder.iterdir()]:
            os.chown(path, UID_BASE + slot, UID_BASE + slot)


def user(isolation: Isolation, slot: int) -> int | None:
    return UID_BASE + slot if isolation is Isolation.UID else None


def works(isolation: Isolation) -> bool:
    """Can a worker start so? (A probe: a container may forbid namespaces, /root may be shut.)"""
    command = [sys.executable, "-c", "import course_server.checks"]
    uid = UID_BASE if isolation is Isolation.UID else None
    try:
        with tempfile.TemporaryDirectory(prefix="grade-probe-") as folder:
            probe = Path(folder)
            if isolation is Isolation.BWRAP:
                command = [*bwrap_prefix(probe), *command]
            done = subprocess.run(
                command, env=environment(home(isolation, probe)), cwd="/", user=uid,
                group=uid, extra_groups=[] if uid is not None else None, capture_output=True,
                timeout=30, check=False,
            )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


@functools.cache
def choose(requested: str = "auto") -> Isolation:
    """The isolation asked for, or with ``auto`` the strongest one that works here."""
    if requested != "auto":
        return Isolation(requested)
    if shutil.which("bwrap") and works(Isolation.BWRAP):
        return Isolation.BWRAP
    if os.geteuid() == 0 and works(Isolation.UID):
        return Isolation.UID
    return Isolation.GROUP


def _processes_of(uid: int) -> list[int]:
    """The live processes of ``uid`` (a zombie is dead: it waits only for its parent)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                if entry.stat().st_uid != uid:
                    continue
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state not in ("Z", "X"):
                    found.append(int(entry.name))
    return found


def _kill_user(uid: int) -> None:
    """Kill every process of ``uid``: as that user, ``kill(-1)`` reaches all of them at once."""
    for _ in range(50):
        if not _processes_of(uid):
            return
        pid = os.fork()
        if pid == 0:  # the child becomes the user, so kill(-1) reaches only that user's processes
            try:
                os.setgid(uid)
                os.setuid(uid)
                os.kill(-1, signal.SIGKILL)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        time.sleep(0.01)  # a killed process leaves /proc when reaped: poll, bounded


def end(isolation: Isolation, process: subprocess.Popen[bytes], slot: int) -> None:
    """End the worker and every process it started."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # the worker leads its own session and group
    process.wait()
    uid = user(isolation, slot)
    if uid is not None:
        _kill_user(uid)
