"""Bad input fails early with an error that names the argument and shows what came."""

from __future__ import annotations

import numpy as np
import pytest

import geowarp as gw

IMAGE = np.zeros((2, 1, 4, 4))
GRID = np.zeros((2, 3, 3, 2))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: gw.sample(IMAGE, GRID, mode="cubic"), gw.GeowarpValueError, "mode must be one of"),
        (lambda: gw.sample(IMAGE, GRID, padding="wrap"), gw.GeowarpValueError, "padding must"),
        (lambda: gw.sample(IMAGE[0], GRID), gw.GeowarpValueError, r"image must .*\(1, 4, 4\)"),
        (lambda: gw.sample(IMAGE, GRID[..., :1]), gw.GeowarpValueError, r"grid must .*"),
        (lambda: gw.sample(IMAGE, np.zeros((3, 3, 3, 2))), gw.GeowarpValueError, "batch 2"),
        (lambda: gw.sample(IMAGE, GRID.astype(int)), gw.GeowarpTypeError, "grid must have a real"),
        (
            lambda: gw.sample(IMAGE, GRID, padding="constant", fill_value=np.zeros(3)),
            gw.GeowarpValueError,
            "fill_value",
        ),
        (lambda: gw.Affine(np.zeros((2, 2))), gw.GeowarpValueError, r"matrix must .*\(2, 2\)"),
        (lambda: gw.Affine(np.eye(2, 3, dtype=int)), gw.GeowarpTypeError, "matrix must have"),
        (lambda: gw.Projective(np.eye(2, 3)), gw.GeowarpValueError, "matrix must"),
        (lambda: gw.Affine.from_params(np.zeros(5)), gw.GeowarpValueError, r"params .*\(5,\)"),
        (lambda: gw.Affine(np.eye(2, 3)).apply(np.zeros(2)), gw.GeowarpValueError, "points"),
        (
            lambda: gw.ThinPlateSpline(np.zeros((4, 2)), np.zeros((5, 2))),
            gw.GeowarpValueError,
            "same number of landmarks",
        ),
        (lambda: gw.warp(IMAGE, np.eye(2, 3)), gw.GeowarpTypeError, "transform must be"),
        (
            lambda: gw.warp(IMAGE, gw.Affine(np.eye(2, 3)), (4, -1)),
            gw.GeowarpValueError,
            "out_shape",
        ),
        (
            lambda: gw.warp(IMAGE, gw.Affine(np.eye(2, 3)), (4.5, 3)),
            gw.GeowarpValueError,
            "out_shape",
        ),
        (lambda: gw.Composed(), gw.GeowarpTypeError, "Composed needs"),
    ],
)
def test_bad_input_names_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_mixed_libraries_are_refused():
    torch = pytest.importorskip("torch")
    with pytest.raises(gw.GeowarpTypeError, match="one supported library"):
        gw.sample(torch.zeros(1, 1, 4, 4), np.zeros((1, 2, 2, 2)))
