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
