"""Closed-form fits from correspondences, written once against ``xp``.

Both fits are plain array-API code (sums, matrix products, a 2x2 inverse, a
9x9 ``eigh``), so each framework's autodiff differentiates through them, and
a batch of problems is one batch of small matrix operations. They run in the
compute dtype (`compute_dtype`: float64 where the library has it) and the
callers cast the result back.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._namespace import device as array_device
from .._namespace import known_values
from ..transforms._matrix import Affine, Projective
from ..transforms._tps import ThinPlateSpline, degenerate_landmarks, tolerance
from ._failure import FailedEstimation
from ._inputs import Points, check_values, prepare

__all__ = ["affine_matrix", "fit_affine", "fit_projective", "fit_tps", "projective_matrix"]


def _weighted(points: Any, weights: Any, xp: Any) -> tuple[Any, Any]:
    """``weights`` as (..., N, 1) (ones when None) and their sum (..., 1, 1).

    Without weights the sum is the count N, a Python int where it is known:
    dividing by it is the same division, one array operation fewer.
    """
    count = points.shape[-2]
    if weights is None and isinstance(count, int):
        return xp.ones_like(points[..., :1]), count
    column = xp.ones_like(points[..., :1]) if weights is None else weights[..., None]
    return column, xp.sum(column, axis=-2, keepdims=True)


def _mean(values: Any, weight: Any, total: Any, xp: Any) -> Any:
    """Weighted mean over the points (..., N, k) -> (..., 1, k)."""
    # a product, not a sum over axis -2: numpy reduces a short last axis slowly
    return (xp.matrix_transpose(weight) @ values) / total


def affine_matrix(source: Any, target: Any, weights: Any, xp: Any) -> Any:
    """The weighted least-squares affine map (..., 2, 3) taking ``target`` to ``source``.

    Centred on the weighted centroids, the normal equations split into the
    translation (centroid to centroid) and a 2x2 system for the linear part,
    solved in closed form. Collinear target points make that system singular:
    the result is then NaN (the callers refuse such points first where the
    values are known).
    """
    weight, total = _weighted(target, weights, xp)
    target_centre = _mean(target, weight, total, xp)  # (..., 1, 2)
    source_centre = _mean(source, weight, total, xp)
    target = target - target_centre
    scatter = xp.matrix_transpose(weight * target) @ target  # (..., 2, 2)
    cross = xp.matrix_transpose(weight * (source - source_centre)) @ target
    linear = cross @ _inverse2x2(scatter, xp)
    shift = xp.matrix_transpose(source_centre) - linear @ xp.matrix_transpose(target_centre)
    return xp.concat([linear, shift], axis=-1)


def _inverse2x2(matrix: Any, xp: Any) -> Any:
    a, b = matrix[..., 0:1, 0:1], matrix[..., 0:1, 1:2]
    c, d = matrix[..., 1:2, 0:1], matrix[..., 1:2, 1:2]
    det = a * d - b * c
    # NaN, not a division by zero (numpy would warn): a singular system has no answer
    det = xp.where(xp.abs(det) > 0, det, xp.full_like(det, math.nan))
    top = xp.concat([d, -b], axis=-1)
    bottom = xp.concat([-c, a], axis=-1)
    return xp.concat([top, bottom], axis=-2) / det


def _normalize(points: Any, weight: Any, total: Any, xp: Any) -> tuple[Any, Any, Any]:
    """Hartley's normalization: centroid 0, mean distance sqrt(2); (points, centre, scale)."""
    centre = _mean(points, weight, total, xp)  # (..., 1, 2)
    centred = points - centre
    x, y = centred[..., 0:1], centred[..., 1:2]
    mean = _mean(xp.sqrt(x * x + y * y), weight, total, xp)  # (..., 1, 1)
    tiny = xp.finfo(points.dtype).smallest_normal
    scale = math.sqrt(2.0) / xp.where(mean > tiny, mean, xp.ones_like(mean))
    return centred * scale, centre, scale


def projective_matrix(source: Any, target: Any, weights: Any, xp: Any) -> tuple[Any, Any, Any]:
    """The normalized DLT homography (..., 3, 3) taking ``target`` to ``source``.

    Returns the matrix, scaled to ``H[2, 2] = 1`` where it is not 0, the
    ascending eigenvalues (..., 9) of the normalized ``A^T W A`` (a second
    eigenvalue near 0: the points do not determine the homography) and the
    unit-norm homography between the normalized points (..., 3, 3).
    """
    source, target, weights = _broadcast(source, target, weights, xp)
    weight, total = _weighted(target, weights, xp)
    source_frame = _normalize(source, weight, total, xp)
    target_frame = _normalize(target, weight, total, xp)
    unit = weights is None  # every weight 1: no products with them
    system = _dlt_system(source_frame[0], target_frame[0], weight, unit, xp)
    eigenvalues, eigenvectors = xp.linalg.eigh(system)
    h = eigenvectors[..., :, 0]
    normalized = xp.reshape(h, (*h.shape[:-1], 3, 3))  # row by row
    matrix = _unit_corner(_denormalize(normalized, source_frame, target_frame, xp), xp)
    return matrix, eigenvalues, normalized


