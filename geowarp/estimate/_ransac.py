"""RANSAC over matrix families, every hypothesis fitted in one batched call; and residuals."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from .._errors import GeowarpValueError
from .._namespace import array_namespace, known_values
from .._namespace import device as array_device
from ..transforms._base import Transform, check_points, get_family
from ..transforms._matrix import Affine, Projective
from ._failure import FailedEstimation
from ._fit import affine_matrix, fit_affine, fit_projective, projective_matrix
from ._inputs import check_values, prepare

__all__ = ["RansacResult", "ransac", "residuals"]


def residuals(transform: Transform, source_points: Any, target_points: Any) -> Any:
    """Distances ``|transform.apply(target_points) - source_points|`` of shape (..., N).

    The fit's residuals, in the source (input) frame, for any transform and
    any correspondences (held-out points, say). A `FailedEstimation` raises
    `GeowarpValueError` with its message.

    Examples
    --------
    >>> import numpy as np
    >>> import geowarp as gw
    >>> target = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> source = 2.0 * target + np.array([0.0, 0.0, 0.0, 0.1])[:, None]
    >>> fit = gw.Affine.from_estimate(source, target)
    >>> gw.estimate.residuals(fit, source, target).round(4)
    array([0.0354, 0.0354, 0.0354, 0.0354])
    """
    mapped = transform.apply(target_points)
    source = check_points(source_points, transform)
    xp = array_namespace(mapped, source)
    difference = mapped - source
    return xp.sqrt(xp.sum(difference * difference, axis=-1))


class RansacResult(NamedTuple):
    """What `ransac` returns: unpack it as ``transform, inliers = ransac(...)``."""

    transform: Affine | Projective | FailedEstimation
    """The least-squares refit on all inliers; a falsy `FailedEstimation` when none is found."""
    inliers: Any
    """Boolean mask (..., N) of the points the refit used; None when the input was refused."""


_FITS = {Affine: (affine_matrix, fit_affine, 3), Projective: (projective_matrix, fit_projective, 4)}


def ransac(
    family: Any,
    source_points: Any,
    target_points: Any,
    *,
    threshold: float,
    max_trials: int = 200,
    seed: int = 0,
    min_inliers: int | None = None,
) -> RansacResult:
    """Fit ``family`` robustly: RANSAC hypotheses from minimal samples, then a refit on inliers.

    Every one of the ``max_trials`` minimal samples (3 points for an affine
    map, 4 for a homography; drawn with ``numpy.random.default_rng(seed)``,
    the same samples for every batch item) is fitted in ONE batched call, the
    samples being a batch dimension; all are scored (no early exit). The
    hypothesis with the most inliers (``residuals < threshold``; the first
    on ties) wins, and the result is the weighted least-squares fit on its
    inliers, as ``family.from_estimate`` with 0/1 weights: differentiable
    w.r.t. the points for a fixed inlier set.

    Parameters
    ----------
    family : gw.Affine, gw.Projective, "affine" or "projective"
    source_points, target_points : arrays of shape (..., N, 2)
        Correspondences, in geowarp's direction: the result maps target to source.
    threshold : float
        Largest distance in the source frame, ``|T(target) - source|``, of an inlier.
    max_trials : int
        Number of minimal samples.
    seed : int
        Seed of the sample draw: a given seed gives the same result.
    min_inliers : int, optional
        Fewest inliers of an acceptable fit; the minimal sample size by default.

    Returns
    -------
    RansacResult
        ``(transform, inliers)``: the refit (or a `FailedEstimation` saying
        why there is none) and the boolean inlier mask (..., N).

    Examples
    --------
    >>> import numpy as np
    >>> import geowarp as gw
    >>> target = np.random.default_rng(0).uniform(-1, 1, (20, 2))
    >>> source = 0.5 * target + 0.1
    >>> source[:5] += 3.0  # gross outliers
    >>> fit, inliers = gw.estimate.ransac("affine", source, target, threshold=0.01)
    >>> fit.matrix.round(12) + 0.0
    array([[0.5, 0. , 0.1],
           [0. , 0.5, 0.1]])
    >>> inliers.sum()
    np.int64(15)
    """
    cls = get_family(family, "family")
    if cls not in _FITS:
        raise GeowarpValueError(f"ransac fits Affine or Projective; got {cls.__name__}")
    hypotheses_of, fit, size = _FITS[cls]
    if not threshold > 0:
        raise GeowarpValueError(f"threshold must be > 0; got {threshold!r}")
    if max_trials < 1:
        raise GeowarpValueError(f"max_trials must be >= 1; got {max_trials!r}")
    label = f"RANSAC of {cls.__name__}"
    points = prepare(source_points, target_points, None, label, size)
    if isinstance(points, FailedEstimation):
        return RansacResult(points, None)
    failure = check_values(points, label, size, general_position=False)
    if failure is not None:
        return RansacResult(failure, None)
    inliers, most = _best_inliers(
        points.xp, points.source, points.target, hypotheses_of, size, threshold, max_trials, seed
    )
    least = size if min_inliers is None else min_inliers
    found = known_values(most)
    if found is not None and (found < least).any():
        return RansacResult(
            FailedEstimation(
                f"{label} failed: the best hypothesis has {int(found.min())} inliers within "
                f"{threshold}, fewer than the {least} asked"
            ),
            inliers,
        )
    xp = points.xp
    weights = xp.astype(inliers, points.source.dtype)
    refit = fit(
        xp.astype(points.source, points.dtype), xp.astype(points.target, points.dtype), weights
    )
    return RansacResult(refit, inliers)


def _best_inliers(
    xp: Any,
    source: Any,
    target: Any,
    hypotheses_of: Any,
    size: int,
    threshold: float,
    trials: int,
    seed: int,
) -> tuple[Any, Any]:
    """The inlier mask (..., N) of the best of ``trials`` minimal-sample fits, and its count."""
    count = target.shape[-2]
    draws = np.random.default_rng(seed).random((trials, count)).argsort(axis=1)[:, :size]
    indices = xp.asarray(draws.reshape(-1), device=array_device(target))

    def sampled(points: Any) -> Any:  # (..., N, 2) -> (..., trials, size, 2)
        picked = xp.take(points, indices, axis=points.ndim - 2)
        return xp.reshape(picked, (*picked.shape[:-2], trials, size, 2))

    matrices = hypotheses_of(sampled(source), sampled(target), None, xp)
    if isinstance(matrices, tuple):  # the DLT also returns its eigenvalues
        matrices = matrices[0]
    mapped = _apply_matrices(matrices, target[..., None, :, :], xp)  # (..., trials, N, 2)
    difference = mapped - source[..., None, :, :]
    distance = xp.sqrt(xp.sum(difference * difference, axis=-1))
    within = distance < threshold  # NaN (a degenerate sample): never an inlier
    counts = xp.sum(xp.astype(within, xp.int32), axis=-1)  # (..., trials)
    best = xp.argmax(counts, axis=-1)
    chosen = xp.arange(trials, dtype=best.dtype, device=array_device(best)) == best[..., None]
    inliers = xp.any(within & chosen[..., None], axis=-2)
    return inliers, xp.max(counts, axis=-1)


def _apply_matrices(matrices: Any, points: Any, xp: Any) -> Any:
    """Map ``points`` (..., N, 2) by (..., 2, 3) or (..., 3, 3) matrices, without checks."""
    linear = matrices[..., :, :2]
    mapped = points @ xp.matrix_transpose(linear) + xp.matrix_transpose(matrices[..., :, 2:3])
    if matrices.shape[-2] == 2:
        return mapped
    depth = mapped[..., 2:3]
    # a point sent to infinity is NaN, not a division by zero (numpy would warn)
    return mapped[..., :2] / xp.where(xp.abs(depth) > 0, depth, xp.full_like(depth, math.nan))
