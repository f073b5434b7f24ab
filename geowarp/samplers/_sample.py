"""`sample`: read an image at a sampling grid."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .. import backends
from .._errors import GeowarpTypeError, GeowarpValueError, GeowarpWarning
from .._namespace import array_namespace, backend_name, join, known_values
from .._namespace import device as array_device
from ..autodiff import call
from ._bilinear import BILINEAR
from ._coordinates import MODES, PADDINGS
from ._nearest import NEAREST

_OPS = {"bilinear": BILINEAR, "nearest": NEAREST}


def sample(
    image: Any,
    grid: Any,
    *,
    mode: str = "bilinear",
    padding: str = "zeros",
    align_corners: bool = False,
    fill_value: Any = None,
    native: bool = True,
) -> Any:
    """Read ``image`` at the points of ``grid``: ``out[b, :, i, j] = image[b, :, grid[b, i, j]]``.

    The semantics are those of ``torch.nn.functional.grid_sample``, on any
    array library, differentiable w.r.t. the image, the grid and ``fill_value``.

    Parameters
    ----------
    image : array of shape (B, C, H, W)
        Image, channels first. Floating images give output of their dtype
        (float16 and bfloat16 are computed in float32); integer images keep
        their dtype and values with ``mode="nearest"`` and give float32
        (8- and 16-bit) or float64 (wider) output with ``"bilinear"``.
    grid : array of shape (B, H_out, W_out, 2) or (H_out, W_out, 2)
        Sampling points ``(x, y)`` in the normalized frame (see `geowarp.grid`).
        A batch of 1 (or none) is shared by every image; an image batch of 1 is
        shared by every grid.
    mode : {"bilinear", "nearest"}
        Interpolation. Nearest rounds half-way ties to the even pixel index and
        has a zero gradient w.r.t. the grid.
    padding : {"zeros", "border", "reflection", "constant"}
        What lies outside the image: zeros, the nearest border pixel, the
        mirrored image, or ``fill_value``.
    align_corners : bool
        Whether -1 and +1 are the corner pixel centres (True) or the image edges (False).
    fill_value : float, sequence or array of shape (C,), optional
        Per-channel value outside the image with ``padding="constant"`` (0
        when omitted): the result is as if the image were surrounded by it.
        An array of the image's library is differentiable; numpy arrays and
        sequences join the image's library. Given with another padding, it
        is refused (`GeowarpValueError`) rather than ignored. An integer
        output (nearest sampling of an integer image) must hold it exactly:
        ``2.5``, or ``300`` for ``uint8``, is refused rather than cast.
    native : bool
        Use the library's own kernel when it has the same semantics
        (``torch.nn.functional.grid_sample`` on PyTorch; TensorFlow's gathers
        and segment sums in the layout its kernels and XLA prefer); False
        forces the portable array-API code. Both give the same values and
        gradients.

    Returns
    -------
    out : array of shape (B, C, H_out, W_out)

    Examples
    --------
    >>> import numpy as np
    >>> import geowarp as gw
    >>> image = np.arange(6.0).reshape(1, 1, 2, 3)
    >>> grid = np.array([[[[0.0, 0.0], [1.0, 1.0], [3.0, 0.0]]]])
    >>> gw.sample(image, grid)
    array([[[[2.5 , 1.25, 0.  ]]]])
    >>> gw.sample(image, grid, padding="constant", fill_value=10.0)
    array([[[[ 2.5 ,  8.75, 10.  ]]]])
    """
    named = (("image", image), ("grid", grid), ("fill_value", fill_value))
    (image, grid, fill_value), _ = join(*named)
    xp = array_namespace(image, grid)
    mode, padding, align_corners = check_settings(mode, padding, align_corners, fill_value)
    _check(image, grid, xp)
    out_dtype, image_dtype, grid_dtype = _dtypes(image.dtype, grid.dtype, mode, xp)
    image = xp.astype(image, image_dtype, copy=False)
    grid = xp.astype(grid, grid_dtype, copy=False)
    image, grid = _broadcast_batch(image, grid, xp)
    fill = _fill(0.0 if fill_value is None else fill_value, image.shape[1], image, xp)
    options = {"padding": padding, "align_corners": align_corners}
    kernel = _native_kernel(backend_name(xp), _OPS[mode].name) if native else None
    if kernel is not None and image_dtype == grid_dtype:
        out = kernel(image, grid, fill, **options)
    else:
        out = call(_OPS[mode], image, grid, fill, **options)
    return xp.astype(out, out_dtype, copy=False)


def _native_kernel(library: str, op_name: str) -> Any:
    """The library's own sampler for the core op ``op_name`` (see `geowarp.backends`), or None."""
    backend = backends.get(library)
    return None if backend is None else backend.samplers.get(op_name)


