"""Thin-plate spline maths: the kernel, the linear system, the point map and its VJP.

The spline through kernel centres ``c_k`` (target points) is
``f(p) = sum_k w_k U(|p - c_k|^2) + a_0 + a_x x + a_y y`` with
``U(r^2) = r^2 log r^2``. Its coefficients solve ``L @ coef = [source; 0]``,
linear in the source points, so the map's VJP w.r.t. them is one more solve
with the (symmetric) ``L``.

For a sampling grid the points and the centres rarely change between calls
(an STN's output grid and control grid), so the map is best written as
``f(points) = W^T @ source`` with interpolation weights ``W`` (K, N) that do
not depend on the source points: `grid_weights` builds them, `GRID_WEIGHTS`
keeps the last few, and `TPS_GRID` is the product and its VJP. Where the
weights cannot be cached, the grid is `TPS_APPLY` at the pixel centres.

A backend may bring the three sums over the basis (the point map, the
weights and the grid read through them) as its ops ``spline_points``,
``spline_weights`` and ``spline_weighted_sum``. NumPy's built-in backend
does (`geowarp.transforms._tps_numpy`), taking them term by term in a fixed
order instead of by BLAS: a point's value then never depends on how many
points are mapped with it, so a chunk of a grid is the whole grid's, bit for
bit. On such a backend a grid whose weights would not fit the cache
(`WEIGHT_LIMIT`) maps its points (`map_points`): building weights costs K
times more than mapping the points once.

`GRID_WEIGHTS` is process-wide state, and this is what it does across threads
and processes:

* One cache per process, never shared: nothing is written to disk or sent
  between processes. Each ``DistributedDataParallel`` rank, each dataloader
  worker, each dask worker process builds its own weights on its first
  spline grid and reuses them from then on (a forked child starts with a
  copy of its parent's entries, as valid there as the copied arrays they
  describe).
* Threads of one process share it. A re-entrant lock guards every read and
  write of the table (re-entrant because a freed tensor's weak-reference
  callback may drop its entry inside a locked block); the weights are built
  outside the lock, so two threads missing the same key at once both build
  them, get equal arrays, and the later insert wins. Entries are never
  mutated after insertion, so a thread keeps a valid array even when another
  evicts it.
* Keys are by value for arrays in host memory (numpy arrays, CPU tensors:
  their dtype, shape and bytes), so equal centres hit whatever object holds
  them; by identity plus version counter for tensors on accelerators, with a
  weak reference that drops the entry when the tensor is freed and guards
  against a reused ``id``. Arrays with no key (JAX, TensorFlow, traced or
  gradient-recording tensors) are never cached: their grid is `TPS_APPLY`.
* Which entries are cached never changes a result: centres with a key
  always take the weights path, whether the weights were built now or
  earlier, in this thread or another.
"""

from __future__ import annotations

import functools
import math
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from .. import backends
from .._namespace import array_namespace, backend_name
from .._namespace import device as array_device
from .._ops import content_key, matmul_shared, matmul_shared_right, solve, sum_to_shape
from ..autodiff import Op

#: Bytes of weights `GRID_WEIGHTS` keeps; a numpy grid needing more maps its points.
WEIGHT_LIMIT = 2**27


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
    # max(r2, tiny) keeps log finite; at r2 = 0 the product is 0 * finite = 0. The floor
    # is an array: a Python scalar here makes torch.compile break its graph.
    tiny = xp.asarray(xp.finfo(r2.dtype).smallest_normal, dtype=r2.dtype, device=array_device(r2))
    return r2 * xp.log(xp.maximum(r2, tiny))


def _kernel_slope(r2: Any, xp: Any) -> Any:
    """``dU/dr2 = log r2 + 1``, taken as 0 at r2 = 0 (where it multiplies p - c = 0)."""
    positive = r2 > 0
    return xp.where(positive, xp.log(xp.where(positive, r2, 1.0)) + 1, 0.0)


def _affine_basis(points: Any, xp: Any) -> Any:
    ones = xp.ones((*points.shape[:-1], 1), dtype=points.dtype, device=array_device(points))
    return xp.concat([ones, points], axis=-1)


def _basis(points: Any, centres: Any, xp: Any) -> Any:
    """``[U(|p - c_k|^2) | 1 | x | y]`` of shape (..., N, K + 3), batch dimensions broadcast."""
    kernel = _kernel(_squared_distances_by_product(points, centres, xp), xp)
    affine = _affine_basis(points, xp)
    if tuple(affine.shape[:-1]) != tuple(kernel.shape[:-1]):  # batched centres, shared points
        affine = xp.broadcast_to(affine, (*kernel.shape[:-1], 3))
    return xp.concat([kernel, affine], axis=-1)


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


