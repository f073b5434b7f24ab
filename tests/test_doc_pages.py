"""The Python blocks of the docs' Markdown pages run as written.

Each page's blocks run in order in one namespace, as a reader pasting them
into one session would. A block preceded by ``<!-- no-test -->`` is skipped
(keep those rare: a line that needs a GPU, say). ``extending.md`` is run by
``tests/test_readme.py``, together with its family's contract check.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = [
    "getting_started",
    "conventions",
    "backends",
    "gradients",
    "registration",
    "stn",
    "samplers",
]
# a ```python fence, and whether the no-test marker sits on the line(s) right before it
BLOCK = re.compile(r"(<!--\s*no-test\s*-->\s*\n)?```python\n(.*?)```", re.S)


def python_blocks(text: str) -> list[tuple[bool, str]]:
    """``(skip, code)`` for each ```python block of a Markdown page, in order."""
    return [(bool(marker), code) for marker, code in BLOCK.findall(text)]


def test_the_marker_skips_only_the_next_block():
    text = "```python\na = 1\n```\n<!-- no-test -->\n```python\nb = 2\n```\n```python\nc = 3\n```"
    assert python_blocks(text) == [(False, "a = 1\n"), (True, "b = 2\n"), (False, "c = 3\n")]


@pytest.mark.parametrize("page", PAGES)
def test_page_code_runs(page, capsys):
    for framework in ("torch", "jax", "tensorflow", "keras"):
        pytest.importorskip(framework)
    path = DOCS / f"{page}.md"
    namespace: dict[str, object] = {"__name__": f"docs_{page}"}
    for index, (skip, code) in enumerate(python_blocks(path.read_text())):
        if skip:
            continue
        try:
            exec(compile(code, f"{path}:block{index}", "exec"), namespace)
        except Exception as error:  # name the page and block, keep the traceback
            raise AssertionError(f"{path.name} block {index} failed: {error!r}") from error
