"""Execute notebooks in place and store their outputs, as nbval will compare them.

Usage: python scripts/execute_notebooks.py notebooks/01_polling_vs_websockets.ipynb [...]

Run it after editing a lesson; commit the notebook with its fresh outputs. Each notebook runs in
a new kernel from this environment, from the notebook's own folder, like JupyterLab does.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

# Ports the kernel hands out (Linux's ephemeral range): a server on port 0, a client's own end.
# Stored as PORT, they keep every re-run's diff to what changed; a port a lesson writes itself
# (an Origin of http://127.0.0.1:8888) is below the range and stays as written.
ADDRESS = re.compile(r"(127\.0\.0\.1|localhost|\[::1\]):(\d+)\b")
EPHEMERAL = range(32768, 61000)


def mask_ports(notebook: nbformat.NotebookNode) -> None:
    """Replace every ephemeral port in the outputs with ``PORT`` (nbval masks all ports)."""

    def mask(text: str) -> str:
        return ADDRESS.sub(lambda m: f"{m[1]}:PORT" if int(m[2]) in EPHEMERAL else m[0], text)

    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if "text" in output:
                output["text"] = mask(output["text"])
            for kind, value in output.get("data", {}).items():
                if kind.startswith("text/") and isinstance(value, str):
                    output["data"][kind] = mask(value)


def execute(path: Path, timeout: int) -> float:
    notebook = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    elapsed = time.perf_counter() - started
    # Execution counts and timestamps would churn every diff; nbval ignores them anyway.
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
    mask_ports(notebook)
    nbformat.write(notebook, path)
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--timeout", type=int, default=120, help="seconds per cell")
    args = parser.parse_args(argv)
    for path in args.notebooks:
        print(f"{path}: {execute(path, args.timeout):.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