def spline_coefficients(centres: Any, source: Any, regularization: float) -> Any:
    """The spline's coefficients ``[w; a]`` (..., K + 3, 2): one solve with the system matrix."""
    xp = array_namespace(centres, source)
    system = system_matrix(centres, regularization)
    zeros = xp.zeros_like(source[..., :3, :])  # shape from a slice: works for unknown batches
    return solve(system, xp.concat([source, zeros], axis=-2), xp)


def tps_forward(
    centres: Any, source: Any, points: Any, *, regularization: float
) -> tuple[Any, tuple[Any, ...]]:
    """Map ``points`` (..., N, 2) by the spline taking ``centres`` (..., K, 2) to ``source``."""
    xp = array_namespace(centres, source, points)
    coefficients = spline_coefficients(centres, source, regularization)
    mapped, basis = _map(coefficients, centres, points, xp)
    return mapped, (centres, source, points, coefficients, basis)


def _map(coefficients: Any, centres: Any, points: Any, xp: Any) -> tuple[Any, Any]:
    """The map of ``points`` by the spline of ``coefficients``, and its basis (None where a
    backend's ``spline_points`` maps them)."""
    native = backends.op(backend_name(xp), "spline_points")
    if native is not None:  # (numpy: a fixed sum per point) the VJP builds the basis if need be
        return native(coefficients, centres, points), None
    # Shared kernel centres and points (an STN's control grid and its output grid):
    # the (N, K + 3) basis [U | 1 | x | y] is built once for the whole batch, used
    # in one matrix product and kept for the VJP.
    basis = _basis(points, centres, xp)
    return matmul_shared(basis, coefficients, xp), basis


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
        if basis is None:  # a backend's spline_points keeps no basis
            basis = _basis(points, centres, xp)
        d_coefficients = matmul_shared(basis, cotangent, xp, transpose_left=True)
        system = system_matrix(centres, regularization)
        d_source = solve(system, d_coefficients, xp)[..., :count, :]
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


def weight_columns(centres: Any, regularization: float) -> Any:
    """``inv(L)[:, :K]`` (..., K + 3, K): the columns of inv(L) that meet the source points."""
    xp = array_namespace(centres)
    count = centres.shape[-2]
    system = system_matrix(centres, regularization)
    device = array_device(centres)
    selector = xp.concat(  # [I_K; 0]
        [
            xp.eye(count, dtype=centres.dtype, device=device),
            xp.zeros((3, count), dtype=centres.dtype, device=device),
        ],
        axis=-2,
    )
    return solve(system, xp.broadcast_to(selector, (*system.shape[:-1], count)), xp)


def grid_weights(centres: Any, points: Any, *, regularization: float, columns: Any = None) -> Any:
    """Weights ``W`` (..., K, N): ``W^T @ source`` is the spline's map of ``points`` (..., N, 2).

    ``W^T = [U(points, centres) | 1 | x | y] @ inv(L)[:, :K]``, from one solve
    with the system matrix (`weight_columns`, or ``columns`` when given); it
    depends on the centres and the points only. Stored (K, N), row-major, so
    the map is one product with a long last axis.
    """
    xp = array_namespace(centres, points)
    if columns is None:
        columns = weight_columns(centres, regularization)
    native = backends.op(backend_name(xp), "spline_weights")
    if native is not None:
        return native(columns, centres, points)
    return xp.matrix_transpose(columns) @ xp.matrix_transpose(_basis(points, centres, xp))


def grid_forward(weights: Any, source: Any) -> tuple[Any, tuple[Any, ...]]:
    """``W^T @ source``: weights (..., K, N) and source (..., K, 2) to points (..., N, 2).

    Computed as the (..., 2, N) planes ``source^T @ W`` (a batch of sources is
    one product with the shared weights) and returned as their (..., N, 2) view.
    """
    xp = array_namespace(weights, source)
    native = backends.op(backend_name(xp), "spline_weighted_sum")
    if native is not None:
        return native(weights, source), (weights, source)
    planes = matmul_shared_right(xp.matrix_transpose(source), weights, xp)
    return xp.matrix_transpose(planes), (weights, source)


def grid_vjp(
    residuals: tuple[Any, ...], cotangent: Any, *, needs: tuple[bool, ...] = (True, True)
) -> tuple[Any, Any]:
    """Cotangents of (weights, source); the weights come from the fixed centres (zero)."""
    weights, source = residuals
    xp = array_namespace(weights, source, cotangent)
    d_weights = d_source = None
    if needs[0]:
        d_weights = xp.zeros_like(weights)
    if needs[1]:
        d_planes = xp.matrix_transpose(cotangent)  # (..., 2, N)
        d_source_t = matmul_shared_right(d_planes, xp.matrix_transpose(weights), xp)
        d_source = xp.matrix_transpose(d_source_t)
        d_source = sum_to_shape(d_source, tuple(source.shape), xp)
    return d_weights, d_source


TPS_GRID = Op("tps_grid", grid_forward, grid_vjp)


