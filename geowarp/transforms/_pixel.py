"""Matrices between the pixel frame (OpenCV, scikit-image) and the normalized frame.

A matrix transform's map between two images changes frame by conjugation
with the `geowarp.grid` frame matrices: a pixel-frame map from points of an
image of ``from_shape`` to points of an image of ``to_shape`` is, in the
normalized frames, ``P_to @ map @ N_from`` (``P``: pixel to normalized, ``N``:
normalized to pixel). Plain matrix products, so gradients flow through them
on every backend; the frame matrices take the map's library, dtype and device.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._errors import GeowarpValueError
from ..grid import check_shape, normalized_to_pixel_matrix, pixel_to_normalized_matrix

__all__ = ["check_pixel_settings", "normalized_from_pixel", "pixel_from_normalized"]

#: What a pixel matrix may describe: the map from input to output pixels
#: ("forward": OpenCV's default, scikit-image's ``params``) or back ("inverse").
DIRECTIONS = ("forward", "inverse")


def check_pixel_settings(
    in_shape: Sequence[int], out_shape: Sequence[int] | None, direction: str
) -> tuple[tuple[int, int], tuple[int, int], bool]:
    """Validated ``(in_shape, out_shape, forward)``; ``out_shape`` defaults to ``in_shape``.

    Raises `GeowarpValueError` naming the argument at fault.
    """
    in_hw = check_shape(in_shape, "in_shape")
    out_hw = in_hw if out_shape is None else check_shape(out_shape, "out_shape")
    if direction not in DIRECTIONS:
        raise GeowarpValueError(
            f"direction must be 'forward' (the matrix maps input pixels to output pixels, "
            f"OpenCV's default) or 'inverse' (output to input); got {direction!r}"
        )
    return in_hw, out_hw, direction == "forward"


def normalized_from_pixel(
    matrix: Any, from_shape: Sequence[int], to_shape: Sequence[int], align_corners: bool
) -> Any:
    """A pixel-frame map (..., 3, 3) between two images, expressed in their normalized frames.

    Parameters
    ----------
    matrix : array of shape (..., 3, 3)
        Maps pixel ``(x, y, 1)`` of an image of ``from_shape`` to pixel
        ``(x, y, 1)`` of an image of ``to_shape``.
    from_shape, to_shape : (H, W)
        The images whose points the map takes and gives.
    align_corners : bool
        Which normalized frame, see `geowarp.grid`.

    Returns
    -------
    array of shape (..., 3, 3)
        The same map between normalized points, in ``matrix``'s library,
        dtype and device.

    Examples
    --------
    >>> import numpy as np
    >>> from geowarp.transforms._pixel import normalized_from_pixel
    >>> normalized_from_pixel(np.eye(3), (2, 4), (2, 4), False)
    array([[1., 0., 0.],
           [0., 1., 0.],
           [0., 0., 1.]])
    """
    to_normalized = pixel_to_normalized_matrix(to_shape, align_corners=align_corners, like=matrix)
    to_pixel = normalized_to_pixel_matrix(from_shape, align_corners=align_corners, like=matrix)
    return to_normalized @ matrix @ to_pixel


def pixel_from_normalized(
    matrix: Any, from_shape: Sequence[int], to_shape: Sequence[int], align_corners: bool
) -> Any:
    """The inverse of `normalized_from_pixel`: a normalized map (..., 3, 3) in pixel frames.

    Examples
    --------
    >>> import numpy as np
    >>> from geowarp.transforms._pixel import pixel_from_normalized
    >>> pixel_from_normalized(np.eye(3), (2, 4), (4, 8), False)  # 2x upsampling
    array([[2. , 0. , 0.5],
           [0. , 2. , 0.5],
           [0. , 0. , 1. ]])
    """
    to_pixel = normalized_to_pixel_matrix(to_shape, align_corners=align_corners, like=matrix)
    to_normalized = pixel_to_normalized_matrix(from_shape, align_corners=align_corners, like=matrix)
    return to_pixel @ matrix @ to_normalized
