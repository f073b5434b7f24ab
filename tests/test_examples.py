"""Every script in examples/ runs as written, with a few training steps."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
# short settings per script; each script also runs without them, only longer
SHORT_RUNS = {
    "minimal_stn.py": ["--steps", "3"],
    "icstn.py": ["--steps", "3", "--warps", "2"],
    "stn_keypoints.py": ["--steps", "3"],
}


# examples run at a small size by the test of what they show
TESTED_ELSEWHERE = {"dask_gigapixel.py": "tests/test_distributed.py"}


def test_every_example_has_a_short_run():
    scripts = sorted(path.name for path in EXAMPLES.glob("*.py"))
    assert scripts == sorted([*SHORT_RUNS, *TESTED_ELSEWHERE])


@pytest.mark.parametrize("script", sorted(SHORT_RUNS))
def test_example_runs(script):
    result = subprocess.run(
        [sys.executable, "-W", "error", str(EXAMPLES / script), *SHORT_RUNS[script]],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "step    3" in result.stdout, result.stdout
