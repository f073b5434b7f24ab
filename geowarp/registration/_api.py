"""`register`: the transform that brings a moving image onto a fixed one."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._errors import GeowarpTypeError, GeowarpValueError
from .._namespace import array_namespace, join, known_values
from .._namespace import device as array_device
from .._ops import compiled
from ..grid import axis_scale, base_axes
from ..transforms import Affine, Transform
from ..transforms._base import joined
from ..transforms._tps import check_control_grid
from ..warp import warp
from ._models import AffineModel, Geometry, Model, ProjectiveModel, SplineModel
from ._mutual import DEFAULT_BINS, MIN_BINS
from ._pyramid import gradients, level_count, mask_pyramid, pyramid, smooth
from ._result import Registration
from ._solver import Level, Settings, optimise

TRANSFORMS = ("affine", "projective", "tps")
LOSSES = ("mse", "ncc", "mi")


def register(
    moving: Any,
    fixed: Any,
    transform: str = "affine",
    *,
    loss: str = "mse",
    bins: int = DEFAULT_BINS,
    levels: int = 3,
    max_iterations: int = 50,
    tolerance: float = 0.01,
    mask: Any = None,
    initial: Transform | None = None,
    align_corners: bool = False,
    control_grid: Sequence[int] = (4, 4),
    progress: bool = False,
) -> Registration:
    """Find the transform ``T`` with ``gw.warp(moving, T, fixed.shape[-2:]) ~= fixed``.

    Intensity-based registration, coarse to fine over an image pyramid, by
    Levenberg-Marquardt (Gauss-Newton with a safeguard) on the family's
    parameter vector. Gradients and normal equations come from geowarp's own
    sampler and transforms, so it runs on every supported library, numpy
    included, and registers a batch of pairs in one call.

    Parameters
    ----------
    moving : array of shape (B, C, H_m, W_m) or (H_m, W_m)
        The image to warp. Integer images are converted to float32; float16
        and bfloat16 are computed in float32.
    fixed : array of shape (B, C, H, W) or (H, W)
        The reference. Its batch must equal the moving one's or be 1 (either
        may be 1, shared by every pair); the channel counts must match. An
        (H, W) image is one grayscale image.
    transform : {"affine", "projective", "tps"}
        The family searched. ``"tps"`` is a thin-plate spline on
        ``control_grid``, started from an affine registration.
    loss : {"mse", "ncc", "mi"}
        Mean squared difference; zero-normalized cross-correlation (per
        channel, over the valid pixels), which ignores brightness and
        contrast changes between the images; or mutual information (its
        negative, per channel, over the valid pixels, as Mattes et al.), for
        images whose intensities relate by any mapping, not necessarily
        monotonic, such as two modalities. Mutual information costs a few
        times more per iteration and needs enough pixels to fill its
        histogram.
    bins : int
        With ``loss="mi"``, the bins of the joint histogram along each
        image's intensities (Parzen windows: a cubic B-spline on the moving
        side, a linear one on the fixed side), spread over the moving
        image's range and the fixed image's range under ``mask``. At least
        4; ignored by the other losses.
    levels : int
        Pyramid levels, each half the size of the last (fewer where an image
        would get smaller than 16 pixels).
    max_iterations : int
        Most iterations per level.
    tolerance : float
        A level stops when an update would move no point by more than this
        many pixels (of that level's moving image).
    mask : array of shape (H, W), (B or 1, H, W) or (B or 1, 1, H, W), optional
        Which fixed pixels count: nonzero ones. Pixels of the fixed image that
        map outside the moving image never count.
    initial : Transform, optional
        Where to start: a transform of the family (an `Affine` is also
        accepted for ``"projective"``, and any transform for ``"tps"``, read
        at the control points), batch ``()`` or ``(B,)``; the identity when
        omitted.
    align_corners : bool
        The normalized frame's convention, as in `geowarp.warp`.
    control_grid : (rows, columns)
        The thin-plate spline's control points; ignored by the other families.
    progress : bool
        Show a tqdm progress bar with the current loss.

    Returns
    -------
    Registration
        ``transform``, ``warped``, ``loss``, ``loss_curve``, ``iterations``,
        ``converged``. Not differentiable: registration runs eagerly, reading
        the loss at each iteration to stop.

    Raises
    ------
    GeowarpValueError
        For shapes that do not fit (naming the argument), empty images, an
        unknown ``transform`` or ``loss``, or settings out of range.
    GeowarpTypeError
        For an ``initial`` of another family.

    Examples
    --------
    >>> import numpy as np
    >>> import geowarp as gw
    >>> def pattern(points):  # a smooth image defined everywhere: no borders to mind
    ...     x, y = points[..., 0], points[..., 1]
    ...     return np.sin(3 * x) * np.cos(2 * y) + np.exp(-4 * (x * x + y * y))
    >>> points = gw.grid.base_grid((32, 32))
    >>> truth = gw.Affine(np.array([[1.05, 0.1, 0.04], [-0.08, 0.97, -0.02]]))
    >>> fixed = pattern(points)
    >>> moving = pattern(truth.inverse().apply(points))  # so warp(moving, truth) == fixed
    >>> result = gw.register(moving, fixed)
    >>> bool(np.abs(result.transform.matrix - truth.matrix).max() < 5e-3)  # 0.08 px
    True
    >>> result.warped.shape, result.converged
    ((32, 32), True)
    """
    _check_settings(transform, loss, levels, max_iterations, tolerance)
    _check_bins(bins)
    (moving, fixed, mask), _ = join(("moving", moving), ("fixed", fixed), ("mask", mask))
    xp = array_namespace(moving, fixed, mask)
    unbatched = getattr(moving, "ndim", None) == 2 and getattr(fixed, "ndim", None) == 2
    moving, fixed = _images(moving, fixed, xp)
    batch = max(moving.shape[0], fixed.shape[0])
    mask = None if mask is None else _mask(mask, fixed, batch, xp)
    problem = _levels(moving, fixed, mask, levels, align_corners, xp)
    model = _model(transform, control_grid)
    settings = Settings(loss, int(max_iterations), float(tolerance), int(bins))
    stages = _stages(model, initial, moving, batch, xp)
    total = sum(len(problem[:count]) for _, _, count in stages) * max_iterations
    with _Progress(progress, total) as report:
        params, final, converged, curve = _run(stages, problem, settings, xp, report)
    found = model.transform(params[0, ...] if unbatched else params)
    warped = warp(moving, found, fixed.shape[-2:], align_corners=align_corners)
    curve_array = np.stack(curve)  # (iterations, B)
    if unbatched:
        loss_value = float(known_values(final)[0])
        done = bool(known_values(converged)[0])
        return Registration(
            found, warped[0, 0, ...], loss_value, curve_array[:, 0], len(curve), done
        )
    return Registration(found, warped, final, curve_array, len(curve), converged)


def _check_settings(
    transform: Any, loss: Any, levels: Any, max_iterations: Any, tolerance: Any
) -> None:
    if transform not in TRANSFORMS:
        raise GeowarpValueError(f"transform must be one of {TRANSFORMS}; got {transform!r}")
    if loss not in LOSSES:
        raise GeowarpValueError(f"loss must be one of {LOSSES}; got {loss!r}")
    for name, value in (("levels", levels), ("max_iterations", max_iterations)):
        if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
            raise GeowarpValueError(f"{name} must be an int >= 1; got {value!r}")
    if not isinstance(tolerance, int | float) or not tolerance > 0:
        raise GeowarpValueError(f"tolerance must be a number > 0 (pixels); got {tolerance!r}")


def _check_bins(bins: Any) -> None:
    if not isinstance(bins, int | np.integer) or isinstance(bins, bool) or bins < MIN_BINS:
        raise GeowarpValueError(f"bins must be an int >= {MIN_BINS}; got {bins!r}")


def _as_batch(image: Any, name: str, xp: Any) -> Any:
    shape = tuple(getattr(image, "shape", ()))
    if len(shape) == 2:
        image = image[None, None, ...]
    elif len(shape) != 4:
        raise GeowarpValueError(f"{name} must have shape (B, C, H, W) or (H, W); got {shape}")
    if 0 in image.shape:
        raise GeowarpValueError(f"{name} must not be empty; got shape {shape}")
    return image


def _images(moving: Any, fixed: Any, xp: Any) -> tuple[Any, Any]:
    """Both images as (B, C, H, W) in one floating working dtype, their batches checked."""
    moving, fixed = _as_batch(moving, "moving", xp), _as_batch(fixed, "fixed", xp)
    if moving.shape[1] != fixed.shape[1]:
        raise GeowarpValueError(
            f"moving and fixed must have the same number of channels; got {moving.shape[1]} "
            f"(moving shape {tuple(moving.shape)}) and {fixed.shape[1]} (fixed shape "
            f"{tuple(fixed.shape)})"
        )
    if moving.shape[0] != fixed.shape[0] and 1 not in (moving.shape[0], fixed.shape[0]):
        raise GeowarpValueError(
            f"moving and fixed batches must match or be 1; got {moving.shape[0]} and "
            f"{fixed.shape[0]}"
        )
    dtype = _working_dtype(moving.dtype, fixed.dtype, xp)
    return xp.astype(moving, dtype, copy=False), xp.astype(fixed, dtype, copy=False)


def _working_dtype(first: Any, second: Any, xp: Any) -> Any:
    floating = [d for d in (first, second) if xp.isdtype(d, "real floating")]
    if not floating:  # 8- and 16-bit integers are exact in float32
        return xp.float32
    dtype = floating[0] if len(floating) == 1 else xp.result_type(*floating)
    return xp.float32 if xp.finfo(dtype).bits < 32 else dtype


def _mask(mask: Any, fixed: Any, batch: int, xp: Any) -> Any:
    """``mask`` as (B or 1, 1, H, W) 0/1 weights in the working dtype."""
    shape = tuple(getattr(mask, "shape", ()))
    if len(shape) == 2:
        mask = mask[None, None, ...]
    elif len(shape) == 3:
        mask = mask[:, None, ...]
    elif len(shape) != 4 or shape[1] != 1:
        raise GeowarpValueError(
            f"mask must have shape (H, W), (B, H, W) or (B, 1, H, W); got {shape}"
        )
    if tuple(mask.shape[-2:]) != tuple(fixed.shape[-2:]) or mask.shape[0] not in (1, batch):
        raise GeowarpValueError(
            f"mask must cover the fixed image, (H, W) = {tuple(fixed.shape[-2:])}, with a "
            f"batch of 1 or {batch}; got shape {shape}"
        )
    return xp.astype(mask != 0, fixed.dtype)


def _levels(
    moving: Any, fixed: Any, mask: Any, levels: int, align_corners: bool, xp: Any
) -> list[Level]:
    """The pyramid, coarsest level first."""
    count = level_count(levels, tuple(moving.shape), tuple(fixed.shape))
    build = compiled(xp, _level_arrays, count=count, align_corners=align_corners, xp=xp)
    problem = []
    for reference, stack, weight, xs, ys in build(moving, fixed, mask):
        height, width = (int(size) for size in stack.shape[-2:])
        scale = (axis_scale(width, align_corners), axis_scale(height, align_corners))
        shape = (int(reference.shape[-2]), int(reference.shape[-1]))
        geometry = Geometry(shape, xs, ys, scale, align_corners)
        problem.append(Level(reference, stack, weight, (height, width), geometry))
    return problem[::-1]


def _level_arrays(
    moving: Any, fixed: Any, mask: Any, *, count: int, align_corners: bool, xp: Any
) -> list[tuple[Any, ...]]:
    """Each level's arrays, finest first: the fixed image, the moving one stacked with
    its gradients per normalized unit, the mask (or None) and the fixed pixel centres'
    normalized ``xs`` (W,) and ``ys`` (H, 1)."""
    masks = [None] * count if mask is None else mask_pyramid(mask, count, xp)
    found = []
    for image, reference, weight in zip(
        pyramid(moving, count, xp), pyramid(fixed, count, xp), masks, strict=True
    ):
        image, reference = smooth(image, xp), smooth(reference, xp)
        height, width = image.shape[-2:]
        along_x, along_y = gradients(image, xp)
        along_x = along_x * axis_scale(width, align_corners)
        along_y = along_y * axis_scale(height, align_corners)
        stack = xp.concat([image, along_x, along_y], axis=1)
        shape = (int(reference.shape[-2]), int(reference.shape[-1]))
        xs, ys = base_axes(shape, align_corners=align_corners, like=reference)
        found.append((reference, stack, weight, xs, ys[:, None]))
    return found


def _model(transform: str, control_grid: Sequence[int]) -> Model:
    if transform == "tps":
        return SplineModel(check_control_grid(control_grid))
    return AffineModel() if transform == "affine" else ProjectiveModel()


# a model, its starting params (None: the last stage's result), and how many of the
# coarsest levels it runs on (None: all)
Stage = tuple[Model, Any, int | None]


def _stages(model: Model, initial: Any, moving: Any, batch: int, xp: Any) -> list[Stage]:
    if initial is not None:
        if not isinstance(initial, Transform):
            raise GeowarpTypeError(
                f"initial must be a geowarp Transform or None; got {type(initial).__name__}"
            )
        initial = joined(initial, moving, "moving")
    if isinstance(model, AffineModel) or not (initial is None or isinstance(initial, Affine)):
        return [(model, _start(model, initial, moving, batch, xp), None)]
    # Other families start from the best affine map, found robustly (fewer parameters):
    # a spline over the whole pyramid, a homography (whose perspective part barely
    # shows at a coarse level) over the coarsest level only.
    first = AffineModel()
    levels = None if isinstance(model, SplineModel) else 1
    return [(first, _start(first, initial, moving, batch, xp), levels), (model, None, None)]


def _start(model: Model, initial: Any, like: Any, batch: int, xp: Any) -> Any:
    """Starting params (B, P): the identity's zeros, or ``initial``'s."""
    shape = (batch, model.count)
    if initial is None:
        return xp.zeros(shape, dtype=like.dtype, device=array_device(like))
    params = xp.astype(model.from_transform(initial, xp), like.dtype)
    if params.ndim > 2 or (params.ndim == 2 and params.shape[0] not in (1, batch)):
        raise GeowarpValueError(
            f"initial must have batch shape () or ({batch},); got {initial.batch_shape}"
        )
    return xp.broadcast_to(params, shape)


def _run(
    stages: list[Stage],
    problem: list[Level],
    settings: Settings,
    xp: Any,
    report: Callable[..., None],
) -> tuple[Any, Any, Any, list[np.ndarray]]:
    """Every stage over every level; (params, final loss, converged, loss curve)."""
    curve: list[np.ndarray] = []

    def record(losses: np.ndarray) -> None:
        curve.append(losses)
        report(losses)

    params = final = converged = None
    previous: Model | None = None
    for model, start, count in stages:
        if start is None and previous is not None:
            start = model.from_transform(previous.transform(params), xp)
        params = start
        for level in problem[:count]:
            before = len(curve)
            params, final, converged = optimise(model, level, params, settings, xp, record)
            report(None, settings.max_iterations - (len(curve) - before))
        previous = model
    return params, final, converged, curve


class _Progress:
    """A tqdm bar over levels x iterations, or nothing."""

    def __init__(self, show: bool, total: int) -> None:
        self._bar: Any = None
        if show:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc="register", unit="it")

    def __enter__(self) -> Callable[..., None]:
        return self._report

    def _report(self, losses: np.ndarray | None, skipped: int = 1) -> None:
        if self._bar is None:
            return
        if losses is not None:
            self._bar.set_postfix(loss=f"{float(np.mean(losses)):.6g}", refresh=False)
        self._bar.update(skipped)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()
