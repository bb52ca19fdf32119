"""The README's `make course` really serves the course: JupyterLab comes up and lists the lessons.

JupyterLab is started by ``tests/lab_launcher.py``: the Makefile's own ``course`` recipe, as
``make -n`` expands it, plus only what a headless run needs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import wait_timeout
from lab_launcher import ROOT, running_lab


@pytest.fixture
def jupyter_lab(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """JupyterLab started by the course command; yields its base URL and token, then stops it."""
    with running_lab(tmp_path) as lab:
        yield lab.url, lab.token


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
