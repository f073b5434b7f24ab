"""The docs built once per test session, shared by the docs test files.

The build runs in a subprocess (Sphinx's own warnings must not meet pytest's
warnings-as-errors) on a copy of ``docs/``, so the source tree stays clean.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
GENERATED = ("_build", "generated", "auto_examples", "sg_execution_times.rst")


def require_docs_extra() -> None:
    """Skip unless Sphinx, its extensions and the frameworks the API pages import are here."""
    for module in ("sphinx", "numpydoc", "myst_parser", "sphinx_gallery", "pydata_sphinx_theme"):
        pytest.importorskip(module, reason="the docs extra is not installed")
    for framework in ("torch", "jax", "tensorflow", "keras", "skimage"):
        pytest.importorskip(framework)


_BUILT: list[Path] = []  # the session's build, once made


def build_html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the HTML docs with ``-W`` into a temp folder; one build per session."""
    if _BUILT:
        return _BUILT[0]
    source = tmp_path_factory.mktemp("docs") / "docs"
    shutil.copytree(DOCS, source, ignore=shutil.ignore_patterns(*GENERATED))
    out = source / "_build" / "html"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", str(source), str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-4000:]
    _BUILT.append(out)
    return out