def _broadcast(source: Any, target: Any, weights: Any, xp: Any) -> tuple[Any, Any, Any]:
    """The points (..., N, 2) and weights (..., N) broadcast to one batch shape."""
    batch = tuple(target.shape[:-2])
    weights_batch = batch if weights is None else tuple(weights.shape[:-1])
    if tuple(source.shape[:-2]) == batch and weights_batch == batch:
        return source, target, weights
    # adding zeros broadcasts by the standard's rules, sizes unknown while tracing
    # included, and keeps every value
    zeros = xp.zeros_like(source[..., :1]) + xp.zeros_like(target[..., :1])
    if weights is not None:
        zeros = zeros + xp.zeros_like(weights[..., None])
    return source + zeros, target + zeros, None if weights is None else weights + zeros[..., 0]


def _dlt_system(source: Any, target: Any, weight: Any, unit: bool, xp: Any) -> Any:
    """``A^T W A`` (..., 9, 9) of the DLT, whose rows are ``[p, 0, -u p]`` and ``[0, p, -v p]``.

    It is made of four weighted moment matrices of ``p = (x, y, 1)``: ``sum w p
    p^T`` times 1, -u, -v and u^2 + v^2. Each has six distinct entries, so all
    of them are one (4, N) @ (N, 6) product, spread into the 9x9 by one gather
    (no (2N, 9) matrix A, no small broadcast products, which numpy runs slowly).
    ``unit`` says every weight is 1: multiplying by it would change nothing.
    """
    x, y = target[..., 0:1], target[..., 1:2]
    u, v = source[..., 0:1], source[..., 1:2]
    pairs = xp.concat([x * x, x * y, x, y * y, y, xp.ones_like(x)], axis=-1)  # (..., N, 6)
    factors = [u, v, u * u + v * v]
    factors = xp.concat([weight, *(f if unit else weight * f for f in factors)], axis=-1)
    moments = xp.matrix_transpose(factors) @ pairs  # (..., 4, 6)
    flat = xp.reshape(moments, (*moments.shape[:-2], 24))
    flat = xp.concat([flat, xp.zeros_like(flat[..., :1])], axis=-1)  # entry 24: a zero block
    indices = xp.asarray(_DLT_INDEX, device=array_device(flat))
    signs = xp.asarray(_DLT_SIGN, dtype=flat.dtype, device=array_device(flat))
    entries = xp.take(flat, indices, axis=flat.ndim - 1) * signs
    return xp.reshape(entries, (*entries.shape[:-1], 9, 9))


def _dlt_layout() -> tuple[np.ndarray, np.ndarray]:
    # block (I, J) of the 9x9 holds moment k with a sign; entry (i, j) of a block is
    # pair [[0, 1, 2], [1, 3, 4], [2, 4, 5]][i][j] of (xx, xy, x, yy, y, 1)
    blocks = {(0, 0): (0, 1), (1, 1): (0, 1), (0, 2): (1, -1), (2, 0): (1, -1)}
    blocks |= {(1, 2): (2, -1), (2, 1): (2, -1), (2, 2): (3, 1)}
    pair = np.array([[0, 1, 2], [1, 3, 4], [2, 4, 5]])
    index, sign = np.full((9, 9), 24), np.zeros((9, 9))
    for (row, column), (kind, factor) in blocks.items():
        index[3 * row : 3 * row + 3, 3 * column : 3 * column + 3] = 6 * kind + pair
        sign[3 * row : 3 * row + 3, 3 * column : 3 * column + 3] = factor
    return index.reshape(-1), sign.reshape(-1)


_DLT_INDEX, _DLT_SIGN = _dlt_layout()


def _denormalize(normalized: Any, source_frame: Any, target_frame: Any, xp: Any) -> Any:
    """``inv(N_source) @ normalized @ N_target`` in closed form; ``N = [[k, 0, -k c], ...]``."""
    _, source_centre, source_scale = source_frame
    _, target_centre, target_scale = target_frame
    # right: columns 0, 1 scale by k; column 2 loses k (H[:, :2] @ c)
    linear = normalized[..., :, 0:2]
    shift = normalized[..., :, 2:3] - linear @ xp.matrix_transpose(target_scale * target_centre)
    matrix = xp.concat([target_scale * linear, shift], axis=-1)
    # left: rows 0, 1 divide by k and gain c times row 2
    top = (
        matrix[..., 0:2, :] / source_scale
        + xp.matrix_transpose(source_centre) * matrix[..., 2:3, :]
    )
    return xp.concat([top, matrix[..., 2:3, :]], axis=-2)


