"""The stored outputs of lessons and solutions: what a reader sees before running anything."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT, load_script

NOTEBOOKS = sorted([*ROOT.glob("notebooks/*.ipynb"), *ROOT.glob("solutions/*.ipynb")])


def output_texts(path: Path) -> list[str]:
    texts = []
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        for output in cell.get("outputs", []):
            texts.append("".join(output.get("text", "")))
            for kind, value in output.get("data", {}).items():
                if kind.startswith("text/"):
                    texts.append("".join(value))
    return texts


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_stored_outputs_hold_no_port_the_kernel_handed_out(path: Path) -> None:
    script = load_script("execute_notebooks")
    ports = [
        match[0]
        for text in output_texts(path)
        for match in script.ADDRESS.finditer(text)
        if int(match[2]) in script.EPHEMERAL
    ]
    assert ports == [], "run scripts/execute_notebooks.py on it (it stores them as PORT)"


def test_the_script_masks_ephemeral_ports_and_keeps_the_ones_a_lesson_writes() -> None:
    script = load_script("execute_notebooks")
    notebook = nbformat.from_dict(
        {
            "cells": [
                {
                    "cell_type": "code",
                    "outputs": [
                        {"output_type": "stream", "text": "at http://127.0.0.1:41234/chat"},
                        {"data": {"text/plain": "Origin 'http://localhost:8888' and [::1]:60999"}},
                    ],
                }
            ]
        }
    )
    script.mask_ports(notebook)
    outputs = notebook["cells"][0]["outputs"]
    assert outputs[0]["text"] == "at http://127.0.0.1:PORT/chat"
    assert outputs[1]["data"]["text/plain"] == "Origin 'http://localhost:8888' and [::1]:PORT"
