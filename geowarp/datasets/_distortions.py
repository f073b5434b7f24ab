"""The STN paper's distortions of MNIST (R, RTS, P, E) and IC-STN's perturbations, with geowarp.

Every generator returns a batch of transforms in geowarp's direction: each
maps points of the distorted image (the output) to points of the original
digit (the input), so ``geowarp.warp(digits, transform, out_shape)`` draws
the distorted digits. Units are normalized: -1 and +1 are the image edges
(``align_corners=False``), so 0.1 is 5% of the image's width (1.4 pixels of
a 28-pixel digit).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

import geowarp as gw

from .._errors import GeowarpValueError

__all__ = [
    "distort",
    "random_elastic",
    "random_perturbation",
    "random_projective",
    "random_rotation",
    "random_rts",
]

_CORNERS = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])


def _generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _count(count: int) -> int:
    if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 1:
        raise GeowarpValueError(f"count must be a positive integer, got {count!r}")
    return int(count)


def _spread(value: float, name: str) -> float:
    """A noise level or range bound: finite and not negative."""
    if not (isinstance(value, int | float | np.number) and 0 <= float(value) < np.inf):
        raise GeowarpValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _interval(bounds: tuple[float, float], name: str) -> tuple[float, float]:
    """A (low, high) range of positive factors."""
    try:
        low, high = (float(v) for v in bounds)
    except (TypeError, ValueError):
        raise GeowarpValueError(f"{name} must be a pair (low, high), got {bounds!r}") from None
    if not 0 < low <= high < np.inf:
        raise GeowarpValueError(f"{name} must satisfy 0 < low <= high, got {bounds!r}")
    return low, high


def _rotation_scale(angle: NDArray[np.float64], scale: NDArray[np.float64]) -> gw.Affine:
    """Affine maps ``p -> scale * R(angle) p``, one per entry."""
    cos, sin = np.cos(angle) * scale, np.sin(angle) * scale
    zero = np.zeros_like(angle)
    return gw.Affine(
        np.stack([np.stack([cos, -sin, zero], -1), np.stack([sin, cos, zero], -1)], -2)
    )


def _translation(offset: NDArray[np.float64]) -> gw.Affine:
    """Affine maps ``p -> p + offset``, one per row of ``offset`` (N, 2)."""
    count = offset.shape[0]
    matrix = np.zeros((count, 2, 3))
    matrix[:, 0, 0] = matrix[:, 1, 1] = 1.0
    matrix[:, :, 2] = offset
    return gw.Affine(matrix)


def random_rotation(
    count: int, *, max_degrees: float = 90.0, rng: np.random.Generator | int | None = None
) -> gw.Affine:
    """R: rotations by angles drawn uniformly from [-max_degrees, max_degrees].

    The STN paper's rotated MNIST uses +-90 degrees. Rotation is about the
    image centre; the output has the digit's size.

    Parameters
    ----------
    count : int
        How many transforms (the batch size).
    max_degrees : float
    rng : numpy Generator or seed, optional

    Returns
    -------
    Affine of batch shape (count,)

    Examples
    --------
    >>> from geowarp.datasets import random_rotation
    >>> random_rotation(5, rng=0).batch_shape
    (5,)
    """
    count = _count(count)
    max_degrees = _spread(max_degrees, "max_degrees")
    angle = np.deg2rad(_generator(rng).uniform(-max_degrees, max_degrees, count))
    return _rotation_scale(angle, np.ones(count))


def random_rts(
    count: int,
    *,
    max_degrees: float = 45.0,
    scale: tuple[float, float] = (0.7, 1.2),
    canvas: int = 42,
    digit: int = 28,
    rng: np.random.Generator | int | None = None,
) -> gw.Affine:
    """RTS: rotated, scaled and translated digits on a larger canvas.

    The digit is rotated by an angle uniform in +-``max_degrees``, scaled by
    a factor uniform in ``scale`` and placed at a position drawn uniformly
    such that its central 20x20 pixels (where MNIST's strokes lie) stay on
    the ``canvas`` (the paper: +-45 degrees, 0.7 to 1.2, a 42x42 canvas).
    Three affine maps composed, in geowarp's output-to-input direction:
    canvas points are moved back by the placement, un-rotated and
    un-scaled, then rescaled from the canvas's normalized units to the
    digit's.

    Parameters
    ----------
    count : int
    max_degrees : float
    scale : (low, high)
    canvas, digit : int
        Sides of the output canvas and of the input digit, in pixels.
    rng : numpy Generator or seed, optional

    Returns
    -------
    Affine of batch shape (count,)
        For ``geowarp.warp(digits, transform, (canvas, canvas))``.

    Examples
    --------
    >>> import numpy as np
    >>> from geowarp.datasets import random_rts
    >>> t = random_rts(3, rng=0)
    >>> bool(np.all(np.abs(t.matrix[:, :, :2]) < 42 / 28 / 0.7 + 1e-9))
    True
    """
    count = _count(count)
    if canvas < digit:
        raise GeowarpValueError(f"canvas ({canvas}) must be at least the digit's size ({digit})")
    max_degrees, (low, high) = _spread(max_degrees, "max_degrees"), _interval(scale, "scale")
    generator = _generator(rng)
    angle = np.deg2rad(generator.uniform(-max_degrees, max_degrees, count))
    factor = generator.uniform(low, high, count)
    # Half the strokes' extent (10 of 28 px) times the scale must stay inside half the canvas.
    room = np.maximum(canvas / 2 - digit * 10 / 28 * factor, 0.0) / (canvas / 2)  # in canvas units
    offset = generator.uniform(-1.0, 1.0, (count, 2)) * room[:, None]
    canvas_to_digit = gw.Affine(np.array([[canvas / digit, 0.0, 0.0], [0.0, canvas / digit, 0.0]]))
    placement = _translation(offset)
    shape = _rotation_scale(angle, factor)
    # Output point -> undo the placement -> undo rotation and scale -> the digit's frame.
    composed = canvas_to_digit @ shape.inverse() @ placement.inverse()
    assert isinstance(composed, gw.Affine)  # affine maps compose in closed form
    return composed


def _corner_homography(moved: NDArray[np.float64]) -> gw.Projective:
    """Homographies that draw the image's corners at ``moved`` (N, 4, 2)."""
    corners = np.broadcast_to(_CORNERS, moved.shape)
    fit = gw.Projective.from_estimate(corners, moved)  # T(moved) = corners
    if isinstance(fit, gw.FailedEstimation):  # corners in general position never fail
        raise GeowarpValueError(f"corner perturbation too large for a homography: {fit.message}")
    return fit


def random_projective(
    count: int,
    *,
    scale: tuple[float, float] = (0.75, 1.0),
    corner_noise: float = 0.1,
    rng: np.random.Generator | int | None = None,
) -> gw.Projective:
    """P: perspective views of the digit.

    The image's four corners are scaled about the centre by a factor
    uniform in ``scale`` and each then moved by independent Gaussian noise
    of standard deviation ``corner_noise`` per coordinate (normalized
    units; 0.1 is 1.4 pixels of a 28-pixel digit); the homography draws the
    corners there.

    Parameters
    ----------
    count : int
    scale : (low, high)
    corner_noise : float
    rng : numpy Generator or seed, optional

    Returns
    -------
    Projective of batch shape (count,)

    Examples
    --------
    >>> from geowarp.datasets import random_projective
    >>> still = random_projective(2, corner_noise=0.0, scale=(1.0, 1.0), rng=0)
    >>> (still.matrix[0].round(6) + 0.0).tolist()
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    count = _count(count)
    (low, high), corner_noise = _interval(scale, "scale"), _spread(corner_noise, "corner_noise")
    generator = _generator(rng)
    factor = generator.uniform(low, high, (count, 1, 1))
    moved = _CORNERS * factor + generator.normal(0.0, corner_noise, (count, 4, 2))
    return _corner_homography(moved)


def random_elastic(
    count: int,
    *,
    control_grid: tuple[int, int] = (4, 4),
    noise: float = 0.1,
    rng: np.random.Generator | int | None = None,
) -> gw.ThinPlateSpline:
    """E: elastic distortions, a thin-plate spline through jittered control points.

    ``control_grid`` points (16 by default) spread evenly over [-1, 1]^2;
    the spline maps each of them to itself plus Gaussian noise of standard
    deviation ``noise`` per coordinate (normalized units; 0.1 is 1.4 pixels
    of a 28-pixel digit), so the digit is read from jittered places.

    Parameters
    ----------
    count : int
    control_grid : (rows, columns)
    noise : float
    rng : numpy Generator or seed, optional

    Returns
    -------
    ThinPlateSpline of batch shape (count,)

    Examples
    --------
    >>> import numpy as np
    >>> from geowarp.datasets import random_elastic
    >>> t = random_elastic(2, noise=0.0, rng=0)
    >>> bool(np.allclose(t.apply(np.array([[0.3, -0.2]])), [0.3, -0.2]))
    True
    """
    count = _count(count)
    noise = _spread(noise, "noise")
    rows, columns = control_grid
    if min(rows, columns) < 2:
        raise GeowarpValueError(f"control_grid needs at least 2 x 2 points, got {control_grid!r}")
    y, x = np.meshgrid(np.linspace(-1, 1, rows), np.linspace(-1, 1, columns), indexing="ij")
    target = np.broadcast_to(np.stack([x.ravel(), y.ravel()], -1), (count, rows * columns, 2))
    source = target + _generator(rng).normal(0.0, noise, target.shape)
    return gw.ThinPlateSpline.from_landmarks(source, np.ascontiguousarray(target))


def random_perturbation(
    count: int,
    *,
    corner_noise: float = 0.25,
    translation: float = 0.25,
    rng: np.random.Generator | int | None = None,
) -> gw.Projective:
    """IC-STN's perturbed digits: homographies from jittered and shifted corners.

    As Lin and Lucey (2017): each corner moves by independent Gaussian
    noise of standard deviation ``corner_noise`` per coordinate, and all
    four by a common Gaussian shift of standard deviation ``translation``
    (normalized units: 0.25 is 12.5% of the image's width).

    Parameters
    ----------
    count : int
    corner_noise, translation : float
    rng : numpy Generator or seed, optional

    Returns
    -------
    Projective of batch shape (count,)

    Examples
    --------
    >>> from geowarp.datasets import random_perturbation
    >>> random_perturbation(4, rng=0).batch_shape
    (4,)
    """
    count = _count(count)
    corner_noise, translation = (
        _spread(corner_noise, "corner_noise"),
        _spread(translation, "translation"),
    )
    generator = _generator(rng)
    moved = (
        _CORNERS
        + generator.normal(0.0, corner_noise, (count, 4, 2))
        + generator.normal(0.0, translation, (count, 1, 2))
    )
    return _corner_homography(moved)


#: The distortions `distort` knows: name -> (generator, output side for 28x28 digits).
_DISTORTIONS: dict[str, tuple[Callable[..., gw.Transform], int]] = {
    "R": (random_rotation, 28),
    "RTS": (random_rts, 42),
    "P": (random_projective, 28),
    "E": (random_elastic, 28),
    "H": (random_perturbation, 28),
}


def distort(
    digits: Any,
    kind: str,
    *,
    rng: np.random.Generator | int | None = None,
    **options: Any,
) -> tuple[NDArray[np.float32], gw.Transform]:
    """Warp each digit by its own random transform of kind ``kind``.

    Parameters
    ----------
    digits : array of shape (N, H, W) or (N, 1, H, W)
        Grey images, e.g. from `load_mnist`.
    kind : {"R", "RTS", "P", "E", "H"}
        Rotation (`random_rotation`), rotation-translation-scale onto a
        42x42 canvas (`random_rts`), projective (`random_projective`),
        elastic (`random_elastic`) or IC-STN's homography perturbation
        (`random_perturbation`).
    rng : numpy Generator or seed, optional
    **options
        Passed to the generator (e.g. ``max_degrees=45`` for "R").

    Returns
    -------
    distorted : float32 array of shape (N, 1, S, S)
        ``S`` is 42 for "RTS" on 28x28 digits (the canvas scales with the
        digit) and the digit's side otherwise; bilinear, zeros outside.
    transform : Transform of batch shape (N,)
        What drew them (output points to digit points).

    Examples
    --------
    >>> import numpy as np
    >>> from geowarp.datasets import distort
    >>> digits = np.random.default_rng(0).random((2, 28, 28))
    >>> out, transform = distort(digits, "E", rng=1)
    >>> out.shape, type(transform).__name__
    ((2, 1, 28, 28), 'ThinPlateSpline')
    """
    try:
        make, side = _DISTORTIONS[kind.upper()]
    except (KeyError, AttributeError):
        raise GeowarpValueError(
            f"kind must be one of {sorted(_DISTORTIONS)}, got {kind!r}"
        ) from None
    images = np.asarray(digits, dtype=np.float32)
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4 or images.shape[1] != 1 or images.shape[2] != images.shape[3]:
        raise GeowarpValueError(
            "digits must be square grey images (N, H, W) or (N, 1, H, W), "
            f"got shape {np.shape(digits)}"
        )
    count, size = images.shape[0], images.shape[2]
    if kind.upper() == "RTS":
        canvas = options.setdefault("canvas", round(size * side / 28))
        options.setdefault("digit", size)
        out_side = canvas
    else:
        out_side = size
    transform = make(count, rng=rng, **options)
    out = gw.warp(images, transform, (out_side, out_side))
    return np.asarray(out, dtype=np.float32), transform
