"""Show the source a lesson runs, so notebooks never carry a pasted copy that could drift."""

from __future__ import annotations

import inspect
from typing import Any


class Source:
    """Source code that renders highlighted in Jupyter and as plain text elsewhere."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __repr__(self) -> str:
        return self.code

    def _repr_markdown_(self) -> str:
        return f"```python\n{self.code}\n```"


def show(*objects: Any) -> Source:
    """The source of functions, classes or modules, in order, separated by a blank line.

    Decorated endpoints are shown with their decorator, exactly as the file has them.
    """
    parts = [inspect.getsource(inspect.unwrap(obj)).rstrip() for obj in objects]
    return Source("\n\n\n".join(parts))
