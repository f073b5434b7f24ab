"""Mutual information of the warped moving image and the fixed one, as Mattes et al.

The joint histogram of the two images' intensities over the valid pixels is
built with Parzen windows: a cubic B-spline on the moving side, so that it is
smooth in the sampling points, and a linear (first-order B-spline) one on the
fixed side, which does not move. Each image's intensities are rescaled to the
bins by the moving image's range and the fixed image's range over the masked
pixels, neither of which changes within a level: the bins never move with the
parameters, so the
loss is a smooth function of them (pixels entering or leaving the valid set
aside, as for every loss).

With ``p`` the joint distribution and ``p_m`` its moving marginal, and the
fixed marginal constant, ``dMI = sum_kl dp_kl log(p_kl / p_m,l)``; a pixel
moves ``p`` through the kernel's derivative at its moving bin coordinate
``t``, so ``dMI/dI_n = w_n s / n sum_kl f_nk b'(t_n - l) log(p_kl / p_m,l)``,
``f_nk`` its fixed-side weights, ``s`` the bins per unit of intensity and
``n`` the valid pixels' weight.

The normal matrix is ``c A^T A`` (``A`` the image Jacobian): the Gauss-Newton
matrix of ``log(S) / 2``, where ``S`` is the sum of squared deviations of the
moving intensities from their mean given the fixed ones, read from the same
histogram (``-MI`` is that up to a constant for jointly Gaussian images). The
Parzen windows' own spread keeps ``S`` from vanishing, so ``c > 0``.
"""

from __future__ import annotations

from typing import Any

from .._namespace import device as array_device
from .._ops import scatter_add_rows
from ..samplers._coordinates import index_dtype

#: Bins of the joint histogram along each image's intensities, by default.
DEFAULT_BINS = 32
#: The fewest bins the moving side's cubic window fits in (it spans four).
MIN_BINS = 4


def _cubic(offset: Any, xp: Any) -> tuple[Any, Any]:
    """The cubic B-spline and its derivative at ``offset`` (zero beyond +-2)."""
    # as truncated powers, ((2 - |x|)+^3 - 4 (1 - |x|)+^3) / 6: no branch, and
    # products, as a float power is far slower
    size = xp.abs(offset)
    outer, inner = xp.maximum(2.0 - size, 0.0), xp.maximum(1.0 - size, 0.0)
    outer_square, inner_square = outer * outer, inner * inner
    value = (outer_square * outer - 4.0 * inner_square * inner) / 6.0
    slope = 2.0 * inner_square - 0.5 * outer_square  # the derivative at |x|; it is odd
    return value, xp.where(offset < 0.0, -slope, slope)


def _linear(offset: Any, xp: Any) -> Any:
    """The first-order B-spline (a triangle of half-width 1) at ``offset``."""
    return xp.maximum(1.0 - xp.abs(offset), 0.0)


def _range(values: Any, keep: Any, xp: Any) -> tuple[Any, Any]:
    """Lowest value and extent (B, C, 1) of ``values`` (B, C, N) where ``keep`` (B, 1, N)."""
    # (a minimum as a maximum: not every namespace geowarp wraps has min)
    lowest = -xp.max(xp.where(keep, -values, -xp.inf), axis=-1, keepdims=True)
    highest = xp.max(xp.where(keep, values, -xp.inf), axis=-1, keepdims=True)
    extent = highest - lowest
    # a flat image puts every pixel in one bin instead of dividing by zero
    return lowest, xp.where(extent > 0, extent, 1.0)


def _linear_taps(coordinates: Any, bins: int, xp: Any) -> tuple[Any, Any]:
    """The two bins (..., N, 2) whose linear windows reach each bin coordinate, and
    the windows' values there (zero where one does not: a coordinate at a bin, or
    a pixel outside the mask beyond the bins)."""
    low = xp.clip(xp.floor(coordinates), 0.0, bins - 2.0)
    offset = coordinates - low
    values = xp.stack([_linear(offset, xp), _linear(offset - 1.0, xp)], axis=-1)
    return _taps(low, 2, xp), values


def _cubic_taps(coordinates: Any, bins: int, xp: Any) -> tuple[Any, Any, Any]:
    """The four bins (..., N, 4) whose cubic windows reach each bin coordinate (a
    valid pixel's lies in [1, bins - 2]), and the windows' values and derivatives
    there."""
    first = xp.clip(xp.floor(coordinates), 1.0, bins - 3.0) - 1.0
    steps = xp.arange(4, dtype=coordinates.dtype, device=array_device(coordinates))
    value, slope = _cubic(coordinates[..., None] - (first[..., None] + steps), xp)
    return _taps(first, 4, xp), value, slope


def _taps(first: Any, count: int, xp: Any) -> Any:
    """Bins ``first``, ``first + 1``, ... (``count`` of them) as integers, (..., N, count)."""
    dtype = index_dtype(xp, None)
    steps = xp.arange(count, dtype=dtype, device=array_device(first))
    return xp.astype(first, dtype)[..., None] + steps


