"""Point maps of the matrix families and their VJPs (w.r.t. the matrix and the points)."""

from __future__ import annotations

from typing import Any

from .._namespace import array_namespace
from .._namespace import device as array_device
from .._ops import matmul_shared, sum_to_shape
from ..autodiff import Op


def _homogeneous(points: Any, xp: Any) -> Any:
    ones = xp.ones((*points.shape[:-1], 1), dtype=points.dtype, device=array_device(points))
    return xp.concat([points, ones], axis=-1)


def _linear_part(matrix: Any, points: Any, xp: Any) -> Any:
    # (x, y) -> M @ (x, y, 1), batched, for any number of rows of M
    return matmul_shared(_homogeneous(points, xp), xp.matrix_transpose(matrix), xp)


def _matrix_cotangent(d_rows: Any, points: Any, matrix_shape: tuple[int, ...], xp: Any) -> Any:
    # VJP of _linear_part w.r.t. the matrix: d_rows^T @ (x, y, 1)
    d_matrix = matmul_shared(_homogeneous(points, xp), d_rows, xp, transpose_left=True)
    return sum_to_shape(xp.matrix_transpose(d_matrix), matrix_shape, xp)


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


def _homogeneous_cotangent(cotangent: Any, homogeneous: Any, facing: Any, w: Any, xp: Any) -> Any:
    # d(u / w) = du / w - (u / w) dw / w; nothing flows from points beyond the horizon
    mapped = homogeneous[..., :2] / w
    d_xy = xp.where(facing, cotangent / w, 0.0)
    d_w = -xp.sum(d_xy * mapped, axis=-1, keepdims=True)
    return xp.concat([d_xy, d_w], axis=-1)


def projective_vjp(
    residuals: tuple[Any, ...], cotangent: Any, *, needs: tuple[bool, ...] = (True, True)
) -> tuple[Any, Any]:
    """Cotangents of (matrix, points); ``None`` for those not in ``needs``."""
    matrix, points = residuals
    xp = array_namespace(matrix, points, cotangent)
    homogeneous = _linear_part(matrix, points, xp)
    facing, w = _in_front(matrix, homogeneous, xp)
    d_rows = _homogeneous_cotangent(cotangent, homogeneous, facing, w, xp)
    d_matrix = _matrix_cotangent(d_rows, points, tuple(matrix.shape), xp) if needs[0] else None
    d_points = None
    if needs[1]:
        d_points = sum_to_shape(d_rows @ matrix[..., :2], tuple(points.shape), xp)
    return d_matrix, d_points


def _planes(matrix: Any, xs: Any, ys: Any) -> Any:
    # M @ (x_j, y_i, 1) for every pixel of the axes, as (..., R, H, W). Each row of M
    # gives a plane whose x term varies along the width only and whose y term along
    # the height only, so one broadcast add writes all planes. They are computed
    # row-first: broadcasting over a last axis of 2 or 3 is several times slower in
    # NumPy and PyTorch.
    along_x = matrix[..., :, 0:1] * xs + matrix[..., :, 2:3]  # (..., R, W)
    along_y = matrix[..., :, 1:2] * ys  # (..., R, H)
    return along_y[..., :, :, None] + along_x[..., :, None, :]


def _separable(matrix: Any, xs: Any, ys: Any, xp: Any) -> Any:
    # `_planes` as a (..., H, W, R) view
    planes = _planes(matrix, xs, ys)
    batch = tuple(range(planes.ndim - 3))
    return xp.permute_dims(planes, (*batch, planes.ndim - 2, planes.ndim - 1, planes.ndim - 3))


def _separable_vjp(
    d_rows: Any, matrix: Any, xs: Any, ys: Any, needs: tuple[bool, ...], xp: Any
) -> tuple[Any, Any, Any]:
    batch = tuple(range(d_rows.ndim - 3))
    planes = xp.permute_dims(d_rows, (*batch, d_rows.ndim - 1, d_rows.ndim - 3, d_rows.ndim - 2))
    return _planes_vjp(planes, matrix, xs, ys, needs, xp)


