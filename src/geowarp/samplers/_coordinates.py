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
    coord: Any, size: int, padding: str, align_corners: bool, xp: Any
) -> tuple[Any, Any]:
    """Pixel coordinates along one axis and their derivative w.r.t. ``coord``.

    Returns ``(pixel, slope)``; ``pixel`` lies in ``[-1, size]`` and is never NaN
    (a NaN coordinate reads the padding ring, as out of range).
    """
    limited = xp.clip(coord, -COORDINATE_LIMIT, COORDINATE_LIMIT)
    pixel = axis_to_pixel(limited, size, align_corners)
    slope = xp.ones_like(pixel) * axis_scale(size, align_corners)
    if padding == "reflection":
        if align_corners:
            pixel, factor = _reflect(pixel, 0, 2 * (size - 1), xp)
        else:
            pixel, factor = _reflect(pixel, -1, 2 * size - 1, xp)
        slope = slope * factor
    if padding in ("border", "reflection"):
        inside = (pixel > 0) & (pixel < size - 1)
        pixel = xp.clip(pixel, 0.0, float(size - 1))
    else:
        inside = (pixel > -1) & (pixel < size)
        pixel = xp.clip(pixel, -1.0, float(size))
    inside = inside & (coord == limited)  # clamped: constant, so zero slope
    slope = xp.where(inside, slope, xp.zeros_like(slope))
    pixel = xp.where(xp.isnan(pixel), xp.full_like(pixel, -1.0), pixel)
    return pixel, slope


def _reflect(pixel: Any, twice_low: int, twice_high: int, xp: Any) -> tuple[Any, Any]:
    # Fold ``pixel`` into [low, high] by mirroring at both ends, as grid_sample does.
    if twice_low == twice_high:  # a single pixel with align_corners=True
        return xp.zeros_like(pixel), xp.zeros_like(pixel)
    low = twice_low / 2
    span = (twice_high - twice_low) / 2
    shifted = pixel - low
    sign = xp.where(shifted < 0, -xp.ones_like(pixel), xp.ones_like(pixel))
    distance = xp.abs(shifted)
    # huge finite or infinite inputs: fold the remainder, never the quotient, into range
    extra = xp.remainder(distance, span)
    flips = xp.floor(distance / span)
    even = xp.remainder(flips, 2.0) == 0
    folded = xp.where(even, extra + low, span - extra + low)
    return folded, xp.where(even, sign, -sign)


def padded_channels_last(image: Any, fill: Any, xp: Any) -> Any:
    """Channels-last copy of ``image`` (B, C, H, W), its padding ring set to ``fill`` (C,)."""
    import array_api_extra as xpx

    batch, channels, height, width = image.shape
    shape = (batch, height + 3, width + 3, channels)
    buffer = xp.zeros(shape, dtype=image.dtype, device=array_device(image)) + xp.astype(
        fill, image.dtype
    )
    interior = xp.permute_dims(image, (0, 2, 3, 1))
    return xpx.at(buffer)[:, 1 : height + 1, 1 : width + 1, :].set(interior, copy=None, xp=xp)


def padded_interior(padded: Any) -> Any:
    """The image part of a padded channels-last array, back in (B, C, H, W)."""
    import array_api_compat

    xp = array_api_compat.array_namespace(padded)
    height, width = padded.shape[1] - 3, padded.shape[2] - 3
    return xp.permute_dims(padded[:, 1 : height + 1, 1 : width + 1, :], (0, 3, 1, 2))


def flat_index(x: Any, y: Any, padded_shape: tuple[int, ...], xp: Any) -> Any:
    """Row of ``reshape(padded, (-1, C))`` holding pixel ``(x, y)`` (integral floats).

    ``x`` and ``y`` have shape (B, ...) and lie in [-1, size].
    """
    batch, padded_h, padded_w, _ = padded_shape
    x_index = xp.astype(x, xp.int64) + 1
    y_index = xp.astype(y, xp.int64) + 1
    item = xp.arange(batch, dtype=xp.int64, device=array_device(x)) * (padded_h * padded_w)
    item = xp.reshape(item, (batch,) + (1,) * (x.ndim - 1))
    return xp.reshape(item + y_index * padded_w + x_index, (-1,))
