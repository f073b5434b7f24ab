"""Point maps of the matrix families and their VJPs (w.r.t. the matrix and the points)."""

from __future__ import annotations

from collections.abc import Callable
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
    weighted = xp.sum(d_along_y * ys, axis=-1)
    return _axes_vjp(d_along_x, weighted, lambda: d_along_y, (matrix, xs, ys), needs, xp)


def _axes_vjp(
    d_along_x: Any,
    weighted: Any,
    along_y: Callable[[], Any],
    residuals: tuple[Any, Any, Any],
    needs: tuple[bool, ...],
    xp: Any,
) -> tuple[Any, Any, Any]:
    """Cotangents of (matrix, xs, ys) from sums of the planes' cotangents: over the
    height ``d_along_x`` (..., R, W), over the plane weighted by ``ys`` (..., R), and
    over the width ``along_y()`` (..., R, H), asked for only where ``ys`` needs it."""
    matrix, xs, ys = residuals
    d_matrix = d_xs = d_ys = None
    if needs[0]:
        columns = [xp.sum(d_along_x * xs, axis=-1), weighted, xp.sum(d_along_x, axis=-1)]
        d_matrix = sum_to_shape(xp.stack(columns, axis=-1), tuple(matrix.shape), xp)
    if needs[1]:
        d_xs = xp.sum(d_along_x * matrix[..., :, 0:1], axis=-2)
        d_xs = sum_to_shape(d_xs, tuple(xs.shape), xp)
    if needs[2]:
        d_ys = xp.sum(along_y() * matrix[..., :, 1:2], axis=-2)
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
    """Cotangents of (matrix, xs, ys).

    `_homogeneous_cotangent` plane by plane, ``d(u / w) = du / w - (u / w) dw / w``
    with ``r = 1 / w`` in front of the horizon and 0 beyond it, so nothing flows
    from there: ``d_u = c_u r`` and ``d_w = -r (d_x x + d_y y)`` for the planes
    ``x, y`` of `_planes`. Each plane of ``(d_x, d_y, d_w)`` then meets the base
    axes in one matrix product, ``[1; ys] @ plane`` (see `_planes_vjp`), never
    stacked. About half the passes over the grid of the stacked formulation.
    """
    matrix, xs, ys = residuals
    xp = array_namespace(matrix, xs, cotangent)
    along_x = matrix[..., :, 0:1] * xs + matrix[..., :, 2:3]  # (..., 3, W)
    along_y = matrix[..., :, 1:2] * ys  # (..., 3, H)

    def plane(row: int) -> Any:  # row ``row`` of `_planes`
        return along_y[..., row, :, None] + along_x[..., row, None, :]

    w = plane(2)
    centre = matrix[..., 2:3, 2:3]
    sign = xp.where(centre < 0, -xp.ones_like(centre), xp.ones_like(centre))
    reciprocal = xp.where(w * sign > 0, 1.0 / w, 0.0)  # `_projected_planes`' facing test
    d_x = cotangent[..., 0] * reciprocal
    d_y = cotangent[..., 1] * reciprocal
    d_w = -((d_x * plane(0) + d_y * plane(1)) * reciprocal)
    return _split_planes_vjp((d_x, d_y, d_w), matrix, xs, ys, needs, xp)


def _split_planes_vjp(
    planes: tuple[Any, ...], matrix: Any, xs: Any, ys: Any, needs: tuple[bool, ...], xp: Any
) -> tuple[Any, Any, Any]:
    # `_planes_vjp` for the cotangent planes (..., H, W) of the matrix's rows, one by
    # one: ``[1; ys] @ plane`` gives the sums over the height, plain and weighted by
    # ``ys``, reading each plane once
    weights = xp.stack([xp.ones_like(ys), ys], axis=0)  # (2, H)
    sums = [weights @ p for p in planes]  # (..., 2, W) each
    d_along_x = xp.stack([s[..., 0, :] for s in sums], axis=-2)  # (..., R, W)
    weighted = xp.stack([xp.sum(s[..., 1, :], axis=-1) for s in sums], axis=-1)  # (..., R)

    def along_y() -> Any:
        return xp.stack([xp.sum(p, axis=-1) for p in planes], axis=-2)  # (..., R, H)

    return _axes_vjp(d_along_x, weighted, along_y, (matrix, xs, ys), needs, xp)


AFFINE_APPLY = Op("affine_apply", affine_forward, affine_vjp)
PROJECTIVE_APPLY = Op("projective_apply", projective_forward, projective_vjp)
AFFINE_GRID = Op("affine_grid", affine_grid_forward, affine_grid_vjp)
PROJECTIVE_GRID = Op("projective_grid", projective_grid_forward, projective_grid_vjp)
