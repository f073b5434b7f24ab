"""`ICSTN`: the inverse-compositional spatial transformer of Lin and Lucey (CVPR 2017)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .._errors import GeowarpTypeError, GeowarpValueError
from ._base import TransformerModule
from ._options import WarpOptions
from ._params import check_kind, compose_params, param_count, params_to_transform


class ICSTN(TransformerModule):
    """One geometric predictor applied recurrently, composing its updates.

    Starting from the identity ``p = 0``, each of ``steps`` steps warps the
    ORIGINAL image by ``W(p)``, lets ``predictor`` read the warped image and
    predict an update ``dp``, and composes ``W(p) <- W(dp) @ W(p)`` (see
    `compose_params`). The output is the original image warped once by the
    final ``W(p)``, so no resampling blur accumulates; gradients flow through
    every step.

    Parameters
    ----------
    predictor : torch.nn.Module
        Maps warped images (B, C, H_out, W_out) to updates (B, P), with ``P``
        the `param_count` of ``transform``. Initialise its last layer with
        `init_identity_` so every update starts at zero.
    transform : {"affine", "projective"}
        A matrix family: the paper composes warps by matrix products.
    steps : int
        How many times the predictor runs (at least 1).
    out_shape : (H_out, W_out), optional
        Size of the warped images, the predictor's input and the output; the
        input's size when omitted.
    mode, padding, align_corners, fill_value
        Sampler settings, as in `geowarp.warp`.

    Attributes
    ----------
    predictor : torch.nn.Module
    steps : int

    Notes
    -----
    With ``steps=1`` this is a `SpatialTransformer` whose localisation network
    and head are ``predictor`` (up to the identity resampling of the input).

    Examples
    --------
    >>> import torch
    >>> from geowarp.torch import ICSTN, init_identity_
    >>> head = init_identity_(torch.nn.Linear(64, 6))
    >>> icstn = ICSTN(torch.nn.Sequential(torch.nn.Flatten(), head), "affine", steps=3)
    >>> image = torch.rand(2, 1, 8, 8)
    >>> out, transform = icstn(image, return_transform=True)
    >>> out.shape, transform.batch_shape
    (torch.Size([2, 1, 8, 8]), (2,))
    """

    def __init__(
        self,
        predictor: nn.Module,
        transform: str = "affine",
        steps: int = 4,
        *,
        out_shape: Sequence[int] | None = None,
        mode: str = "bilinear",
        padding: str = "zeros",
        align_corners: bool = False,
        fill_value: float = 0.0,
    ) -> None:
        kind = check_kind(transform, "transform", allowed=("affine", "projective"))
        options = WarpOptions.checked(out_shape, mode, padding, align_corners, fill_value)
        super().__init__(kind, options)
        if not isinstance(predictor, nn.Module):
            raise GeowarpTypeError(
                f"predictor must be a torch.nn.Module; got {type(predictor).__name__}"
            )
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise GeowarpValueError(f"steps must be an int >= 1; got {steps!r}")
        self.predictor = predictor
        self.steps = steps

    def predict_params(self, image: torch.Tensor) -> torch.Tensor:
        """The composed parameters (B, P) after ``steps`` updates, from the identity.

        Examples
        --------
        >>> import torch
        >>> from geowarp.torch import ICSTN, init_identity_
        >>> head = init_identity_(torch.nn.Linear(16, 8))
        >>> icstn = ICSTN(torch.nn.Sequential(torch.nn.Flatten(), head), "projective", steps=2)
        >>> icstn.predict_params(torch.rand(3, 1, 4, 4)).shape
        torch.Size([3, 8])
        """
        count = param_count(self.kind)
        params = image.new_zeros((image.shape[0], count))
        for _ in range(self.steps):
            warped = self.options.warp(image, params_to_transform(params, self.kind))
            update = self.predictor(warped)
            if update.shape != params.shape:
                raise GeowarpValueError(
                    f"predictor must return updates of shape {tuple(params.shape)} "
                    f"({count} parameters per image); got {tuple(update.shape)}"
                )
            params = compose_params(update, params, self.kind)
        return params

    def extra_repr(self) -> str:
        """The transform family, steps and warp settings, for ``print(module)``."""
        return f"steps={self.steps}, {super().extra_repr()}"
