"""Bad input fails early with an error that names the argument and shows what came.

Every case runs on every backend: the arrays are made by the backend fixture.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import geowarp as gw

SQUARE = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])


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
        "coinciding spline centres": (
            lambda: gw.ThinPlateSpline(a(SQUARE), a(SQUARE[[0, 1, 2, 2]])),
            gw.GeowarpValueError,
            r"target_points\[2\] and target_points\[3\] coincide",
        ),
        "collinear spline centres": (
            lambda: gw.ThinPlateSpline(a(SQUARE[:3]), a([[0.0, 0.0], [0.5, 0.5], [1.0, 1.0]])),
            gw.GeowarpValueError,
            "all target_points lie on one line",
        ),
        "singular spline in a batch": (
            lambda: gw.ThinPlateSpline(a(SQUARE), a(np.stack([SQUARE, SQUARE[[0, 0, 1, 2]]]))),
            gw.GeowarpValueError,
            r"target_points\[0\] and target_points\[1\] coincide \(batch item \(1,\)\)",
        ),
        "non-finite spline centre": (
            lambda: gw.ThinPlateSpline(a(SQUARE), a(np.where(SQUARE == 1.0, np.nan, SQUARE))),
            gw.GeowarpValueError,
            r"target_points\[1\] is not finite",
        ),
        "perspective row in an Affine": (
            lambda: gw.Affine(a([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.2, 0.0, 1.0]])),
            gw.GeowarpValueError,
            r"last row is \[0.2, 0.0, 1.0\].*gw.Projective",
        ),
        "composition batch": (
            lambda: gw.Affine(a(np.zeros((2, 2, 3)))) @ gw.Projective(a(np.zeros((3, 3, 3)))),
            gw.GeowarpValueError,
            r"cannot compose transforms of batch shapes \(2,\) and \(3,\)",
        ),
        "Composed batch": (
            lambda: gw.Composed(
                gw.Affine(a(np.zeros((2, 2, 3)))), gw.Affine(a(np.zeros((3, 2, 3))))
            ),
            gw.GeowarpValueError,
            r"cannot compose transforms of batch shapes \(2,\) and \(3,\)",
        ),
        "fill_value without constant padding": (
            lambda: gw.warp(image, gw.Affine(eye), padding="border", fill_value=0.5),
            gw.GeowarpValueError,
            "fill_value is used with padding='constant' only; got padding='border'",
        ),
        "fill_value with zeros padding": (
            lambda: gw.sample(image, grid, fill_value=a([1.0])),
            gw.GeowarpValueError,
            "fill_value is used with padding='constant' only",
        ),
        "fractional fill for an integer output": (
            lambda: gw.sample(
                a(np.zeros((2, 1, 4, 4)), "int32"),
                grid,
                mode="nearest",
                padding="constant",
                fill_value=2.5,
            ),
            gw.GeowarpValueError,
            r"fill_value 2.5 cannot be held exactly .*int32",
        ),
        "fill beyond an integer dtype": (
            lambda: gw.sample(
                a(np.zeros((2, 1, 4, 4)), "uint8"),
                grid,
                mode="nearest",
                padding="constant",
                fill_value=a([300.0]),
            ),
            gw.GeowarpValueError,
            r"fill_value \[300.0\] cannot be held exactly .*\[0, 255\]",
        ),
        "homography without parameters": (
            lambda: gw.Projective(
                a([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
            ).as_params(),
            gw.GeowarpValueError,
            r"matrix\[..., 2, 2\] is 0: .*no parameter vector",
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


@pytest.mark.parametrize("shape", [(2, 28, 28, 1), (1, 64, 48, 3), (1, 9, 9, 4)])
def test_a_channels_last_image_is_flagged(backend, shape):
    image = backend.asarray(np.zeros(shape))
    with pytest.warns(gw.GeowarpWarning, match=r"channels-last .*moveaxis\(image, -1, 1\)"):
        gw.warp(image, gw.Affine(backend.asarray(np.eye(2, 3))))
    with pytest.warns(gw.GeowarpWarning, match=rf"{shape[1]} channels of"):
        gw.sample(image, backend.asarray(np.zeros((1, 2, 2, 2))))


@pytest.mark.parametrize("shape", [(2, 3, 28, 28), (1, 1, 4, 4), (1, 3, 8, 3), (1, 64, 8, 8)])
def test_a_channels_first_image_is_not_flagged(backend, shape):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gw.warp(backend.asarray(np.zeros(shape)), gw.Affine(backend.asarray(np.eye(2, 3))))


def test_few_channels_of_a_tiny_image_are_not_flagged():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gw.sample(np.zeros((1, 2, 1, 1)), np.zeros((1, 1, 1, 2)))  # 2 channels of 1x1
        gw.sample(np.zeros((1, 4, 2, 3)), np.zeros((1, 1, 1, 2)))
