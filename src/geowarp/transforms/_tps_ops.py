"""Thin-plate spline maths: the kernel, the linear system, the point map and its VJP.

The spline through kernel centres ``c_k`` (target points) is
``f(p) = sum_k w_k U(|p - c_k|^2) + a_0 + a_x x + a_y y`` with
``U(r^2) = r^2 log r^2``. Its coefficients solve ``L @ coef = [source; 0]``,
linear in the source points, so the map's VJP w.r.t. them is one more solve
with the (symmetric) ``L``.
"""

from __future__ import annotations

from typing import Any

from .._namespace import array_namespace
from .._namespace import device as array_device
from .._ops import matmul_shared, sum_to_shape
from ..autodiff import Op


def _squared_distances(points: Any, centres: Any, xp: Any) -> Any:
    # (..., N, 2), (..., K, 2) -> (..., N, K), one coordinate at a time (no (N, K, 2) temporary)
    dx = points[..., :, 0:1] - xp.matrix_transpose(centres[..., :, 0:1])
    dy = points[..., :, 1:2] - xp.matrix_transpose(centres[..., :, 1:2])
    return dx * dx + dy * dy


def _squared_distances_by_product(points: Any, centres: Any, xp: Any) -> Any:
    """`_squared_distances` as one matrix product: ``|p|^2 - 2 p.c + |c|^2``.

    One pass over the (N, K) result instead of five; rounding leaves distances
    near 0 off by about eps * |p|^2, where the kernel is itself about 0.
    """
    ones_points = xp.ones((*points.shape[:-1], 1), dtype=points.dtype, device=array_device(points))
    ones_centres = xp.ones(
        (*centres.shape[:-1], 1), dtype=centres.dtype, device=array_device(centres)
    )
    squared_points = xp.sum(points * points, axis=-1, keepdims=True)
    squared_centres = xp.sum(centres * centres, axis=-1, keepdims=True)
    left = xp.concat([points, squared_points, ones_points], axis=-1)  # (..., N, 4)
    right = xp.concat([-2 * centres, ones_centres, squared_centres], axis=-1)  # (..., K, 4)
    return left @ xp.matrix_transpose(right)


def _kernel(r2: Any, xp: Any) -> Any:
    """``U(r2) = r2 log r2``, 0 at r2 = 0."""
    # max(r2, tiny) keeps log finite; at r2 = 0 the product is 0 * finite = 0.
    return r2 * xp.log(xp.maximum(r2, xp.finfo(r2.dtype).smallest_normal))


def _kernel_slope(r2: Any, xp: Any) -> Any:
    """``dU/dr2 = log r2 + 1``, taken as 0 at r2 = 0 (where it multiplies p - c = 0)."""
    positive = r2 > 0
    return xp.where(positive, xp.log(xp.where(positive, r2, 1.0)) + 1, 0.0)


def _affine_basis(points: Any, xp: Any) -> Any:
    ones = xp.ones((*points.shape[:-1], 1), dtype=points.dtype, device=array_device(points))
    return xp.concat([ones, points], axis=-1)


def system_matrix(centres: Any, regularization: float) -> Any:
    """``L = [[U(c, c) + lambda I, P], [P^T, 0]]`` of shape (..., K + 3, K + 3)."""
    xp = array_namespace(centres)
    count = centres.shape[-2]
    kernel = _kernel(_squared_distances(centres, centres, xp), xp)
    if regularization:
        kernel = kernel + regularization * xp.eye(
            count, dtype=centres.dtype, device=array_device(centres)
        )
    basis = _affine_basis(centres, xp)
    zeros = xp.zeros((*centres.shape[:-2], 3, 3), dtype=centres.dtype, device=array_device(centres))
    top = xp.concat([kernel, basis], axis=-1)
    bottom = xp.concat([xp.matrix_transpose(basis), zeros], axis=-1)
    return xp.concat([top, bottom], axis=-2)


def tps_forward(
    centres: Any, source: Any, points: Any, *, regularization: float
) -> tuple[Any, tuple[Any, ...]]:
    """Map ``points`` (..., N, 2) by the spline taking ``centres`` (..., K, 2) to ``source``."""
    xp = array_namespace(centres, source, points)
    system = system_matrix(centres, regularization)
    zeros = xp.zeros_like(source[..., :3, :])  # shape from a slice: works for unknown batches
    coefficients = xp.linalg.solve(system, xp.concat([source, zeros], axis=-2))
    # Shared kernel centres and points (an STN's control grid and its output grid):
    # the (N, K + 3) basis [U | 1 | x | y] is built once for the whole batch, used
    # in one matrix product and kept for the VJP.
    basis = xp.concat(
        [
            _kernel(_squared_distances_by_product(points, centres, xp), xp),
            _affine_basis(points, xp),
        ],
        axis=-1,
    )
    return matmul_shared(basis, coefficients, xp), (centres, source, points, coefficients, basis)


def tps_vjp(
    residuals: tuple[Any, ...],
    cotangent: Any,
    *,
    regularization: float,
    needs: tuple[bool, ...] = (True, True, True),
) -> tuple[Any, Any, Any]:
    """Cotangents of (centres, source, points); the centres are held fixed (zero)."""
    centres, source, points, coefficients, basis = residuals
    xp = array_namespace(centres, points, cotangent)
    count = centres.shape[-2]
    d_source = d_points = None
    if needs[1]:
        d_coefficients = matmul_shared(basis, cotangent, xp, transpose_left=True)
        system = system_matrix(centres, regularization)
        d_source = xp.linalg.solve(system, d_coefficients)[..., :count, :]
        d_source = sum_to_shape(d_source, tuple(source.shape), xp)
    if needs[2]:
        # kernel part sum_k (cot . w_k) U'(r2) 2 (p - c_k), plus the affine part
        slope = _kernel_slope(_squared_distances(points, centres, xp), xp)
        weights, linear = coefficients[..., :count, :], coefficients[..., count + 1 :, :]
        s = (cotangent @ xp.matrix_transpose(weights)) * slope
        d_points = 2 * (xp.sum(s, axis=-1, keepdims=True) * points - s @ centres)
        d_points = d_points + cotangent @ xp.matrix_transpose(linear)
        d_points = sum_to_shape(d_points, tuple(points.shape), xp)
    return xp.zeros_like(centres), d_source, d_points


TPS_APPLY = Op("tps_apply", tps_forward, tps_vjp)
