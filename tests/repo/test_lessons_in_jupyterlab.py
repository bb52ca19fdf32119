"""Every lesson runs to the end in real JupyterLab, in a browser, as a learner runs it.

JupyterLab is started the way the README's `make course` starts it (``tests/lab_launcher.py``),
from a temporary copy of ``notebooks/`` with the stored outputs cleared, so the repository's
outputs are never overwritten and every execution count on the page comes from this run. The
kernel imports this checkout's ``course_server`` (``PYTHONPATH``). Headless Chromium opens each
lesson, clicks Run → Run All Cells, waits (with a deadline) until no cell is queued or running,
and fails on any error output, naming the lesson, the cell and the error. A screenshot of a
failing lesson is kept in pytest's temporary folder; the failure message says where.

Unlike nbval, a browser really loads the lessons' IFrames (chat and notifications pages), so
their WebSockets and EventSources run alongside the cells. Run alone with
``pytest tests/repo/test_lessons_in_jupyterlab.py``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser import bounded_context, ms
from conftest import wait_timeout
from lab_launcher import ROOT, Lab, running_lab
from playwright.sync_api import Browser, Page
from playwright.sync_api import TimeoutError as PlaywrightTimeout

LESSONS = sorted(path.name for path in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

# Seconds for one lesson's Run All; the slowest, lesson 10 (benchmarks), takes about 15 s here.
RUN_ALL_DEADLINE = 240

pytestmark = pytest.mark.browser

# Every code cell's state as the page shows it: its prompt ("[3]:", "[*]:" or "[ ]:") and the
# text of its error outputs. JupyterLab renders errors and stderr with the same MIME type;
# a traceback, or an error's "Name: message" line, is what tells an error apart.
CELLS_JS = """
() => [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell')]
  .map((cell, index) => ({
    index,
    code: cell.classList.contains('jp-CodeCell'),
    prompt: (cell.querySelector('.jp-InputPrompt')?.textContent ?? '').trim(),
    errors: [...cell.querySelectorAll(
      '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
    )].map(output => output.textContent),
  }))
"""

# Done when no code cell is queued or running and either every one has run or one failed
# (JupyterLab then drops the rest of the queue, leaving their prompts empty).
DONE_JS = """
() => {
  const panel = '.jp-NotebookPanel:not(.lm-mod-hidden)';
  const cells = [...document.querySelectorAll(`${panel} .jp-CodeCell`)];
  const prompts = cells.map(c => (c.querySelector('.jp-InputPrompt')?.textContent ?? '').trim());
  if (cells.length === 0 || prompts.some(p => p.includes('*'))) return false;
  const failed = document.querySelector(
    `${panel} [data-mime-type="application/vnd.jupyter.stderr"]`
  ) !== null;
  return prompts.every(p => /\\[\\d+\\]/.test(p)) || failed;
}
"""

# The notebook's kernel connected and idle, as the status bar shows it ("Python 3 (ipykernel) |
# Idle"). The toolbar's execution indicator is no signal: it reads "idle" while the status bar
# still says "No Kernel | Initializing", and Run All in that moment clears every cell's prompt
# and runs nothing (seen under load in CI).
KERNEL_READY_JS = """
() => [...document.querySelectorAll('.jp-StatusBar-TextItem')]
  .map(item => item.textContent.trim())
  .some(text => /^(?!No Kernel).+ \\| Idle$/.test(text))
"""

# An error output as IPython renders it: a traceback, or at least its "SomeError: ..." line.
ERROR = re.compile(r"Traceback|^\w+(Error|Exception|Interrupt)\b", re.MULTILINE)

# Every cell rendered in the page (not only those in view), so the checks above see them all;
# and the notebook's own kernel started without asking: on a freshly started JupyterLab the
# "Select Kernel" dialog can come up, and a learner would click its default, the same kernel.
NOTEBOOK_SETTINGS = '{"windowingMode": "none", "autoStartDefaultKernel": true}'


def cleared_copy(destination: Path) -> Path:
    """The lessons copied into ``destination/notebooks``, outputs and execution counts removed.

    ``benchmarks/`` is linked beside them, as in the repository, for lesson 10's imports.
    """
    notebooks = destination / "notebooks"
    notebooks.mkdir(parents=True)
    for name in LESSONS:
        notebook = json.loads((ROOT / "notebooks" / name).read_text(encoding="utf-8"))
        for cell in notebook["cells"]:
            if cell["cell_type"] == "code":
                cell["outputs"] = []
                cell["execution_count"] = None
        (notebooks / name).write_text(json.dumps(notebook, indent=1), encoding="utf-8")
    (destination / "benchmarks").symlink_to(ROOT / "benchmarks", target_is_directory=True)
    return notebooks


@contextmanager
def lesson_kernels(lab: Lab) -> Iterator[None]:
    """Every kernel is shut down when the lesson ends, passed or failed, with any server it ran."""
    try:
        yield
    finally:
        # trust_env=False: a proxy from the environment must not see requests to 127.0.0.1.
        headers = {"Authorization": f"token {lab.token}"}
        with httpx.Client(trust_env=False, timeout=wait_timeout(10), headers=headers) as client:
            for kernel in client.get(f"{lab.url}/api/kernels").raise_for_status().json():
                client.delete(f"{lab.url}/api/kernels/{kernel['id']}").raise_for_status()


@pytest.fixture(scope="module")
def course_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """JupyterLab serving a cleared copy of the lessons, its kernels importing this checkout."""
    course = tmp_path_factory.mktemp("course")
    cleared_copy(course)
    home = tmp_path_factory.mktemp("jupyter")
    settings = home / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text(NOTEBOOK_SETTINGS, encoding="utf-8")
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    with running_lab(home, root_dir=course, env={"PYTHONPATH": pythonpath}) as lab:
        yield lab


def run_all(page: Page) -> None:
    """Run → Run All Cells, through the menu bar as a learner would."""
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()


def failures(lesson: str, cells: list[dict[str, Any]]) -> list[str]:
    """What went wrong, one line per cell: its error text, or that it never ran."""
    found = []
    for cell in cells:
        errors = [text for text in cell["errors"] if ERROR.search(text)]
        if errors:
            found.append(f"{lesson} cell {cell['index']}: " + "\n".join(errors)[-3000:])
        elif (
            cell["code"]
            and "[" in cell["prompt"]
            and not any(ch.isdigit() for ch in cell["prompt"])
        ):
            found.append(f"{lesson} cell {cell['index']}: did not run ({cell['prompt']!r})")
    return found


@pytest.mark.timeout(wait_timeout(RUN_ALL_DEADLINE) + 120)  # + starting JupyterLab, Chromium
@pytest.mark.parametrize("lesson", LESSONS)
def test_lesson_runs_all_cells_without_error(
    lesson: str, browser: Browser, course_lab: Lab, tmp_path: Path
) -> None:
    with lesson_kernels(course_lab), bounded_context(browser) as context:
        page = context.new_page()
        # A workspace of its own (reset) so no other lesson's tab or kernel is restored.
        workspace = lesson.split("_")[0]
        page.goto(
            f"{course_lab.url}/lab/workspaces/lesson{workspace}/tree/notebooks/{lesson}"
            f"?reset&token={course_lab.token}",
            timeout=ms(60),
        )
        page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell").first.wait_for(
            timeout=ms(60)
        )
        page.wait_for_function(KERNEL_READY_JS, timeout=ms(60), polling=100)
        run_all(page)
        try:
            page.wait_for_function(DONE_JS, timeout=ms(RUN_ALL_DEADLINE), polling=250)
            problems = failures(lesson, page.evaluate(CELLS_JS))
        except PlaywrightTimeout:
            cells = page.evaluate(CELLS_JS)
            unfinished = [
                f"cell {cell['index']} {cell['prompt'] or '(no prompt)'}"
                for cell in cells
                if cell["code"] and not re.search(r"\[\d+\]", cell["prompt"])
            ]
            status = page.locator(".jp-Notebook-ExecutionIndicator").first.get_attribute(
                "data-status"
            )
            problems = [
                f"{lesson}: Run All did not finish in {wait_timeout(RUN_ALL_DEADLINE)} s "
                f"(kernel {status}); not run: {', '.join(unfinished)}"
            ]
        if problems:
            shot = tmp_path / f"{Path(lesson).stem}.png"
            page.screenshot(path=shot, full_page=True)
            pytest.fail("\n\n".join([*problems, f"screenshot: {shot}"]), pytrace=False)