def mutual_information(
    warped: Any, fixed: Any, moving: Any, weight: Any, mask: Any, bins: int, xp: Any
) -> tuple[Any, Any, Any]:
    """``-MI`` (B,), its derivative w.r.t. ``warped`` (B, C, N), and the curvature (B, C).

    ``warped`` (B, C, N) and ``fixed`` (B or 1, C, N) are the flattened images,
    ``moving`` (B or 1, C, N_m) the moving image the warped one samples,
    ``weight`` (B, 1, N) the valid pixels and ``mask`` (B or 1, 1, N) or None
    the fixed pixels that count. The loss is the mean over channels.

    A pixel's windows reach two fixed bins and four moving ones, so it adds to
    eight cells of the joint histogram (a scatter-add) and reads eight back for
    its derivative (a gather): no (N, bins) array, and no matrix product.
    """
    batch, channels, pixels = warped.shape
    count = xp.sum(weight, axis=-1, keepdims=True)  # (B, 1, 1)
    fixed_low, fixed_extent = _range(fixed, fixed == fixed if mask is None else mask > 0, xp)
    moving_low, moving_extent = _range(moving, moving == moving, xp)
    # fixed intensities span bins 0 .. K-1; moving ones 1 .. K-2, so that the cubic
    # window (two bins either side) always sums to one over the K bins
    scale = (bins - 3) / moving_extent  # (B or 1, C, 1) moving bins per unit intensity
    valid = weight > 0
    along_moving = xp.where(valid, 1.0 + (warped - moving_low) * scale, 0.0)
    along_fixed = (fixed - fixed_low) * ((bins - 1) / fixed_extent)
    fixed_bins, fixed_window = _linear_taps(along_fixed, bins, xp)  # (B or 1, C, N, 2)
    moving_bins, moving_window, moving_slope = _cubic_taps(along_moving, bins, xp)  # (B, C, N, 4)
    # each pixel's eight cells (B, C, N, 2, 4), numbered across the batch and channels
    dtype = moving_bins.dtype
    pair = xp.arange(batch * channels, dtype=dtype, device=array_device(moving_bins))
    pair = xp.reshape(pair * (bins * bins), (batch, channels, 1, 1, 1))
    cells = pair + fixed_bins[..., :, None] * bins + moving_bins[..., None, :]
    cells = xp.reshape(cells, (-1,))
    share = (weight / count)[..., None, None] * fixed_window[..., :, None]  # (B, C, N, 2, 1)
    added = xp.reshape(share * moving_window[..., None, :], (-1, 1))
    joint = scatter_add_rows(added, cells, batch * channels * bins * bins, xp)
    joint = xp.reshape(joint, (batch, channels, bins, bins))  # (fixed bin, moving bin)
    moving_marginal = xp.sum(joint, axis=-2, keepdims=True)  # (B, C, 1, K)
    fixed_marginal = xp.sum(joint, axis=-1, keepdims=True)  # (B, C, K, 1)
    # empty bins hold no probability and no derivative: their log is never used
    log_joint = xp.log(xp.where(joint > 0, joint, 1.0))
    log_moving = xp.log(xp.where(moving_marginal > 0, moving_marginal, 1.0))
    log_fixed = xp.log(xp.where(fixed_marginal > 0, fixed_marginal, 1.0))
    information = xp.sum(joint * (log_joint - log_moving - log_fixed), axis=(-2, -1))  # (B, C)
    # d(-MI)/dI_n, summed over the eight cells the pixel touches
    table = xp.reshape(log_joint - log_moving, (-1,))
    read = xp.reshape(xp.take(table, cells, axis=0), (batch, channels, pixels, 2, 4))
    slopes = fixed_window[..., :, None] * moving_slope[..., None, :]
    along = xp.sum(xp.reshape(read * slopes, (batch, channels, pixels, 8)), axis=-1) * weight
    derivative = -along * (scale / (count * channels))
    spread = count[..., 0] * _spread(joint, fixed_marginal, bins, xp)  # S, squared bins
    curvature = scale[..., 0] ** 2 / (channels * spread)
    return -xp.sum(information, axis=-1) / channels, derivative, curvature


def _spread(joint: Any, fixed_marginal: Any, bins: int, xp: Any) -> Any:
    """(B, C): the moving bin coordinate's variance given the fixed one, averaged over
    the fixed bins (the curvature's ``S`` over ``n``, in squared bins)."""
    centres = xp.arange(bins, dtype=joint.dtype, device=array_device(joint))
    known = xp.where(fixed_marginal > 0, fixed_marginal, 1.0)
    mean = xp.sum(joint * centres, axis=-1, keepdims=True) / known  # (B, C, K, 1)
    return xp.sum(joint * (centres - mean) ** 2, axis=(-2, -1))