def _planes_vjp(
    planes: Any, matrix: Any, xs: Any, ys: Any, needs: tuple[bool, ...], xp: Any
) -> tuple[Any, Any, Any]:
    # VJP of `_planes` given the cotangent ``planes`` (..., R, H, W)
    d_along_x = xp.sum(planes, axis=-2)  # (..., R, W)
    d_along_y = xp.sum(planes, axis=-1)  # (..., R, H)
    d_matrix = d_xs = d_ys = None
    if needs[0]:
        columns = [
            xp.sum(d_along_x * xs, axis=-1),
            xp.sum(d_along_y * ys, axis=-1),
            xp.sum(d_along_x, axis=-1),
        ]
        d_matrix = sum_to_shape(xp.stack(columns, axis=-1), tuple(matrix.shape), xp)
    if needs[1]:
        d_xs = xp.sum(d_along_x * matrix[..., :, 0:1], axis=-2)
        d_xs = sum_to_shape(d_xs, tuple(xs.shape), xp)
    if needs[2]:
        d_ys = xp.sum(d_along_y * matrix[..., :, 1:2], axis=-2)
        d_ys = sum_to_shape(d_ys, tuple(ys.shape), xp)
    return d_matrix, d_xs, d_ys


def affine_grid_forward(matrix: Any, xs: Any, ys: Any) -> tuple[Any, tuple[Any, ...]]:
    """The affine map of every point ``(xs[j], ys[i])``: shape (..., H, W, 2)."""
    xp = array_namespace(matrix, xs, ys)
    return _separable(matrix, xs, ys, xp), (matrix, xs, ys)


def affine_grid_vjp(
    residuals: tuple[Any, ...], cotangent: Any, *, needs: tuple[bool, ...] = (True, True, True)
) -> tuple[Any, Any, Any]:
    """Cotangents of (matrix, xs, ys)."""
    matrix, xs, ys = residuals
    xp = array_namespace(matrix, xs, cotangent)
    return _separable_vjp(cotangent, matrix, xs, ys, needs, xp)


def _projected_planes(matrix: Any, xs: Any, ys: Any, xp: Any) -> tuple[Any, Any, Any, Any]:
    """The homogeneous planes (..., 3, H, W), the facing mask (..., H, W) and ``w`` with
    NaN beyond the horizon, as `_in_front` decides, in planar layout.

    ``where(centre < 0, -w, w) > 0`` as ``w * sign > 0`` with ``sign`` = -1 or 1
    per item: the same test (multiplying by +-1 is exact), without a negated copy
    of every ``w``.
    """
    planes = _planes(matrix, xs, ys)
    w = planes[..., 2, :, :]
    centre = matrix[..., 2:3, 2:3]  # (..., 1, 1)
    sign = xp.where(centre < 0, -xp.ones_like(centre), xp.ones_like(centre))
    facing = w * sign > 0
    return planes, facing, w, xp.where(facing, w, xp.nan)


def projective_grid_forward(matrix: Any, xs: Any, ys: Any) -> tuple[Any, tuple[Any, ...]]:
    """The homography of every point ``(xs[j], ys[i])``: shape (..., H, W, 2).

    Computed plane by plane: dividing by a ``w`` that is NaN beyond the horizon
    gives `projective_grid`'s NaN there in the same pass as the division.
    """
    xp = array_namespace(matrix, xs, ys)
    planes, _, _, w_or_nan = _projected_planes(matrix, xs, ys, xp)
    return _interleaved(planes[..., :2, :, :] / w_or_nan[..., None, :, :], xp), (matrix, xs, ys)


def _interleaved(planes: Any, xp: Any) -> Any:
    # (..., 2, H, W) -> (..., H, W, 2), row-major (what the samplers read fastest)
    return xp.stack([planes[..., 0, :, :], planes[..., 1, :, :]], axis=-1)


def projective_grid_vjp(
    residuals: tuple[Any, ...], cotangent: Any, *, needs: tuple[bool, ...] = (True, True, True)
) -> tuple[Any, Any, Any]:
    """Cotangents of (matrix, xs, ys)."""
    matrix, xs, ys = residuals
    xp = array_namespace(matrix, xs, cotangent)
    planes, facing, w, _ = _projected_planes(matrix, xs, ys, xp)
    # `_homogeneous_cotangent`, plane by plane: d(u / w) = du / w - (u / w) dw / w
    w = xp.where(facing, w, 1.0)
    d_x = xp.where(facing, cotangent[..., 0] / w, 0.0)
    d_y = xp.where(facing, cotangent[..., 1] / w, 0.0)
    d_w = -(d_x * (planes[..., 0, :, :] / w) + d_y * (planes[..., 1, :, :] / w))
    d_planes = xp.stack([d_x, d_y, d_w], axis=-3)
    return _planes_vjp(d_planes, matrix, xs, ys, needs, xp)


AFFINE_APPLY = Op("affine_apply", affine_forward, affine_vjp)
PROJECTIVE_APPLY = Op("projective_apply", projective_forward, projective_vjp)
AFFINE_GRID = Op("affine_grid", affine_grid_forward, affine_grid_vjp)
PROJECTIVE_GRID = Op("projective_grid", projective_grid_forward, projective_grid_vjp)
