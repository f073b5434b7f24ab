"""Levenberg-Marquardt on one pyramid level: the warped moving image against the fixed one.

Each iteration samples the moving image and its gradients at the current
sampling grid (one `geowarp.sample` call), builds the image Jacobian of the
valid pixels, and solves the small damped normal equations for every pair of
the batch at once. A step that does not lower a pair's loss is refused and
that pair's damping raised (a shorter, more gradient-like step); an accepted
one lowers it toward Gauss-Newton. A pair is done when its next step would
move no point by more than the tolerance, in the moving image's pixels.
On a CPU, a large batch's equations are built a few pairs at a time, skipping
the pairs that are done (`CPU_CHUNK_POINTS`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from .._namespace import device as array_device
from .._namespace import known_values
from .._ops import compiled, compiles, solve
from ..grid import axis_to_pixel
from ..samplers import sample
from ._models import Geometry, Model
from ._mutual import DEFAULT_BINS, mutual_information

#: Damping of the first step (relative to the normal matrix's diagonal), and its bounds.
INITIAL_DAMPING, MIN_DAMPING, MAX_DAMPING = 1e-4, 1e-9, 1e9
#: A refused step raises the damping to at least ten times this (smaller is no change).
REJECTED_DAMPING = 1e-3
#: A refused step shorter than this many tolerances ends the level (see `optimise`).
STALL_STEPS = 10.0
#: On a CPU, the normal equations of a batch are built a few pairs at a time, with at
#: most this many fixed pixels per chunk: a chunk's arrays stay in cache and the
#: allocator reuses their memory, where a whole batch's arrays (16 MB each for 64
#: pairs of 256 x 256) are fresh memory every time, bound by page faults and memory
#: bandwidth. Chunks whose pairs are all done are skipped.
CPU_CHUNK_POINTS = 2**17


@dataclass(frozen=True)
class Level:
    """One pyramid level of a registration problem."""

    fixed: Any  # (B or 1, C, H, W)
    stack: Any  # (B or 1, 3 C, H_m, W_m): moving image, then its x and y gradients per unit
    mask: Any  # (B or 1, 1, H, W) 0/1 weights, or None
    moving_shape: tuple[int, int]
    geometry: Geometry


@dataclass(frozen=True)
class Settings:
    loss: str
    max_iterations: int
    tolerance: float
    bins: int = DEFAULT_BINS


def _inside(grid: Any, shape: tuple[int, int], align_corners: bool) -> Any:
    # sampling points whose four bilinear neighbours all lie in the moving image
    # (NaN, beyond a homography's horizon, compares False: outside)
    height, width = shape
    x = axis_to_pixel(grid[..., 0], width, align_corners)
    y = axis_to_pixel(grid[..., 1], height, align_corners)
    return (x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)


def _normal_equations(
    model: Model, level: Level, params: Any, settings: Settings, xp: Any
) -> tuple[Any, Any, Any]:
    """(loss (B,), gradient (B, P), normal matrix (B, P, P)) of the residual at ``params``."""
    geometry = level.geometry
    grid = model.transform(params).sampling_grid(
        geometry.shape, align_corners=geometry.align_corners
    )
    sampled = sample(level.stack, grid, align_corners=geometry.align_corners)
    channels = level.fixed.shape[1]
    weight = xp.astype(_inside(grid, level.moving_shape, geometry.align_corners), grid.dtype)
    weight = weight[:, None, ...] if level.mask is None else weight[:, None, ...] * level.mask
    count = xp.sum(weight, axis=(1, 2, 3))  # (B,) valid pixels
    # zeroed outside the valid pixels, the image Jacobian's rows vanish there
    gx = sampled[:, channels : 2 * channels, ...] * weight
    gy = sampled[:, 2 * channels :, ...] * weight
    warped = sampled[:, :channels, ...]
    fixed, flat_weight = _flat(level.fixed, xp), _flat(weight, xp)
    parts = (gx, gy, grid, params)
    if settings.loss == "ncc":
        images = (warped, fixed, flat_weight)
        return _ncc_equations(model, parts, geometry, images, count, xp)
    if settings.loss == "mi":
        images = (warped, fixed, flat_weight)
        return _mi_equations(model, parts, level, images, settings.bins, xp)
    residual = (_flat(warped, xp) - fixed) * flat_weight
    normal, (gradient,) = _products(model, parts, [residual], geometry, xp)
    value = xp.sum(residual * residual, axis=(1, 2)) / (channels * count)
    return value, xp.sum(gradient, axis=1), xp.sum(normal, axis=1)


def _products(
    model: Model, parts: tuple[Any, ...], vectors: list[Any], level: Geometry, xp: Any
) -> tuple[Any, list[Any]]:
    """Per channel ``A^T A`` (B, C, P, P) and ``A^T v`` (B, C, P) for each of ``vectors``
    (B, C, N; None for ones) of the image Jacobian ``A`` (its columns (B, C, P, N)).

    A family with closed-form moments (`AffineModel.products`) never builds ``A``.
    """
    products = getattr(model, "products", None)
    if products is not None:
        normal, out = products(parts[0], parts[1], vectors, level, xp)
        return normal, list(out)
    gx, gy, grid, params = parts
    columns = model.columns(gx, gy, grid, params, level, xp)  # (B, C, P, N)
    # A^T v as products and sums along each contiguous column, not a matrix-vector
    # product: BLAS would run that on threads, which on a CPU keep spinning after
    # the call and slow whatever runs next (another library's work included)
    out = [
        xp.sum(columns if vector is None else columns * vector[..., None, :], axis=-1)
        for vector in vectors
    ]
    return columns @ xp.matrix_transpose(columns), out


def _flat(image: Any, xp: Any) -> Any:
    batch, channels, height, width = image.shape
    return xp.reshape(image, (batch, channels, height * width))


def _standardized(values: Any, weight: Any, count: Any, xp: Any) -> tuple[Any, Any]:
    """Values (B, C, N) less their mean over the valid pixels, over their deviation there."""
    mean = xp.sum(values * weight, axis=-1, keepdims=True) / count
    centred = (values - mean) * weight
    deviation = xp.sqrt(xp.sum(centred * centred, axis=-1, keepdims=True) / count)
    return centred / deviation, deviation


def _ncc_equations(
    model: Model,
    parts: tuple[Any, ...],
    geometry: Geometry,
    images: tuple[Any, Any, Any],
    count: Any,
    xp: Any,
) -> tuple[Any, Any, Any]:
    """Gauss-Newton for ``1 - NCC``: the residual of the standardized images.

    With ``z`` the standardized warped image (deviation ``s``) and ``A`` the
    image Jacobian, ``dz = (A - 1 m^T - z q^T) / s`` where ``m = A^T 1 / n``
    and ``q = A^T z / n``. As ``z`` has zero mean and ``z^T z = n``, the
    normal matrix reduces to ``(A^T A - n m m^T - n q q^T) / s^2``: no
    (N, P) array beyond ``A`` itself.
    """
    warped, fixed, weight = images  # (B, C, H, W), (B, C, N), (B, 1, N)
    channels = warped.shape[1]
    n = count[:, None, None]
    z_warped, deviation = _standardized(_flat(warped, xp), weight, n, xp)
    z_fixed, _ = _standardized(fixed, weight, n, xp)
    residual = z_warped - z_fixed
    ata, (along_residual, along_z, ones) = _products(
        model, parts, [residual, z_warped, None], geometry, xp
    )
    q, m = along_z / n, ones / n  # (B, C, P)
    outer = (m[..., :, None] * m[..., None, :] + q[..., :, None] * q[..., None, :]) * n[..., None]
    normal = (ata - outer) / (deviation[..., None] ** 2)
    agreement = n - xp.sum(z_warped * z_fixed, axis=-1, keepdims=True)  # n (1 - NCC)
    gradient = (along_residual - q * agreement) / deviation
    value = xp.sum(residual * residual, axis=(1, 2)) / (2 * channels * count)
    return value, xp.sum(gradient, axis=1), xp.sum(normal, axis=1)


def _mi_equations(
    model: Model,
    parts: tuple[Any, ...],
    level: Level,
    images: tuple[Any, Any, Any],
    bins: int,
    xp: Any,
) -> tuple[Any, Any, Any]:
    """``-MI`` (see `_mutual`): its gradient ``A^T dL/dI`` and the normal matrix
    ``sum_c c_c A_c^T A_c`` with a positive curvature ``c`` per channel."""
    warped, fixed, weight = images  # (B, C, H, W), (B, C, N), (B, 1, N)
    channels = warped.shape[1]
    moving = _flat(level.stack[:, :channels, ...], xp)
    mask = None if level.mask is None else _flat(level.mask, xp)
    value, derivative, curvature = mutual_information(
        _flat(warped, xp), fixed, moving, weight, mask, bins, xp
    )
    ata, (gradient,) = _products(model, parts, [derivative], level.geometry, xp)
    normal = ata * curvature[..., None, None]
    return value, xp.sum(gradient, axis=1), xp.sum(normal, axis=1)


def _on_cpu(array: Any) -> bool:
    """Whether ``array`` lives in host memory (numpy, or a library's CPU device)."""
    where = array_device(array)
    kind = getattr(where, "type", None) or getattr(where, "platform", None) or where
    return "cpu" in str(kind).lower()


def _chunk(level: Level, start: int, stop: int, batch: int) -> Level:
    """Pairs ``start:stop`` of ``level`` (of ``batch`` pairs); a shared (1, ...) array stays."""

    def part(array: Any) -> Any:
        return array if array is None or array.shape[0] != batch else array[start:stop, ...]

    return Level(
        part(level.fixed), part(level.stack), part(level.mask), level.moving_shape, level.geometry
    )


def _equations(
    model: Model, level: Level, params: Any, settings: Settings, xp: Any, done: Any
) -> tuple[Any, Any, Any]:
    """`_normal_equations` of every pair, in chunks of pairs on a CPU (`CPU_CHUNK_POINTS`).

    A chunk whose pairs are all ``done`` is not computed: its loss is NaN
    (never better) and its gradient and normal matrix are zeros.
    """
    batch = params.shape[0]
    height, width = level.geometry.shape
    size = max(1, CPU_CHUNK_POINTS // (height * width))
    if size >= batch or not _on_cpu(params):
        return _normal_equations(model, level, params, settings, xp)
    finished = known_values(done)
    values, gradients, normals = [], [], []
    for start in range(0, batch, size):
        stop = min(batch, start + size)
        if bool(np.all(finished[start:stop])):
            count = params.shape[1]
            zeros = xp.zeros(
                (stop - start, count, count), dtype=params.dtype, device=array_device(params)
            )
            values.append(zeros[:, 0, 0] + math.nan)
            gradients.append(zeros[:, 0, :])
            normals.append(zeros)
            continue
        value, gradient, normal = _normal_equations(
            model, _chunk(level, start, stop, batch), params[start:stop, ...], settings, xp
        )
        values.append(value)
        gradients.append(gradient)
        normals.append(normal)
    return xp.concat(values, axis=0), xp.concat(gradients, axis=0), xp.concat(normals, axis=0)


def _level_equations(
    model: Model, level: Level, settings: Settings, xp: Any
) -> Callable[[Any, Any], tuple[Any, Any, Any]]:
    """``equations(params, done)``: `_equations` of ``level``, or where the library
    compiles (`geowarp._ops.compiled`), `_normal_equations` compiled once per level
    shape, every pair each time (the compiled program keeps its arrays in cache)."""
    if not compiles(xp):
        return lambda params, done: _equations(model, level, params, settings, xp, done)
    geometry = level.geometry
    step = compiled(
        xp,
        _equations_of_arrays,
        model=model,
        moving_shape=level.moving_shape,
        shape=geometry.shape,
        scale=geometry.scale,
        align_corners=geometry.align_corners,
        settings=settings,
        xp=xp,
    )
    arrays = (level.fixed, level.stack, level.mask, geometry.xs, geometry.ys)
    return lambda params, done: step(*arrays, params)


def _equations_of_arrays(
    fixed: Any,
    stack: Any,
    mask: Any,
    xs: Any,
    ys: Any,
    params: Any,
    *,
    model: Model,
    moving_shape: tuple[int, int],
    shape: tuple[int, int],
    scale: tuple[float, float],
    align_corners: bool,
    settings: Settings,
    xp: Any,
) -> tuple[Any, Any, Any]:
    """`_normal_equations` with the level given as arrays and settings (to compile)."""
    geometry = Geometry(shape, xs, ys, scale, align_corners)
    level = Level(fixed, stack, mask, moving_shape, geometry)
    return _normal_equations(model, level, params, settings, xp)


def _damped_step(normal: Any, gradient: Any, damping: Any, xp: Any) -> Any:
    """The Levenberg-Marquardt step ``-(H + damping diag(H))^-1 g``; 0 where singular."""
    size = normal.shape[-1]
    eye = xp.eye(size, dtype=normal.dtype, device=array_device(normal))
    diagonal = xp.sum(normal * eye, axis=-1)  # (B, P)
    # a floor keeps a parameter the image cannot see (a flat region) from a zero pivot
    floor = xp.finfo(normal.dtype).eps * xp.sum(diagonal, axis=-1, keepdims=True) / size
    damped = normal + eye * (damping[:, None] * diagonal + floor)[:, None, :]
    step = solve(damped, -gradient[..., None], xp)[..., 0]
    return step


def optimise(
    model: Model,
    level: Level,
    params: Any,
    settings: Settings,
    xp: Any,
    report: Callable[[np.ndarray], None],
) -> tuple[Any, Any, Any]:
    """Refine ``params`` (B, P) on ``level``; returns (params, loss (B,), converged (B,))."""
    batch = params.shape[0]
    dtype, device = params.dtype, array_device(params)
    # (the standard's full() is missing from some namespaces: zeros plus a value)
    zeros = xp.zeros((batch,), dtype=dtype, device=device)
    state = _State(
        best=params,
        trial=params,
        gradient=xp.zeros_like(params),
        normal=xp.zeros((batch, params.shape[1], params.shape[1]), dtype=dtype, device=device),
        best_loss=zeros + math.inf,
        damping=zeros + INITIAL_DAMPING,
        done=zeros > 0,
        moved=zeros + math.inf,
    )
    equations = _level_equations(model, level, settings, xp)
    # one program for every level: the level's scale is an argument, not a constant
    update = compiled(xp, _update, model=model, tolerance=settings.tolerance, xp=xp)
    scale = xp.asarray(level.geometry.scale, dtype=dtype, device=device)
    for _ in range(settings.max_iterations):
        state = update(state, *equations(state.trial, state.done), scale)
        report(known_values(state.best_loss))
        if bool(np.all(known_values(state.done))):
            break
    return state.best, state.best_loss, state.done


class _State(NamedTuple):
    """What a Levenberg-Marquardt iteration carries to the next, per pair."""

    best: Any  # (B, P) the params of the lowest loss so far
    trial: Any  # (B, P) the params whose equations come next
    gradient: Any  # (B, P) and
    normal: Any  # (B, P, P) the equations at ``best``
    best_loss: Any  # (B,)
    damping: Any  # (B,)
    done: Any  # (B,) bool
    moved: Any  # (B,) how far the trial's step moved points (pixels)


def _update(
    state: _State,
    value: Any,
    trial_gradient: Any,
    trial_normal: Any,
    scale: Any,
    *,
    model: Model,
    tolerance: float,
    xp: Any,
) -> _State:
    """One Levenberg-Marquardt iteration after the trial's equations: the next state;
    ``scale`` (2,) is the level's moving-image pixels per normalized unit along (x, y)."""
    best, trial, gradient, normal, best_loss, damping, done, moved = state
    better = (value <= best_loss) & ~done  # NaN (no valid pixel) is never better
    # Near the optimum, interpolation noise leaves the Gauss-Newton model a little
    # off: a small step that fails to lower the loss marks the noise floor.
    done = done | (~better & (moved < STALL_STEPS * tolerance))
    best = xp.where(better[:, None], trial, best)
    gradient = xp.where(better[:, None], trial_gradient, gradient)
    normal = xp.where(better[:, None, None], trial_normal, normal)
    best_loss = xp.where(better, value, best_loss)
    raised = xp.maximum(damping, REJECTED_DAMPING) * 10.0
    damping = xp.clip(xp.where(better, damping * 0.1, raised), MIN_DAMPING, MAX_DAMPING)
    step = _damped_step(normal, gradient, damping, xp)
    finite = ~xp.any(~(xp.abs(step) < math.inf), axis=-1)  # NaN compares False
    step = xp.where(finite[:, None], step, 0.0)
    frame = Geometry((0, 0), None, None, (scale[0], scale[1]), False)  # only the scale is read
    moved = xp.where(finite, model.displacement(best, step, frame, xp), math.inf)
    done = done | (moved < tolerance)
    trial = xp.where(done[:, None], best, best + step)
    return _State(best, trial, gradient, normal, best_loss, damping, done, moved)
