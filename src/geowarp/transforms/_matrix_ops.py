"""Point maps of the matrix families and their VJPs (w.r.t. the matrix and the points)."""

from __future__ import annotations

from typing import Any

from .._namespace import array_namespace
from .._ops import sum_to_shape
from ..autodiff import Op


def _linear_part(matrix: Any, points: Any, xp: Any) -> Any:
    # (x, y) -> M[:, :2] @ (x, y) + M[:, 2], batched, for any number of rows of M
    return points @ xp.matrix_transpose(matrix[..., :2]) + matrix[..., None, :, 2]


def _matrix_cotangent(d_rows: Any, points: Any, matrix_shape: tuple[int, ...], xp: Any) -> Any:
    # VJP of _linear_part w.r.t. the matrix: (d_rows^T @ points | sum over points)
    d_linear = xp.matrix_transpose(d_rows) @ points
    d_shift = xp.sum(d_rows, axis=-2)[..., None]
    return sum_to_shape(xp.concat([d_linear, d_shift], axis=-1), matrix_shape, xp)


def affine_forward(matrix: Any, points: Any) -> tuple[Any, tuple[Any, ...]]:
    """``points`` (..., N, 2) through ``matrix`` (..., 2, 3)."""
    xp = array_namespace(matrix, points)
    return _linear_part(matrix, points, xp), (matrix, points)


def affine_vjp(
    residuals: tuple[Any, ...], cotangent: Any, *, needs: tuple[bool, ...] = (True, True)
) -> tuple[Any, Any]:
    """Cotangents of (matrix, points); ``None`` for those not in ``needs``."""
    matrix, points = residuals
    xp = array_namespace(matrix, points, cotangent)
    d_matrix = _matrix_cotangent(cotangent, points, tuple(matrix.shape), xp) if needs[0] else None
    d_points = None
    if needs[1]:
        d_points = sum_to_shape(cotangent @ matrix[..., :2], tuple(points.shape), xp)
    return d_matrix, d_points


def _in_front(matrix: Any, homogeneous: Any, xp: Any) -> tuple[Any, Any]:
    """Which points lie in front of the horizon, and their w (1 where they don't).

    A point is in front when its w has the sign of w at the output's centre
    (normalized (0, 0), where w = H[2, 2]). Comparing signs, never ``w + eps``,
    keeps ``s * H`` and ``H`` the same map for every s != 0, negative s included.
    """
    w = homogeneous[..., 2:3]
    centre = matrix[..., None, 2:3, 2]
    facing = xp.where(centre < 0, -w, w) > 0
    return facing, xp.where(facing, w, 1.0)


def projective_forward(matrix: Any, points: Any) -> tuple[Any, tuple[Any, ...]]:
    """``points`` (..., N, 2) through the homography ``matrix`` (..., 3, 3).

    Points on or beyond the horizon have no image: they map to NaN, which the
    samplers read as out of range.
    """
    xp = array_namespace(matrix, points)
    homogeneous = _linear_part(matrix, points, xp)
    facing, w = _in_front(matrix, homogeneous, xp)
    return xp.where(facing, homogeneous[..., :2] / w, xp.nan), (matrix, points)


def projective_vjp(
    residuals: tuple[Any, ...], cotangent: Any, *, needs: tuple[bool, ...] = (True, True)
) -> tuple[Any, Any]:
    """Cotangents of (matrix, points); ``None`` for those not in ``needs``."""
    matrix, points = residuals
    xp = array_namespace(matrix, points, cotangent)
    homogeneous = _linear_part(matrix, points, xp)
    facing, w = _in_front(matrix, homogeneous, xp)
    mapped = homogeneous[..., :2] / w
    # d(u / w) = du / w - (u / w) dw / w; nothing flows from points beyond the horizon
    d_xy = xp.where(facing, cotangent / w, 0.0)
    d_w = -xp.sum(d_xy * mapped, axis=-1, keepdims=True)
    d_rows = xp.concat([d_xy, d_w], axis=-1)
    d_matrix = _matrix_cotangent(d_rows, points, tuple(matrix.shape), xp) if needs[0] else None
    d_points = None
    if needs[1]:
        d_points = sum_to_shape(d_rows @ matrix[..., :2], tuple(points.shape), xp)
    return d_matrix, d_points


AFFINE_APPLY = Op("affine_apply", affine_forward, affine_vjp)
PROJECTIVE_APPLY = Op("projective_apply", projective_forward, projective_vjp)