def maps_points(centres: Any, count: int) -> bool:
    """Whether a spline grid of ``count`` points maps them (`map_points`) instead of using weights.

    Only on a backend with per-point spline sums (an op ``spline_points``:
    numpy's), and only where the weights (K per point, in the centres' dtype,
    per batch item of the centres) would exceed `WEIGHT_LIMIT`: never kept,
    they would be built on every call, at K times the cost of mapping the
    points. Other libraries keep BLAS's products and their weights path.
    A rule on shapes alone, so every chunk of a grid follows the whole grid's.
    """
    if backends.op(backend_name(array_namespace(centres)), "spline_points") is None:
        return False
    per_point = math.prod(centres.shape[:-1]) * centres.dtype.itemsize
    return per_point * count > WEIGHT_LIMIT


def map_points(
    centres: Any, source: Any, points: Any, *, regularization: float, coefficients: Any = None
) -> Any:
    """The spline's map of ``points`` (..., N, 2), computed in the working dtype (float64).

    As precise as the weights path: the small system is solved in float64
    (or ``coefficients`` (..., K + 3, 2), its solution, are given), and the
    result comes back in the spline's dtype.
    """
    xp = array_namespace(centres, source, points)
    dtype = xp.result_type(centres.dtype, source.dtype)
    precise = xp.astype(centres, _working_dtype(centres, xp), copy=False)
    if coefficients is None:
        precise_source = xp.astype(source, precise.dtype, copy=False)
        coefficients = spline_coefficients(precise, precise_source, regularization)
    mapped, _ = _map(coefficients, precise, xp.astype(points, precise.dtype, copy=False), xp)
    return xp.astype(mapped, dtype, copy=False)


class GridWeightCache:
    """The `grid_weights` of recent sampling grids, for centres that come again unchanged.

    An STN warps every batch with the same control points and output grid, so
    the (K, N) weights are built once and reused. Entries are keyed by
    `geowarp._ops.content_key` of the centres (their values on the CPU, their
    identity and version counter on accelerators) together with the grid's
    shape and frame and the regularization. Centres with a key always take
    this path, so a grid never depends on what was cached before. An entry
    keyed by identity goes when its tensor is freed; at most ``max_entries``
    entries and ``max_bytes`` bytes of weights are kept, least recently used
    first out.
    """

    def __init__(self, max_entries: int = 8, max_bytes: int = WEIGHT_LIMIT) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        # key -> (weak reference for identity keys, weights, bytes)
        self._entries: OrderedDict[tuple[Any, ...], tuple[Any, Any, int]] = OrderedDict()
        self._lock = threading.RLock()  # a freed tensor's callback may run inside a locked block

    def __call__(
        self,
        centres: Any,
        points: Callable[[], Any],
        key: tuple[Any, ...],
        *,
        regularization: float,
    ) -> Any:
        """`grid_weights` of ``centres`` and ``points()``, or None (the caller maps the points).

        None for centres with no content key. ``points`` builds the grid points
        when the weights are built; ``key`` names them (shape and frame).
        Weights are computed in float64 where the device has it (the spline's
        system is poorly conditioned for float32) and kept in the centres'
        dtype.
        """
        xp = array_namespace(centres)
        content = content_key(centres, xp)
        if content is None:
            return None
        full_key = (*key, regularization, content)
        with self._lock:
            entry = self._entries.get(full_key)
            if entry is not None and (entry[0] is None or entry[0]() is centres):
                self._entries.move_to_end(full_key)
                return entry[1]
        precise = xp.astype(centres, _working_dtype(centres, xp), copy=False)
        weights = grid_weights(
            precise, xp.astype(points(), precise.dtype, copy=False), regularization=regularization
        )
        weights = xp.astype(weights, centres.dtype, copy=False)
        size = math.prod(weights.shape) * (xp.finfo(weights.dtype).bits // 8)
        if size > self.max_bytes:
            return weights
        reference = None
        if content[0] == "identity":
            reference = weakref.ref(centres, functools.partial(self._discard, full_key))
        with self._lock:
            self._entries[full_key] = (reference, weights, size)
            self._entries.move_to_end(full_key)
            while len(self._entries) > self.max_entries or self.nbytes > self.max_bytes:
                self._entries.popitem(last=False)
        return weights

    def _discard(self, key: tuple[Any, ...], _: Any = None) -> None:
        with self._lock:
            self._entries.pop(key, None)

    @property
    def nbytes(self) -> int:
        """Bytes held by the cached weights."""
        return sum(size for _, _, size in self._entries.values())

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        """How many weights are kept."""
        return len(self._entries)


def _working_dtype(array: Any, xp: Any) -> Any:
    # float64 except on Apple's MPS devices, which have none
    if getattr(array_device(array), "type", None) == "mps":
        return array.dtype
    return xp.float64


GRID_WEIGHTS = GridWeightCache()