def _unit_corner(matrix: Any, xp: Any) -> Any:
    # The eigenvector's sign and scale are arbitrary: H[2, 2] = 1 fixes both, so the
    # result (and its gradient) is well defined. A homography with H[2, 2] = 0 (the
    # origin on the horizon) is scaled to unit norm instead.
    corner = matrix[..., 2:3, 2:3]
    norm = xp.sqrt(xp.sum(matrix * matrix, axis=(-2, -1), keepdims=True))
    small = xp.abs(corner) <= xp.finfo(matrix.dtype).eps * norm
    return matrix / xp.where(small, norm, corner)


def fit_affine(source_points: Any, target_points: Any, weights: Any) -> Affine | FailedEstimation:
    """`geowarp.Affine.from_estimate`'s work: checks, then `affine_matrix`."""
    label = "an affine fit"
    points = prepare(source_points, target_points, weights, label, 3)
    if isinstance(points, FailedEstimation):
        return points
    failure = check_values(points, label, 3, general_position=False)
    if failure is not None:
        return failure
    xp = points.xp
    matrix = affine_matrix(points.source, points.target, points.weights, xp)
    return Affine(xp.astype(matrix, points.dtype, copy=False))


def fit_projective(
    source_points: Any, target_points: Any, weights: Any
) -> Projective | FailedEstimation:
    """`geowarp.Projective.from_estimate`'s work: checks, `projective_matrix`, a rank check.

    The fit itself tells whether the points are in general position: a
    second eigenvalue near 0 (the homography is undetermined: target points
    on a line, 3 of 4 on a line, too few distinct) or a singular normalized
    homography (source points on a line). Only then are the points examined
    one by one, to say why: a single fit stays cheaper than scikit-image's.
    """
    label = "a projective fit"
    points = prepare(source_points, target_points, weights, label, 4)
    if isinstance(points, FailedEstimation):
        return points
    failure = check_values(points, label, 4, general_position=True, geometry=False)
    if failure is not None:
        return failure
    xp = points.xp
    matrix, eigenvalues, normalized = projective_matrix(
        points.source, points.target, points.weights, xp
    )
    bad = _undetermined(eigenvalues, normalized, points)
    if bad is not None and bad.any():
        failure = check_values(points, label, 4, general_position=True)
        # not ``failure or ...``: a FailedEstimation is falsy
        return failure if failure is not None else _failed(label, bad)
    return Projective(xp.astype(matrix, points.dtype, copy=False))


def _undetermined(eigenvalues: Any, normalized: Any, points: Points) -> Any:
    """Per batch item, where values are known: do the points fail to fix a regular homography?"""
    values, unit = known_values(eigenvalues), known_values(normalized)
    if values is None or unit is None or points.known is None:
        return None
    # eigh's eigenvalues are accurate to about eps times the largest: the bar sits above
    # that, and at sqrt(eps)^2 of the inputs' own precision for float32 points
    tol = tolerance(points.known[1].dtype)
    loose = values[..., 1] <= max(tol**2, 1e-13) * values[..., -1]
    # a unit-norm homography of points normalized by Hartley has |det| of order 0.1;
    # one that flattens the plane onto a line (source points on a line) has about 0
    return loose | (np.abs(np.linalg.det(unit)) <= max(tol, 1e-7))


def _failed(label: str, bad: Any) -> FailedEstimation:
    index = np.argwhere(bad)[0] if bad.ndim else ()
    where = f" (batch item {tuple(int(i) for i in index)})" if bad.ndim else ""
    return FailedEstimation(
        f"{label} failed: the points do not determine a homography{where}: 4 or more of them "
        "lie on one line, or too few of them are distinct"
    )


def fit_tps(
    source_points: Any, target_points: Any, weights: Any, regularization: float
) -> ThinPlateSpline | FailedEstimation:
    """`geowarp.ThinPlateSpline.from_estimate`'s work: checks, then the spline."""
    from .._errors import GeowarpValueError

    if weights is not None:
        raise GeowarpValueError(
            "ThinPlateSpline.from_estimate takes no weights: the spline interpolates every "
            "landmark (use regularization to smooth); got weights"
        )
    if not regularization >= 0:
        raise GeowarpValueError(f"regularization must be >= 0; got {regularization!r}")
    label = "a thin-plate spline fit"
    points = prepare(source_points, target_points, None, label, 3)
    if isinstance(points, FailedEstimation):
        return points
    failure = check_values(points, label, 3, general_position=False)
    if failure is not None:
        return failure
    if points.known is not None and regularization == 0:  # coinciding centres: singular
        reason = degenerate_landmarks(points.known[1], regularization, "target_points")
        if reason is not None:
            return FailedEstimation(f"{label} failed: {reason}")
    xp = points.xp
    source = xp.astype(points.source, points.dtype, copy=False)
    target = xp.astype(points.target, points.dtype, copy=False)
    return ThinPlateSpline(source, target, regularization=regularization)