def check_settings(
    mode: Any, padding: Any, align_corners: Any, fill_value: Any = None
) -> tuple[str, str, bool]:
    """``(mode, padding, align_corners)`` checked: the one place sampler settings are validated.

    Raises `GeowarpValueError` for an unknown mode or padding, or for a
    ``fill_value`` (not None) with a padding other than ``"constant"``, which
    would be ignored; `GeowarpTypeError` for an ``align_corners`` that is not
    a bool (``1``, ``"yes"`` or None are refused rather than read as truthy).

    Examples
    --------
    >>> from geowarp.samplers import check_settings
    >>> check_settings("nearest", "border", True)
    ('nearest', 'border', True)
    """
    if mode not in MODES:
        raise GeowarpValueError(f"mode must be one of {MODES}; got {mode!r}")
    if padding not in PADDINGS:
        raise GeowarpValueError(f"padding must be one of {PADDINGS}; got {padding!r}")
    if type(align_corners).__name__ not in ("bool", "bool_"):  # Python's or numpy's
        raise GeowarpTypeError(
            f"align_corners must be a bool; got {align_corners!r} ({type(align_corners).__name__})"
        )
    if fill_value is not None and padding != "constant":
        raise GeowarpValueError(
            f"fill_value is used with padding='constant' only; got padding={padding!r} and a "
            "fill_value: drop fill_value, or use padding='constant'"
        )
    return mode, padding, bool(align_corners)


def _check(image: Any, grid: Any, xp: Any) -> None:
    if image.ndim != 4:
        raise GeowarpValueError(
            f"image must have shape (B, C, H, W); got shape {tuple(image.shape)}"
        )
    if image.shape[2] == 0 or image.shape[3] == 0:
        raise GeowarpValueError(
            f"image must have a non-empty spatial size (H, W); got shape {tuple(image.shape)}"
        )
    if grid.ndim not in (3, 4) or grid.shape[-1] != 2:
        raise GeowarpValueError(
            f"grid must have shape (B, H_out, W_out, 2) or (H_out, W_out, 2); "
            f"got shape {tuple(grid.shape)}"
        )
    if not xp.isdtype(grid.dtype, "real floating"):
        raise GeowarpTypeError(f"grid must have a real floating dtype; got {grid.dtype}")
    if not xp.isdtype(image.dtype, ("real floating", "integral")):
        raise GeowarpTypeError(
            f"image must have a real floating or integer dtype; got {image.dtype}"
        )
    warn_if_channels_last(image.shape, stacklevel=4)
    devices = (array_device(image), array_device(grid))
    # traced JAX values have no device (None): nothing to compare then
    if None not in devices and devices[0] != devices[1]:
        raise GeowarpValueError(
            f"image and grid must be on one device; got {array_device(image)} and "
            f"{array_device(grid)}"
        )


