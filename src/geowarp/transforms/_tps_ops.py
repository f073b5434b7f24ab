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


def _affine_part(points: Any, affine: Any) -> Any:
    # a_0 + a_x x + a_y y for points (..., N, 2) and affine coefficients (..., 3, 2)
    return (
        affine[..., None, 0, :]
        + points[..., 0:1] * affine[..., None, 1, :]
        + (points[..., 1:2] * affine[..., None, 2, :])
    )


def tps_forward(
    centres: Any, source: Any, points: Any, *, regularization: float
) -> tuple[Any, tuple[Any, ...]]:
    """Map ``points`` (..., N, 2) by the spline taking ``centres`` (..., K, 2) to ``source``."""
    xp = array_namespace(centres, source, points)
    count = centres.shape[-2]
    system = system_matrix(centres, regularization)
    zeros = xp.zeros((*source.shape[:-2], 3, 2), dtype=source.dtype, device=array_device(source))
    coefficients = xp.linalg.solve(system, xp.concat([source, zeros], axis=-2))
    # Shared kernel centres and points (an STN's control grid and its output grid):
    # the (N, K) kernel is built once for the whole batch and kept for the VJP.
    kernel = _kernel(_squared_distances(points, centres, xp), xp)
    out = matmul_shared(kernel, coefficients[..., :count, :], xp)
    out = out + _affine_part(points, coefficients[..., count:, :])
    return out, (centres, source, points, coefficients, kernel)


def tps_vjp(
    residuals: tuple[Any, ...],
    cotangent: Any,
    *,
    regularization: float,
    needs: tuple[bool, ...] = (True, True, True),
) -> tuple[Any, Any, Any]:
    """Cotangents of (centres, source, points); the centres are held fixed (zero)."""
    centres, source, points, coefficients, kernel = residuals
    xp = array_namespace(centres, points, cotangent)
    count = centres.shape[-2]
    d_source = d_points = None
    if needs[1]:
        d_weights = matmul_shared(kernel, cotangent, xp, transpose_left=True)
        d_affine = matmul_shared(_affine_basis(points, xp), cotangent, xp, transpose_left=True)
        d_coefficients = xp.concat([d_weights, d_affine], axis=-2)
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
