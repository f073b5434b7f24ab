"""`warp`: a transform's sampling grid read through a sampler."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import backends
from ._errors import GeowarpTypeError, GeowarpValueError
from ._namespace import array_namespace, backend_name, join
from .grid import base_axes, check_allocation, check_shape, known_count
from .samplers import check_settings, sample
from .samplers._numpy import warp_matrix
from .samplers._sample import warn_if_channels_last
from .transforms import Affine, Projective, Transform
from .transforms._base import joined


def warp(
    image: Any,
    transform: Transform,
    out_shape: Sequence[int] | None = None,
    *,
    mode: str = "bilinear",
    padding: str = "zeros",
    align_corners: bool = False,
    fill_value: Any = None,
    native: bool = True,
) -> Any:
    """Warp ``image`` by ``transform``: ``out[p] = image[transform.apply(p)]``.

    Parameters
    ----------
    image : array of shape (B, C, H, W)
        Image, channels first; floating or integer, with the dtype rules of
        `geowarp.sample`.
    transform : Transform
        Maps output points to input points in the normalized frame. Its batch
        shape is ``()`` (one transform for every image) or ``(B,)``.
    out_shape : (H_out, W_out), optional
        Output size; the input's ``(H, W)`` when omitted.
    mode, padding, align_corners, fill_value, native
        As in `geowarp.sample`.

    Returns
    -------
    out : array of shape (B, C, H_out, W_out)
        In the image's dtype. Differentiable w.r.t. the image and the
        transform's arrays on PyTorch, JAX and TensorFlow.

    Examples
    --------
    >>> import numpy as np
    >>> import geowarp as gw
    >>> image = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> flip = gw.Affine(np.array([[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
    >>> gw.warp(image, flip)[0, 0]
    array([[2., 1., 0.],
           [5., 4., 3.],
           [8., 7., 6.]])
    """
    if not isinstance(transform, Transform):
        message = getattr(transform, "message", None)
        if isinstance(message, str) and not transform:  # a FailedEstimation: say why it failed
            raise GeowarpValueError(f"transform is a failed estimation: {message}")
        raise GeowarpTypeError(
            f"transform must be a geowarp Transform; got {type(transform).__name__}"
        )
    transform = joined(transform, image, "image")  # numpy transforms join a framework image
    (image, _), _ = join(("image", image), ("transform", transform._reference))
    if getattr(image, "ndim", None) != 4:
        raise GeowarpValueError(
            f"image must have shape (B, C, H, W); got shape {tuple(getattr(image, 'shape', ()))}"
        )
    if len(transform.batch_shape) > 1:
        raise GeowarpValueError(
            f"transform batch shape must be () or (B,); got {transform.batch_shape}"
        )
    shape = tuple(image.shape[-2:]) if out_shape is None else check_shape(out_shape, "out_shape")
    batch = max(known_count(image.shape[0]), known_count(*transform.batch_shape))
    count = batch * known_count(image.shape[1]) * shape[0] * shape[1]
    check_allocation(count, 8, f"a warp to {shape}")
    check_settings(mode, padding, align_corners, fill_value)
    settings = {
        "mode": mode,
        "padding": padding,
        "align_corners": align_corners,
        "fill_value": fill_value,
        "native": native,
    }
    backend = backends.get(backend_name(array_namespace(image)))
    if backend is not None and backend.warp is not None:
        plain = 0.0 if fill_value is None else fill_value  # what the fast paths take
        out = backend.warp(image, transform, shape, **{**settings, "fill_value": plain})
        if out is not None:
            warn_if_channels_last(tuple(image.shape), stacklevel=3)  # as sample() does
            return out
    out = _numpy_warp(image, transform, shape, settings) if backend is None else None
    if out is not None:
        warn_if_channels_last(tuple(image.shape), stacklevel=3)
        return out
    grid = transform.sampling_grid(shape, align_corners=align_corners)
    return sample(image, grid, **settings)


#: Fewest output points per image for `_numpy_warp`: below, many images share a
#: chunk and building their grid rows per chunk measured slower than one grid.
MIN_POINTS = 2**14


def _numpy_warp(image: Any, transform: Transform, shape: tuple[int, int], settings: Any) -> Any:
    """numpy's whole-warp fast path (it has no registered backend), or None where it does not apply.

    A plain `Affine` or `Projective` of the image's floating dtype on a numpy
    image of a matching batch: `geowarp.samplers._numpy.warp_matrix` samples
    it with the grid built per chunk, identical to sampling the whole grid.
    """
    fill = settings["fill_value"]
    if not (settings["native"] and isinstance(transform, Affine | Projective)):
        return None
    if type(transform) not in (Affine, Projective):  # a subclass may map points its own way
        return None
    if not isinstance(image, np.ndarray) or (fill is not None and type(fill) not in (int, float)):
        return None
    rows = transform._rows()
    if image.dtype not in (np.float32, np.float64) or rows.dtype != image.dtype:
        return None
    if 0 in image.shape[2:] or (rows.ndim == 3 and rows.shape[0] != image.shape[0]):
        return None
    if shape[0] * shape[1] < MIN_POINTS:  # small outputs: grid + sampler measured faster
        return None
    xs, ys = base_axes(shape, align_corners=settings["align_corners"], like=rows)
    value = np.asarray(0.0 if fill is None else fill, dtype=image.dtype)
    return warp_matrix(
        image,
        rows,
        xs,
        ys,
        np.broadcast_to(value, (image.shape[1],)),
        mode=settings["mode"],
        padding=settings["padding"],
        align_corners=settings["align_corners"],
    )
