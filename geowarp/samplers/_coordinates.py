"""From normalized grid coordinates to pixel coordinates in a padded image.

The samplers read from a copy of the image, channels last, with one ring of
padding on the top/left and two on the bottom/right::

    padded[b, y + 1, x + 1, c] == image[b, c, y, x]

The ring holds the fill value for ``"zeros"``/``"constant"`` padding and zeros
otherwise. Coordinates are clamped into ``[-1, size]`` so every 2x2
neighbourhood lies inside the padded copy: no bounds masks, no out-of-range
reads, and a far-away point reads pure fill, exactly as if the image were
surrounded by it. ``"border"`` and ``"reflection"`` first fold coordinates into
``[0, size - 1]`` the way PyTorch's ``grid_sample`` does, including its choice
that the gradient is zero at and beyond the border.
"""

from __future__ import annotations

from typing import Any

from .._namespace import device as array_device
from ..grid import axis_scale, axis_to_pixel

MODES = ("bilinear", "nearest")
PADDINGS = ("zeros", "border", "reflection", "constant")
# Normalized coordinates are clamped to +-COORDINATE_LIMIT before use, so that
# huge finite or infinite values never overflow pixel arithmetic or index casts;
# every such point is far outside any image (see docs/reliability.md).
COORDINATE_LIMIT = 2.0**20


def source_pixels(
    coord: Any, size: int, padding: str, align_corners: bool, xp: Any, *, with_slope: bool = True
) -> tuple[Any, Any]:
    """Pixel coordinates along one axis and their derivative w.r.t. ``coord``.

    Returns ``(pixel, slope)``; ``pixel`` lies in ``[-1, size]`` and is never NaN
    (a NaN coordinate reads the padding ring, as out of range). ``slope`` is
    None unless ``with_slope``: the forward pass needs no derivative.
    """
    # no overflow in the pixel arithmetic, and a finite remainder when folding
    used = xp.clip(coord, -COORDINATE_LIMIT, COORDINATE_LIMIT)
    pixel = axis_to_pixel(used, size, align_corners)
    factor = None
    if padding == "reflection":
        twice_low, twice_high = (0, 2 * (size - 1)) if align_corners else (-1, 2 * size - 1)
        pixel, factor = _reflect(pixel, twice_low, twice_high, xp)
    low, high = (
        (0.0, float(size - 1)) if padding in ("border", "reflection") else (-1.0, float(size))
    )
    # NaN is tested on the input: clip may drop NaN (XLA's CPU min/max do)
    clipped = xp.where(xp.isnan(coord), -1.0, xp.clip(pixel, low, high))
    if not with_slope:
        return clipped, None
    # beyond the border (or the ring) the coordinate no longer moves the sample
    inside = (pixel > low) & (pixel < high)
    if factor is None:
        return clipped, xp.astype(inside, pixel.dtype) * axis_scale(size, align_corners)
    inside = inside & (coord == used)  # folded from the clamp: does not move
    return clipped, xp.where(inside, factor * axis_scale(size, align_corners), 0.0)


def _reflect(pixel: Any, twice_low: int, twice_high: int, xp: Any) -> tuple[Any, Any]:
    # Fold ``pixel`` into [low, high] by mirroring at both ends, as grid_sample does.
    if twice_low == twice_high:  # a single pixel with align_corners=True
        return xp.zeros_like(pixel), xp.zeros_like(pixel)
    low = twice_low / 2
    span = (twice_high - twice_low) / 2
    shifted = pixel - low
    distance = xp.abs(shifted)
    extra = xp.remainder(distance, span)
    flips = xp.floor(distance / span)
    even = xp.remainder(flips, 2.0) == 0
    folded = xp.where(even, extra + low, span - extra + low)
    # d folded / d pixel: +-1 by the side of ``low`` and the parity of the flips
    sign = 1.0 - 2.0 * xp.astype(shifted < 0, pixel.dtype)
    return folded, xp.where(even, sign, -sign)


def padded_channels_last(image: Any, fill: Any, xp: Any) -> Any:
    """Channels-last copy of ``image`` (B, C, H, W), its padding ring set to ``fill`` (C,)."""
    import array_api_extra as xpx

    from .. import backends
    from .._namespace import backend_name

    native = backends.op(backend_name(xp), "padded_channels_last")
    if native is not None:  # a library without in-place updates (TensorFlow)
        return native(image, fill)
    batch, channels, height, width = image.shape
    shape = (batch, height + 3, width + 3, channels)
    buffer = xp.zeros(shape, dtype=image.dtype, device=array_device(image)) + xp.astype(
        fill, image.dtype
    )
    interior = xp.permute_dims(image, (0, 2, 3, 1))
    return xpx.at(buffer)[:, 1 : height + 1, 1 : width + 1, :].set(interior, copy=None, xp=xp)


