"""The README's Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs(code):
    pytest.importorskip("torch")
    exec(compile(code, str(README), "exec"), {})


EXTENDING = Path(__file__).resolve().parents[1] / "docs" / "extending.md"


def test_extending_guide_runs_and_its_family_keeps_the_contract():
    namespace: dict[str, object] = {}
    for code in re.findall(r"```python\n(.*?)```", EXTENDING.read_text(), re.S):
        exec(compile(code, str(EXTENDING), "exec"), namespace)
    namespace["test_lens_keeps_the_contract"]()  # type: ignore[operator]
