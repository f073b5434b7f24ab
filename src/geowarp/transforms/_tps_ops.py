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
from .._ops import sum_to_shape
from ..autodiff import Op


def _squared_distances(points: Any, centres: Any, xp: Any) -> Any:
    # (..., N, 2), (..., K, 2) -> (..., N, K)
    diff = points[..., :, None, :] - centres[..., None, :, :]
    return xp.sum(diff * diff, axis=-1)


def _kernel(r2: Any, xp: Any) -> tuple[Any, Any]:
    """``U(r2) = r2 log r2`` and ``dU/dr2 = log r2 + 1``, both 0 at r2 = 0."""
    positive = r2 > 0
    log_r2 = xp.log(xp.where(positive, r2, xp.ones_like(r2)))
    return r2 * log_r2, xp.where(positive, log_r2 + 1, xp.zeros_like(r2))


def _affine_basis(points: Any, xp: Any) -> Any:
    ones = xp.ones((*points.shape[:-1], 1), dtype=points.dtype, device=array_device(points))
    return xp.concat([ones, points], axis=-1)


def system_matrix(centres: Any, regularization: float) -> Any:
    """``L = [[U(c, c) + lambda I, P], [P^T, 0]]`` of shape (..., K + 3, K + 3)."""
    xp = array_namespace(centres)
    count = centres.shape[-2]
    kernel, _ = _kernel(_squared_distances(centres, centres, xp), xp)
    if regularization:
        kernel = kernel + regularization * xp.eye(
            count, dtype=centres.dtype, device=array_device(centres)
        )
    basis = _affine_basis(centres, xp)
    zeros = xp.zeros((*centres.shape[:-2], 3, 3), dtype=centres.dtype, device=array_device(centres))
    top = xp.concat([kernel, basis], axis=-1)
    bottom = xp.concat([xp.matrix_transpose(basis), zeros], axis=-1)
    return xp.concat([top, bottom], axis=-2)


def _basis(points: Any, centres: Any, xp: Any) -> tuple[Any, Any]:
    r2 = _squared_distances(points, centres, xp)
    kernel, d_kernel = _kernel(r2, xp)
    return xp.concat([kernel, _affine_basis(points, xp)], axis=-1), d_kernel


def tps_forward(
    centres: Any, source: Any, points: Any, *, regularization: float
) -> tuple[Any, tuple[Any, ...]]:
    """Map ``points`` (..., N, 2) by the spline taking ``centres`` (..., K, 2) to ``source``."""
    xp = array_namespace(centres, source, points)
    system = system_matrix(centres, regularization)
    zeros = xp.zeros((*source.shape[:-2], 3, 2), dtype=source.dtype, device=array_device(source))
    coefficients = xp.linalg.solve(system, xp.concat([source, zeros], axis=-2))
    basis, _ = _basis(points, centres, xp)
    return basis @ coefficients, (centres, source, points, coefficients)


def tps_vjp(
    residuals: tuple[Any, ...], cotangent: Any, *, regularization: float
) -> tuple[Any, Any, Any]:
    """Cotangents of (centres, source, points); the centres are held fixed (zero)."""
    centres, source, points, coefficients = residuals
    xp = array_namespace(centres, points, cotangent)
    count = centres.shape[-2]
    basis, d_kernel = _basis(points, centres, xp)
    d_coefficients = xp.matrix_transpose(basis) @ cotangent
    system = system_matrix(centres, regularization)
    d_source = xp.linalg.solve(system, d_coefficients)[..., :count, :]
    # points: kernel part sum_k (cot . w_k) U'(r2) 2 (p - c_k), plus the affine part
    weights, linear = coefficients[..., :count, :], coefficients[..., count + 1 :, :]
    s = (cotangent @ xp.matrix_transpose(weights)) * d_kernel
    d_points = 2 * (xp.sum(s, axis=-1, keepdims=True) * points - s @ centres)
    d_points = d_points + cotangent @ xp.matrix_transpose(linear)
    return (
        xp.zeros_like(centres),
        sum_to_shape(d_source, tuple(source.shape), xp),
        sum_to_shape(d_points, tuple(points.shape), xp),
    )


TPS_APPLY = Op("tps_apply", tps_forward, tps_vjp)
