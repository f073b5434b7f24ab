"""`warp`: a transform's sampling grid read through a sampler."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import backends
from ._errors import GeowarpTypeError, GeowarpValueError
from ._namespace import array_namespace, backend_name, join
from .grid import check_allocation, check_shape, known_count
from .samplers import check_settings, sample
from .samplers._sample import warn_if_channels_last
from .transforms import Transform
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
    grid = transform.sampling_grid(shape, align_corners=align_corners)
    return sample(image, grid, **settings)
