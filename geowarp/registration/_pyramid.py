"""Image pyramids for registration: low-pass 2x downsampling and image gradients.

Everything is plain array-API code, so a pyramid is built the same way on
every library. Downsampling uses the binomial filter ``[1, 3, 3, 1] / 8``
centred between each pair of input pixels: with ``align_corners=False`` the
centre of output pixel ``i`` is exactly the midpoint of input pixels ``2i``
and ``2i + 1``, so the normalized frame (and every transform in it) is the
same at each level of an even-sized image.
"""

from __future__ import annotations

from typing import Any

#: The coarsest level keeps at least this many pixels along each axis: fewer
#: leave too little structure to register.
MIN_LEVEL_SIZE = 16


def _along(image: Any, axis: int, start: int, stop: int, step: int = 1) -> Any:
    # image[..., start:stop:step] along axis -1 or -2 of a (B, C, H, W) array
    picked = slice(start, stop, step)
    return image[..., picked] if axis == -1 else image[..., picked, :]


def _edge_padded(image: Any, axis: int, xp: Any) -> Any:
    # one replicated pixel on each side of ``axis``
    size = image.shape[axis]
    first, last = _along(image, axis, 0, 1), _along(image, axis, size - 1, size)
    return xp.concat([first, image, last], axis=axis)


def _downsample_axis(image: Any, axis: int, xp: Any) -> Any:
    half = image.shape[axis] // 2
    padded = _edge_padded(image, axis, xp)  # padded[i + 1] == image[i]
    # padded[2i + k] for i < half; the stop is the last one's index plus one (an
    # out-of-range stop is not portable)
    taps = [_along(padded, axis, k, 2 * half + k - 1, 2) for k in range(4)]
    return (taps[0] + taps[3] + 3.0 * (taps[1] + taps[2])) * 0.125


def downsample(image: Any, xp: Any) -> Any:
    """``image`` (B, C, H, W) low-passed and halved: (B, C, H // 2, W // 2).

    An odd size drops its last row or column, which shifts that level's frame
    by a fraction of a pixel: a coarse level only starts the next one.
    """
    return _downsample_axis(_downsample_axis(image, -1, xp), -2, xp)


def _smooth_axis(image: Any, axis: int, xp: Any) -> Any:
    size = image.shape[axis]
    padded = _edge_padded(image, axis, xp)
    middle = _along(padded, axis, 1, size + 1)
    return (_along(padded, axis, 0, size) + _along(padded, axis, 2, size + 2)) * 0.25 + middle * 0.5


def smooth(image: Any, xp: Any) -> Any:
    """``image`` (B, C, H, W) through the binomial filter ``[1, 2, 1] / 4`` along both axes."""
    return _smooth_axis(_smooth_axis(image, -1, xp), -2, xp)


def _central_difference(image: Any, axis: int, xp: Any) -> Any:
    size = image.shape[axis]
    padded = _edge_padded(image, axis, xp)
    return (_along(padded, axis, 2, size + 2) - _along(padded, axis, 0, size)) * 0.5


def gradients(image: Any, xp: Any) -> tuple[Any, Any]:
    """Central differences of ``image`` (B, C, H, W) along x and y, per pixel."""
    return _central_difference(image, -1, xp), _central_difference(image, -2, xp)


def level_count(levels: int, *shapes: tuple[int, ...]) -> int:
    """How many of the ``levels`` asked for fit images of ``shapes`` (at least one)."""
    smallest = min(min(shape[-2:]) for shape in shapes)
    count = 1
    while count < levels and smallest // 2**count >= MIN_LEVEL_SIZE:
        count += 1
    return count


def pyramid(image: Any, count: int, xp: Any) -> list[Any]:
    """``count`` levels of ``image``, finest first."""
    levels = [image]
    for _ in range(count - 1):
        levels.append(downsample(levels[-1], xp))
    return levels


def mask_pyramid(mask: Any, count: int, xp: Any) -> list[Any]:
    """Levels of a 0/1 ``mask``: a coarse pixel counts only where every fine pixel under
    its filter does, so an excluded region never leaks into a coarser level."""
    levels = [mask]
    for _ in range(count - 1):
        smooth = downsample(levels[-1], xp)
        levels.append(xp.astype(smooth > 0.999, mask.dtype))
    return levels