def padded_by_concat(interior: Any, fill: Any, xp: Any) -> Any:
    """`padded_channels_last` by concatenation, for libraries without in-place updates.

    ``interior`` is already channels last: (B, H, W, C) -> (B, H + 3, W + 3, C).
    Shapes come from slices, so a batch unknown until run time (a traced
    tensor) works too.
    """
    column = xp.zeros_like(interior[:, :, :1, :]) + xp.astype(fill, interior.dtype)
    rows = xp.concat([column, interior, column, column], axis=2)
    row = xp.zeros_like(rows[:, :1, :, :]) + xp.astype(fill, interior.dtype)
    return xp.concat([row, rows, row, row], axis=1)


def padded_interior(padded: Any) -> Any:
    """The image part of a padded channels-last array, back in (B, C, H, W)."""
    from .._namespace import array_namespace

    xp = array_namespace(padded)
    height, width = padded.shape[1] - 3, padded.shape[2] - 3
    return xp.permute_dims(padded[:, 1 : height + 1, 1 : width + 1, :], (0, 3, 1, 2))


#: Largest row number kept in int32 by kernels that ask for narrow indices.
INT32_ROWS = 2**31 - 1


def flat_index(
    x: Any,
    y: Any,
    padded_shape: tuple[Any, ...],
    xp: Any,
    *,
    batch: Any = None,
    narrow: bool = False,
) -> Any:
    """Row of ``reshape(padded, (-1, C))`` holding pixel ``(x, y)`` (integral floats).

    ``x`` and ``y`` have shape (B, ...) and lie in [-1, size]; ``padded_shape`` is
    (B, H_padded, W_padded, C), its batch None when unknown until run time (a
    traced TensorFlow tensor), and then ``batch`` is the run-time batch size.
    The index dtype is `index_dtype`'s.
    """
    items, padded_h, padded_w, _ = padded_shape
    per_item = padded_h * padded_w
    # Within an item, arithmetic in floating point and one cast: exact while every
    # row number fits the mantissa (float64 beyond float32's 2**24); the items'
    # offsets are added as integers, exact for any batch. The +1 of the ring on
    # both axes rides on the offset within the item.
    exact = xp.float32 if per_item < 2**24 else xp.float64
    x, y = xp.astype(x, exact, copy=False), xp.astype(y, exact, copy=False)
    dtype = index_dtype(xp, None if items is None else items * per_item, narrow=narrow)
    within = xp.astype(y * padded_w + x + (padded_w + 1), dtype)
    count = items if items is not None else batch
    offset = xp.arange(count, dtype=dtype, device=array_device(within)) * per_item
    offset = xp.reshape(offset, (items if items is not None else -1,) + (1,) * (x.ndim - 1))
    return xp.reshape(within + offset, (-1,))


def index_dtype(xp: Any, rows: int | None, *, narrow: bool = False) -> Any:
    """Integer dtype for row numbers below ``rows`` (None: unknown until run time).

    The library's own index dtype: int64, or int32 for JAX without x64 (which
    would warn and give int32 anyway; every row fits: arrays are as small).
    ``narrow`` asks for int32 while every row fits one, for kernels whose
    gathers and scatters are faster with it (TensorFlow's); numpy's bincount
    is faster with int64.
    """
    if narrow and rows is not None and rows <= INT32_ROWS:
        return xp.int32
    info = getattr(xp, "__array_namespace_info__", None)
    return xp.int64 if info is None else info().default_dtypes()["indexing"]


def fill_cotangent(total: Any, reached_image: Any, padding: str, xp: Any) -> Any:
    """The cotangent of the fill value (C,): what of the output's cotangent missed the image.

    Each point's interpolation weights sum to one, so the cotangent ``total``
    (summed per channel) that did not reach the image pixels
    (``reached_image``) reached the padding ring, which holds the fill value;
    with border and reflection padding there is no fill, hence zero.
    """
    if padding in ("border", "reflection"):
        return xp.zeros_like(total)
    return total - reached_image
