"""Coordinate frames: the one place where geowarp defines them.

Two frames describe a point ``(x, y)`` in an image of ``H`` rows and ``W``
columns; x runs along the width, y along the height.

* **Normalized** (the default everywhere): with ``align_corners=False``, -1 and
  +1 are the outer edges of the image, so the centre of the left-most pixel is
  at ``-1 + 1/W``; with ``align_corners=True``, -1 and +1 are the centres of the
  corner pixels. These are exactly PyTorch's ``grid_sample`` frames.
* **Pixel**: integer coordinates are pixel centres, ``(0, 0)`` is the centre of
  the top-left pixel (OpenCV and scikit-image style).

A transform maps points of the output (target) image to points of the input
(source) image: ``out[p] = image[T(p)]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._errors import GeowarpTypeError, GeowarpValueError

__all__ = [
    "MAX_ARRAY_BYTES",
    "base_axes",
    "base_grid",
    "normalized_to_pixel",
    "normalized_to_pixel_matrix",
    "pixel_to_normalized",
    "pixel_to_normalized_matrix",
]


#: Largest array, in bytes, that geowarp allocates for a grid or an output before
#: refusing with a `GeowarpValueError` (instead of exhausting memory). Raise it
#: for bigger work: ``geowarp.grid.MAX_ARRAY_BYTES = 2**36``.
MAX_ARRAY_BYTES = 2**34


def check_allocation(count: int, itemsize: int, what: str) -> None:
    """Refuse, before allocating, an array of ``count`` items that exceeds `MAX_ARRAY_BYTES`."""
    nbytes = count * itemsize
    if nbytes > MAX_ARRAY_BYTES:
        raise GeowarpValueError(
            f"{what} would need {nbytes:,} bytes, more than geowarp.grid.MAX_ARRAY_BYTES "
            f"({MAX_ARRAY_BYTES:,}); pass a smaller out_shape or raise the limit"
        )


def known_count(*sizes: int | None) -> int:
    """The product of ``sizes``, each unknown size (None, as while tracing) counted as 1."""
    count = 1
    for size in sizes:  # a plain loop: torch.compile traces it without a graph break
        count *= 1 if size is None else int(size)
    return count


def check_shape(shape: Any, name: str) -> tuple[int, int]:
    """Return ``shape`` as a pair ``(H, W)`` of non-negative ints or raise naming ``name``."""
    try:
        height, width = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise GeowarpValueError(f"{name} must be a pair (H, W) of ints; got {shape!r}") from None
    if any(type(s).__name__ in ("bool", "bool_") for s in shape):  # True == 1, but not a size
        raise GeowarpValueError(f"{name} must be a pair (H, W) of ints, not bools; got {shape!r}")
    if [height, width] != list(shape) or height < 0 or width < 0:
        raise GeowarpValueError(f"{name} must be a pair (H, W) of non-negative ints; got {shape!r}")
    return height, width


def _scale_offset(size: int, align_corners: bool) -> tuple[float, float]:
    # pixel = normalized * scale + offset
    if align_corners:
        return (size - 1) / 2, (size - 1) / 2
    return size / 2, (size - 1) / 2


def axis_to_pixel(coord: Any, size: int, align_corners: bool) -> Any:
    """One axis of `normalized_to_pixel`: a normalized coordinate along an axis of ``size``."""
    # grid_sample's own arithmetic, so that nearest's half-way ties round alike
    if align_corners:
        return (coord + 1) / 2 * (size - 1)
    return ((coord + 1) * size - 1) / 2


def axis_scale(size: int, align_corners: bool) -> float:
    """Derivative of `axis_to_pixel` with respect to the normalized coordinate."""
    return _scale_offset(size, align_corners)[0]


def normalized_to_pixel(points: Any, shape: Sequence[int], *, align_corners: bool = False) -> Any:
    """Convert points ``(..., 2)`` from the normalized frame to the pixel frame.

    Parameters
    ----------
    points : array of shape (..., 2)
        ``(x, y)`` in the normalized frame of an image of ``shape``.
    shape : (H, W)
        Image height and width in pixels.
    align_corners : bool
        Whether -1 and +1 are corner pixel centres (True) or image edges (False).

    Returns
    -------
    array of shape (..., 2)
        ``(x, y)`` with integer values at pixel centres.

    Examples
    --------
    >>> import numpy as np
    >>> from geowarp.grid import normalized_to_pixel
    >>> normalized_to_pixel(np.array([[-1.0, 1.0]]), (2, 4))
    array([[-0.5,  1.5]])
    >>> normalized_to_pixel(np.array([[-1.0, 1.0]]), (2, 4), align_corners=True)
    array([[0., 1.]])
    """
    matrix = _to_pixel_rows(shape, align_corners)
    x = points[..., 0:1] * matrix[0][0] + matrix[0][2]
    y = points[..., 1:2] * matrix[1][1] + matrix[1][2]
    return _concat_xy(x, y, points)


def pixel_to_normalized(points: Any, shape: Sequence[int], *, align_corners: bool = False) -> Any:
    """Convert points ``(..., 2)`` from the pixel frame to the normalized frame.

    The inverse of `normalized_to_pixel`. With ``align_corners=True`` an axis
    of size 1 maps every pixel coordinate to 0 (the only pixel is the centre).

    Examples
    --------
    >>> import numpy as np
    >>> from geowarp.grid import pixel_to_normalized
    >>> pixel_to_normalized(np.array([[0.0, 0.0], [3.0, 1.0]]), (2, 4))
    array([[-0.75, -0.5 ],
           [ 0.75,  0.5 ]])
    """
    matrix = _to_normalized_rows(shape, align_corners)
    x = points[..., 0:1] * matrix[0][0] + matrix[0][2]
    y = points[..., 1:2] * matrix[1][1] + matrix[1][2]
    return _concat_xy(x, y, points)


def _concat_xy(x: Any, y: Any, like: Any) -> Any:
    from ._namespace import array_namespace

    xp = array_namespace(like)
    return xp.concat([x, y], axis=-1)


def normalized_to_pixel_matrix(
    shape: Sequence[int],
    *,
    align_corners: bool = False,
    like: Any = None,
    dtype: Any = None,
    device: Any = None,
) -> Any:
    """The 3x3 matrix taking normalized ``(x, y, 1)`` to pixel ``(x, y, 1)``.

    Parameters
    ----------
    shape : (H, W)
        Image height and width in pixels.
    align_corners : bool
        Frame convention, see the module docstring.
    like : array, optional
        Take the namespace, dtype and device from this array (numpy float64
        when omitted). ``dtype`` and ``device`` override it.

    Returns
    -------
    matrix : array of shape (3, 3)

    Examples
    --------
    >>> from geowarp.grid import normalized_to_pixel_matrix
    >>> normalized_to_pixel_matrix((2, 4))
    array([[2. , 0. , 1.5],
           [0. , 1. , 0.5],
           [0. , 0. , 1. ]])
    """
    return _as_matrix(_to_pixel_rows(shape, align_corners), like, dtype, device)


def _as_matrix(rows: list[list[float]], like: Any, dtype: Any, device: Any) -> Any:
    xp, dtype, device = creation_namespace(like, dtype, device)
    if not xp.isdtype(dtype, "real floating"):
        raise GeowarpTypeError(f"a frame matrix needs a real floating dtype; got {dtype}")
    return xp.asarray(rows, dtype=dtype, device=device)


def _to_pixel_rows(shape: Sequence[int], align_corners: bool) -> list[list[float]]:
    height, width = check_shape(shape, "shape")
    sx, ox = _scale_offset(width, align_corners)
    sy, oy = _scale_offset(height, align_corners)
    return [[sx, 0.0, ox], [0.0, sy, oy], [0.0, 0.0, 1.0]]


def pixel_to_normalized_matrix(
    shape: Sequence[int],
    *,
    align_corners: bool = False,
    like: Any = None,
    dtype: Any = None,
    device: Any = None,
) -> Any:
    """The 3x3 matrix taking pixel ``(x, y, 1)`` to normalized ``(x, y, 1)``.

    The inverse of `normalized_to_pixel_matrix`; parameters as there.

    Examples
    --------
    >>> import numpy as np
    >>> from geowarp.grid import pixel_to_normalized_matrix
    >>> pixel_to_normalized_matrix((2, 4))
    array([[ 0.5 ,  0.  , -0.75],
           [ 0.  ,  1.  , -0.5 ],
           [ 0.  ,  0.  ,  1.  ]])
    >>> pixel_to_normalized_matrix((2, 4), like=np.zeros(1, dtype=np.float32)).dtype
    dtype('float32')
    """
    return _as_matrix(_to_normalized_rows(shape, align_corners), like, dtype, device)


def _to_normalized_rows(shape: Sequence[int], align_corners: bool) -> list[list[float]]:
    height, width = check_shape(shape, "shape")
    rows = []
    for axis, size in enumerate((width, height)):
        scale, offset = _scale_offset(size, align_corners)
        # A size-1 axis with align_corners=True has scale 0: every point is the centre.
        inv = 1.0 / scale if scale != 0 else 0.0
        row = [0.0, 0.0, -offset * inv]
        row[axis] = inv
        rows.append(row)
    return [rows[0], rows[1], [0.0, 0.0, 1.0]]


def base_grid(
    out_shape: Sequence[int],
    *,
    align_corners: bool = False,
    like: Any = None,
    dtype: Any = None,
    device: Any = None,
) -> Any:
    """Normalized coordinates of the pixel centres of an ``out_shape`` image.

    Parameters
    ----------
    out_shape : (H_out, W_out)
        Output height and width.
    align_corners : bool
        Frame convention, see the module docstring.
    like : array, optional
        Take the namespace, dtype and device from this array (numpy float64
        when omitted). ``dtype`` and ``device`` override it.

    Returns
    -------
    grid : array of shape (H_out, W_out, 2)
        ``grid[i, j] == (x_j, y_i)``, identical to ``torch.nn.functional.affine_grid``
        of the identity.

    Examples
    --------
    >>> from geowarp.grid import base_grid
    >>> base_grid((1, 2))
    array([[[-0.5,  0. ],
            [ 0.5,  0. ]]])
    """
    height, width = check_shape(out_shape, "out_shape")
    xp, dtype, device = creation_namespace(like, dtype, device)
    if not xp.isdtype(dtype, "real floating"):
        raise GeowarpTypeError(f"base_grid needs a real floating dtype; got {dtype}")
    xs = _axis_centres(width, align_corners, xp, dtype, device)
    ys = _axis_centres(height, align_corners, xp, dtype, device)
    return grid_from_axes(xs, ys, xp)


def creation_namespace(like: Any, dtype: Any, device: Any) -> tuple[Any, Any, Any]:
    """(namespace, dtype, device) for new arrays: ``like``'s, numpy float64 without one;
    ``dtype`` and ``device`` override."""
    if like is None:
        import numpy as xp

        return xp, (xp.float64 if dtype is None else dtype), device
    from ._namespace import array_namespace
    from ._namespace import device as array_device

    xp = array_namespace(like)
    return (
        xp,
        (like.dtype if dtype is None else dtype),
        (array_device(like) if device is None else device),
    )


def base_axes(
    out_shape: Sequence[int], *, align_corners: bool = False, like: Any
) -> tuple[Any, Any]:
    """The two axes of `base_grid`: ``xs`` (W_out,) and ``ys`` (H_out,), like ``like``.

    ``base_grid(out_shape)[i, j] == (xs[j], ys[i])``.

    Examples
    --------
    >>> import numpy as np
    >>> from geowarp.grid import base_axes
    >>> base_axes((1, 2), like=np.zeros(1))
    (array([-0.5,  0.5]), array([0.]))
    """
    from ._namespace import array_namespace
    from ._namespace import device as array_device

    height, width = check_shape(out_shape, "out_shape")
    xp, device = array_namespace(like), array_device(like)
    return (
        _axis_centres(width, align_corners, xp, like.dtype, device),
        _axis_centres(height, align_corners, xp, like.dtype, device),
    )


def grid_from_axes(xs: Any, ys: Any, xp: Any) -> Any:
    """The (H, W, 2) grid of all points ``(xs[j], ys[i])``."""
    height, width = ys.shape[0], xs.shape[0]
    grid_x = xp.broadcast_to(xs[None, :], (height, width))
    grid_y = xp.broadcast_to(ys[:, None], (height, width))
    return xp.stack([grid_x, grid_y], axis=-1)


def _axis_centres(size: int, align_corners: bool, xp: Any, dtype: Any, device: Any) -> Any:
    scale, offset = _scale_offset(size, align_corners)
    if scale == 0:  # size 1 with align_corners=True: the single centre sits at 0
        return xp.zeros((size,), dtype=dtype, device=device)
    # one op for the whole axis: from the first pixel centre to the last
    return xp.linspace(-offset / scale, offset / scale, size, dtype=dtype, device=device)
