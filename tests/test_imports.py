"""geowarp imports no framework until the user passes one of its arrays."""

from __future__ import annotations

import subprocess
import sys


def test_numpy_warp_imports_no_framework():
    code = (
        "import sys, numpy as np, geowarp as gw\n"
        "image = np.zeros((1, 1, 4, 4))\n"
        "gw.warp(image, gw.Affine(np.eye(2, 3)))\n"
        "gw.warp(image, gw.ThinPlateSpline(np.eye(3, 2), np.eye(3, 2)))\n"
        "print(sorted(m for m in ('torch', 'jax', 'tensorflow', 'keras') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_every_module_that_imports_an_optional_library_is_skipped_without_it():
    # A module that imports an optional library when imported (at its top level)
    # must lie under a path that the root conftest leaves out where that library is
    # missing: otherwise its doctests stop collection in a session without it (nox
    # installs one framework per test session).
    import ast
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("root_conftest", root / "conftest.py")
    assert spec is not None
    assert spec.loader is not None
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    # the libraries of pyproject's optional extras that geowarp's modules import
    optional = {"torch", "jax", "tensorflow", "keras", "dask", "distributed", "numba"}
    unguarded = []
    for path in sorted((root / "geowarp").rglob("*.py")):
        module = path.relative_to(root).as_posix()
        for node in ast.parse(path.read_text()).body:
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for library in {name.split(".")[0] for name in names} & optional:
                # distributed comes with the dask extra
                guards = conftest._ADAPTERS.get("dask" if library == "distributed" else library, [])
                if not any(module.startswith(guard) for guard in guards):
                    unguarded.append(f"{module} imports {library}")
    assert unguarded == []