def warn_if_channels_last(shape: tuple[int, ...], stacklevel: int) -> None:
    """Warn (`GeowarpWarning`) where an image of ``shape`` looks channels-last.

    That is: a last axis of 1, 3 or 4 and more than 4 "channels", more than
    the height or the width, as ``(B, H, W, C)`` read as ``(B, C, H, W)`` has.
    """
    _, channels, height, width = shape
    if width in (1, 3, 4) and channels is not None and channels > max(4, min(height, width)):
        warnings.warn(
            f"image of shape {tuple(shape)} is read as (B, C, H, W) = {channels} channels of "
            f"{height}x{width} pixels; if it is channels-last (B, H, W, C), move the channels "
            "first (np.moveaxis(image, -1, 1), image.permute(0, 3, 1, 2), "
            "tf.transpose(image, (0, 3, 1, 2)))",
            GeowarpWarning,
            stacklevel=stacklevel,
        )


def _dtypes(image_dtype: Any, grid_dtype: Any, mode: str, xp: Any) -> tuple[Any, Any, Any]:
    """(output, image, grid) dtypes of a sampling call; see docs/reliability.md."""
    grid_dtype = _at_least_float32(grid_dtype, xp)
    if xp.isdtype(image_dtype, "integral"):
        if mode == "nearest":  # values are copied, never computed: keep them exactly
            return image_dtype, image_dtype, grid_dtype
        out_dtype = xp.float64 if xp.iinfo(image_dtype).bits > 16 else xp.float32
        real = xp.result_type(out_dtype, grid_dtype)
        return out_dtype, real, real
    real = xp.result_type(_at_least_float32(image_dtype, xp), grid_dtype)
    return image_dtype, real, real


def _at_least_float32(dtype: Any, xp: Any) -> Any:
    # float16 and bfloat16 coordinates cannot address pixels past 2048 exactly
    return xp.float32 if xp.finfo(dtype).bits < 32 else dtype


def _broadcast_batch(image: Any, grid: Any, xp: Any) -> tuple[Any, Any]:
    if grid.ndim == 3:
        grid = grid[None, ...]
    batch = _common_batch(image.shape[0], grid.shape[0])
    if grid.shape[0] != batch:
        grid = xp.broadcast_to(grid, (batch, *grid.shape[1:]))
    if image.shape[0] != batch:
        image = xp.broadcast_to(image, (batch, *image.shape[1:]))
    return image, grid


def _check_integer_fill(fill_value: Any, dtype: Any, xp: Any) -> None:
    # an integer output holds the fill value exactly, or the call is refused
    values = known_values(fill_value)
    if values is None:  # traced: cast like the image's values
        return
    info = xp.iinfo(dtype)
    exact = values == np.floor(values)
    if not (np.all(exact) and np.all(values >= info.min) and np.all(values <= info.max)):
        name = getattr(dtype, "name", None) or str(dtype)
        raise GeowarpValueError(
            f"fill_value {values.tolist()} cannot be held exactly by the integer output "
            f"({name}, from nearest sampling of an integer image); give integers in "
            f"[{info.min}, {info.max}], or a floating image"
        )


def _common_batch(image_batch: int, grid_batch: int) -> int:
    if image_batch == grid_batch or grid_batch == 1:
        return image_batch
    if image_batch == 1:
        return grid_batch
    raise GeowarpValueError(
        f"image batch {image_batch} and grid batch {grid_batch} neither match nor broadcast"
    )


def _fill(fill_value: Any, channels: int, image: Any, xp: Any) -> Any:
    # ``fill_value``: a Python number or an array of the image's library (see `join`)
    if xp.isdtype(image.dtype, "integral"):
        _check_integer_fill(fill_value, image.dtype, xp)
    if isinstance(fill_value, int | float):
        fill = xp.asarray(fill_value, dtype=image.dtype, device=array_device(image))
    else:
        fill = xp.astype(fill_value, image.dtype, copy=False)  # keeps it differentiable
    if fill.ndim > 1 or (fill.ndim == 1 and fill.shape[0] not in (1, channels)):
        raise GeowarpValueError(
            f"fill_value must be a scalar or have shape ({channels},) to match the image "
            f"channels; got shape {tuple(fill.shape)}"
        )
    return xp.broadcast_to(fill, (channels,))
