"""Bad input fails early with an error that names the argument and shows what came.

Every case runs on every backend: the arrays are made by the backend fixture.
"""

from __future__ import annotations

import numpy as np
import pytest

import geowarp as gw


def _cases(a):
    """(call, error, match) triples; ``a`` turns numpy values into backend arrays."""
    image, grid, eye = a(np.zeros((2, 1, 4, 4))), a(np.zeros((2, 3, 3, 2))), a(np.eye(2, 3))
    return {
        "mode": (
            lambda: gw.sample(image, grid, mode="cubic"),
            gw.GeowarpValueError,
            "mode must be one of",
        ),
        "padding": (
            lambda: gw.sample(image, grid, padding="wrap"),
            gw.GeowarpValueError,
            "padding must",
        ),
        "image rank": (
            lambda: gw.sample(image[0, ...], grid),
            gw.GeowarpValueError,
            r"image must .*\(1, 4, 4\)",
        ),
        "grid shape": (
            lambda: gw.sample(image, grid[..., :1]),
            gw.GeowarpValueError,
            r"grid must .*",
        ),
        "batch": (
            lambda: gw.sample(image, a(np.zeros((3, 3, 3, 2)))),
            gw.GeowarpValueError,
            "batch 2",
        ),
        "grid dtype": (
            lambda: gw.sample(image, a(np.zeros((2, 3, 3, 2)), "int32")),
            gw.GeowarpTypeError,
            "grid must have a real",
        ),
        "empty image": (
            lambda: gw.sample(a(np.zeros((1, 1, 0, 4))), grid[:1, ...]),
            gw.GeowarpValueError,
            "non-empty spatial size",
        ),
        "fill shape": (
            lambda: gw.sample(image, grid, padding="constant", fill_value=np.zeros(3)),
            gw.GeowarpValueError,
            "fill_value",
        ),
        "matrix shape": (
            lambda: gw.Affine(a(np.zeros((2, 2)))),
            gw.GeowarpValueError,
            r"matrix must .*\(2, 2\)",
        ),
        "matrix dtype": (
            lambda: gw.Affine(a(np.eye(2, 3), "int32")),
            gw.GeowarpTypeError,
            "matrix must have",
        ),
        "projective shape": (lambda: gw.Projective(eye), gw.GeowarpValueError, "matrix must"),
        "params": (
            lambda: gw.Affine.from_params(a(np.zeros(5))),
            gw.GeowarpValueError,
            r"params .*\(5,\)",
        ),
        "points": (lambda: gw.Affine(eye).apply(a(np.zeros(2))), gw.GeowarpValueError, "points"),
        "landmarks": (
            lambda: gw.ThinPlateSpline(a(np.zeros((4, 2))), a(np.zeros((5, 2)))),
            gw.GeowarpValueError,
            "same number of landmarks",
        ),
        "transform": (lambda: gw.warp(image, eye), gw.GeowarpTypeError, "transform must be"),
        "negative out_shape": (
            lambda: gw.warp(image, gw.Affine(eye), (4, -1)),
            gw.GeowarpValueError,
            "out_shape",
        ),
        "fractional out_shape": (
            lambda: gw.warp(image, gw.Affine(eye), (4.5, 3)),
            gw.GeowarpValueError,
            "out_shape",
        ),
        "bool out_shape": (
            lambda: gw.warp(image, gw.Affine(eye), (True, 4)),
            gw.GeowarpValueError,
            "out_shape must be a pair .* not bools",
        ),
        "align_corners not a bool": (
            lambda: gw.warp(image, gw.Affine(eye), align_corners="yes"),
            gw.GeowarpTypeError,
            "align_corners must be a bool",
        ),
        "align_corners None": (
            lambda: gw.sample(image, gw.Affine(eye).sampling_grid((2, 2)), align_corners=None),
            gw.GeowarpTypeError,
            "align_corners must be a bool",
        ),
        "huge out_shape": (
            lambda: gw.warp(image, gw.Affine(eye), (100_000, 100_000)),
            gw.GeowarpValueError,
            r"would need [\d,]+ bytes",
        ),
    }


CASES = list(_cases(np.asarray))


@pytest.mark.parametrize("case", CASES)
def test_bad_input_names_the_argument(backend, case):
    call, error, match = _cases(backend.asarray)[case]
    with pytest.raises(error, match=match):
        call()


def test_composed_needs_transforms():
    with pytest.raises(gw.GeowarpTypeError, match="Composed needs"):
        gw.Composed()


def test_mixed_libraries_are_refused(backend):
    other = np.zeros((1, 2, 2, 2)) if backend.name != "numpy" else None
    if other is None:
        pytest.importorskip("torch")
        import torch

        other = torch.zeros(1, 2, 2, 2, dtype=torch.float64)
    with pytest.raises(gw.GeowarpTypeError, match="one supported library"):
        gw.sample(backend.asarray(np.zeros((1, 1, 4, 4))), other)
