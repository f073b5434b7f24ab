"""`ICSTN`: the inverse-compositional spatial transformer of Lin and Lucey (CVPR 2017)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .._errors import GeowarpValueError
from .._params import matrix_family
from ..transforms import Transform
from ._base import TransformerModule
from ._params import compose_params


class ICSTN(TransformerModule):
    """One geometric predictor applied recurrently, composing its updates.

    Starting from the identity ``p = 0``, each of ``steps`` steps warps the
    ORIGINAL image by ``W(p)``, lets the localisation network and head read
    the warped image and predict an update ``dp``, and composes
    ``W(p) <- W(dp) @ W(p)`` (see `compose_params`). The output is the
    original image warped once by the final ``W(p)``, so no resampling blur
    accumulates; gradients flow through every step.

    The arguments are `SpatialTransformer`'s, plus ``steps``; the head
    (shared by every step) starts at the identity, so every update starts at
    zero.

    Parameters
    ----------
    localization : torch.nn.Module
        Maps warped images (B, C, H_out, W_out) to features (B, ...).
    transform : {"affine", "projective"} or a MatrixTransform subclass
        A matrix family: the paper composes warps by matrix products.
    steps : int
        How many times the predictor runs (at least 1).
    features : int, optional
        How many numbers ``localization`` gives per image; found on the first
        call when omitted.
    out_shape : (H_out, W_out), optional
        Size of the warped images, the predictor's input and the output; the
        input's size when omitted.
    mode, padding, align_corners, fill_value
        Sampler settings, as in `geowarp.warp`.
    control_grid : (rows, columns)
        Accepted for symmetry with `SpatialTransformer`; matrix families have
        no control points.

    Attributes
    ----------
    localization : torch.nn.Module
    head : torch.nn.Linear
    steps : int

    Notes
    -----
    With ``steps=1`` this is a `SpatialTransformer` with the same
    localisation network and head (up to the identity resampling of the input).

    Examples
    --------
    >>> import torch
    >>> from geowarp.torch import ICSTN
    >>> localization = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 8))
    >>> icstn = ICSTN(localization, "affine", steps=3)
    >>> image = torch.rand(2, 1, 8, 8)
    >>> out, transform = icstn(image, return_transform=True)
    >>> out.shape, transform.batch_shape
    (torch.Size([2, 1, 8, 8]), (2,))
    """

    def __init__(
        self,
        localization: nn.Module,
        transform: str | type[Transform] = "affine",
        steps: int = 4,
        *,
        features: int | None = None,
        out_shape: Sequence[int] | None = None,
        mode: str = "bilinear",
        padding: str = "zeros",
        align_corners: bool = False,
        fill_value: float | None = None,
        control_grid: Sequence[int] = (4, 4),
    ) -> None:
        matrix_family(transform, "transform")
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise GeowarpValueError(f"steps must be an int >= 1; got {steps!r}")
        super().__init__(
            localization,
            transform,
            features=features,
            out_shape=out_shape,
            mode=mode,
            padding=padding,
            align_corners=align_corners,
            fill_value=fill_value,
            control_grid=control_grid,
        )
        self.steps = steps

    def predict_params(self, image: torch.Tensor) -> torch.Tensor:
        """The composed parameters (B, P) after ``steps`` updates, from the identity.

        Examples
        --------
        >>> import torch
        >>> from geowarp.torch import ICSTN
        >>> icstn = ICSTN(torch.nn.Flatten(), "projective", steps=2, features=16)
        >>> icstn.predict_params(torch.rand(3, 1, 4, 4)).shape
        torch.Size([3, 8])
        """
        params = image.new_zeros((image.shape[0], self.param_count))
        for _ in range(self.steps):
            warped = self.options.warp(image, self.to_transform(params))
            params = compose_params(self.regress(warped), params, self.family)
        return params

    def extra_repr(self) -> str:
        """The transform family, steps and warp settings, for ``print(module)``."""
        return f"steps={self.steps}, {super().extra_repr()}"
