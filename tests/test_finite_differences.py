"""Every explicit VJP against central finite differences, float64, on numpy and array-api-strict.

Sample points keep their pixel coordinates' fractional parts in [0.1, 0.9], away
from the integer-pixel kinks of bilinear interpolation (the kinks are pinned
against PyTorch in test_sampler_parity.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from _helpers import COMBINATIONS, core_op
from geowarp.grid import pixel_to_normalized
from geowarp.transforms._matrix_ops import (
    AFFINE_APPLY,
    AFFINE_GRID,
    PROJECTIVE_APPLY,
    PROJECTIVE_GRID,
)
from geowarp.transforms._tps_ops import TPS_APPLY, TPS_GRID, grid_weights

STEP = 1e-6
RELATIVE = 1e-6


def check_vjp(
    backend: Any,
    op: Any,
    primals: list[np.ndarray],
    which: list[int],
    rng: np.random.Generator,
    **options: Any,
) -> None:
    """Compare ``op.vjp`` with central differences of ``<cotangent, forward>`` for ``which``."""
    arrays = [backend.asarray(p) for p in primals]
    out, residuals = op.forward(*arrays, **options)
    cotangent = rng.normal(size=tuple(out.shape))
    grads = op.vjp(residuals, backend.asarray(cotangent), **options)

    def objective(index: int, values: np.ndarray) -> float:
        trial = list(arrays)
        trial[index] = backend.asarray(values)
        return float(np.sum(backend.to_numpy(op.forward(*trial, **options)[0]) * cotangent))

    for index in which:
        expected = _central_differences(lambda v, i=index: objective(i, v), primals[index])
        actual = backend.to_numpy(grads[index])
        scale = np.maximum(1.0, np.abs(expected))
        np.testing.assert_array_less(np.abs(actual - expected) / scale, RELATIVE)


def _central_differences(function: Callable[[np.ndarray], float], x: np.ndarray) -> np.ndarray:
    gradient = np.zeros_like(x)
    for position in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[position] = STEP
        gradient[position] = (function(x + step) - function(x - step)) / (2 * STEP)
    return gradient


def off_kink_grid(
    rng: np.random.Generator,
    shape: tuple[int, ...],
    image_shape: tuple[int, int],
    align_corners: bool,
    mode: str,
) -> np.ndarray:
    """Normalized points whose pixel coordinates stay clear of integers (and of nearest's ties)."""
    height, width = image_shape
    pixels = np.stack(
        [rng.integers(-3, width + 2, size=shape), rng.integers(-3, height + 2, size=shape)], axis=-1
    ).astype(float)
    fraction = rng.uniform(0.1, 0.9, size=pixels.shape)
    if mode == "nearest":  # also clear of the half-way ties where the nearest pixel flips
        fraction = rng.choice([0.1, 0.6], size=pixels.shape) + rng.uniform(0, 0.3, pixels.shape)
    return pixel_to_normalized(pixels + fraction, image_shape, align_corners=align_corners)


@pytest.mark.parametrize(("mode", "padding", "align_corners"), COMBINATIONS)
def test_sampler_vjp(fd_backend, rng, mode, padding, align_corners):
    image = rng.normal(size=(2, 2, 4, 5))
    grid = off_kink_grid(rng, (2, 3, 4), (4, 5), align_corners, mode)
    fill = rng.normal(size=2) if padding == "constant" else np.zeros(2)
    which = [0, 1, 2] if padding == "constant" else [0, 1]
    check_vjp(
        fd_backend,
        core_op(mode),
        [image, grid, fill],
        which,
        rng,
        padding=padding,
        align_corners=align_corners,
    )


def test_affine_vjp(fd_backend, rng):
    matrix = rng.normal(size=(3, 2, 3))
    points = rng.normal(size=(5, 2))  # broadcast against the batch of matrices
    check_vjp(fd_backend, AFFINE_APPLY, [matrix, points], [0, 1], rng)


def test_projective_vjp(fd_backend, rng):
    matrix = np.eye(3) + 0.2 * rng.normal(size=(3, 3, 3))
    points = rng.uniform(-1, 1, size=(3, 6, 2))
    check_vjp(fd_backend, PROJECTIVE_APPLY, [matrix, points], [0, 1], rng)


def test_tps_vjp(fd_backend, rng):
    """Gradients reach the source points and the mapped points; the centres stay fixed."""
    xs, ys = np.meshgrid(np.linspace(-1, 1, 3), np.linspace(-1, 1, 3))
    centres = np.stack([xs.ravel(), ys.ravel()], axis=-1)
    source = centres + 0.1 * rng.normal(size=(2, 9, 2))
    points = rng.uniform(-1.2, 1.2, size=(7, 2))
    for regularization in (0.0, 0.1):
        check_vjp(
            fd_backend,
            TPS_APPLY,
            [centres, source, points],
            [1, 2],
            rng,
            regularization=regularization,
        )


def test_tps_grid_vjp(fd_backend, rng):
    """The cached-weights form of the spline's grid, w.r.t. the source points."""
    xs, ys = np.meshgrid(np.linspace(-1, 1, 3), np.linspace(-1, 1, 3))
    centres = np.stack([xs.ravel(), ys.ravel()], axis=-1)
    weights = grid_weights(centres, rng.uniform(-1.2, 1.2, size=(7, 2)), regularization=0.1)
    for source_shape in ((2, 9, 2), (9, 2)):
        source = centres + 0.1 * rng.normal(size=source_shape)
        check_vjp(fd_backend, TPS_GRID, [weights, source], [1], rng)


def test_separable_grid_vjps(fd_backend, rng):
    """The grid ops of the matrix families, w.r.t. the matrix and both axes."""
    xs, ys = rng.uniform(-1, 1, size=4), rng.uniform(-1, 1, size=3)
    affine = rng.normal(size=(2, 2, 3))
    check_vjp(fd_backend, AFFINE_GRID, [affine, xs, ys], [0, 1, 2], rng)
    homography = np.eye(3) + 0.2 * rng.normal(size=(2, 3, 3))
    check_vjp(fd_backend, PROJECTIVE_GRID, [homography, xs, ys], [0, 1, 2], rng)
