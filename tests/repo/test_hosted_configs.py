"""Binder and Codespaces set the course up the way the README's `make setup` does."""

from __future__ import annotations

import json
import re
import shlex

from conftest import ROOT


def makefile_install() -> list[str]:
    """The arguments of the Makefile's ``pip install`` of the course (``make setup``)."""
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    [line] = re.findall(r"^\t\$\(BIN\)/python -m pip install (.*-e .*)$", text, re.MULTILINE)
    return shlex.split(line)


def test_binder_installs_what_make_setup_installs() -> None:
    script = (ROOT / "binder" / "postBuild").read_text(encoding="utf-8")
    [line] = re.findall(r"^python -m pip install (.*)$", script, re.MULTILINE)
    assert shlex.split(line) == makefile_install()


def test_binder_accepts_only_its_hub_names() -> None:
    script = (ROOT / "binder" / "start").read_text(encoding="utf-8")
    [hosts] = re.findall(r'^export COURSE_ALLOWED_HOSTS="(.*)"$', script, re.MULTILINE)
    assert "*" not in hosts.split(",")


def test_the_devcontainer_runs_make_setup() -> None:
    config = json.loads((ROOT / ".devcontainer" / "devcontainer.json").read_text(encoding="utf-8"))
    assert config["postCreateCommand"] == "make setup"


def test_the_devcontainer_forwards_jupyters_port_and_names_it_public() -> None:
    config = json.loads((ROOT / ".devcontainer" / "devcontainer.json").read_text(encoding="utf-8"))
    port = config["forwardPorts"][0]
    assert f"-{port}." in config["remoteEnv"]["COURSE_PUBLIC_URL"]
