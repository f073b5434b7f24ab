"""`SpatialTransformer`: the STN of Jaderberg et al. (NeurIPS 2015) as a PyTorch module."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..transforms import Transform
from ._base import TransformerModule


class SpatialTransformer(TransformerModule):
    """Localisation network, regression head, warp: a spatial transformer.

    ``localization`` turns each image into features; a linear head turns
    those into the transform's parameters ("identity plus params", see
    `params_to_transform`); the image is warped by the transform. The head
    starts with zero weights and the identity's bias, as the STN paper
    prescribes, so an untrained module returns its input unchanged.

    Parameters
    ----------
    localization : torch.nn.Module
        Maps images (B, C, H, W) to features of any shape (B, ...); they are
        flattened before the head.
    transform : str or Transform subclass
        The transform family: ``"affine"``, ``"projective"``, ``"tps"`` (a
        thin-plate spline whose control points, a ``control_grid``, move by
        the predicted offsets), or any registered family with
        ``param_count``/``from_params`` (see `geowarp.transforms.register_family`).
    features : int, optional
        How many numbers ``localization`` gives per image. When omitted the
        head finds out on the first call (``torch.nn.LazyLinear``); run one
        batch through before creating the optimiser, as with any lazy module.
    out_shape : (H_out, W_out), optional
        Size of the warped output; the input's size when omitted.
    mode, padding, align_corners, fill_value
        Sampler settings, as in `geowarp.warp`.
    control_grid : (rows, columns)
        The thin-plate spline's control points, spread evenly over [-1, 1]^2;
        16 (4 by 4) by default. Ignored by families without control points.

    Attributes
    ----------
    localization : torch.nn.Module
    head : torch.nn.Linear
        Features to the transform's parameters.
    family : type
        The `geowarp.Transform` subclass predicted.
    control_points : tensor of shape (K, 2) or None
        The thin-plate spline's control points (a buffer, so it follows
        ``.to(device)``); None for the families without them.

    Notes
    -----
    While the head's weights are zero the localisation network receives a
    zero gradient; the first optimiser step moves the head and the gradient
    flows from then on.

    Examples
    --------
    >>> import torch
    >>> from geowarp.torch import SpatialTransformer
    >>> localization = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 8))
    >>> stn = SpatialTransformer(localization, "affine")
    >>> image = torch.rand(2, 1, 8, 8)
    >>> out, transform = stn(image, return_transform=True)
    >>> out.shape, transform.batch_shape, stn.head.in_features
    (torch.Size([2, 1, 8, 8]), (2,), 8)
    >>> torch.allclose(out, image, atol=1e-6)
    True
    """

    def __init__(
        self,
        localization: nn.Module,
        transform: str | type[Transform] = "affine",
        *,
        features: int | None = None,
        out_shape: Sequence[int] | None = None,
        mode: str = "bilinear",
        padding: str = "zeros",
        align_corners: bool = False,
        fill_value: float | None = None,
        control_grid: Sequence[int] = (4, 4),
    ) -> None:
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

    def predict_params(self, image: torch.Tensor) -> torch.Tensor:
        """Localisation network and head: the parameters (B, P) predicted for ``image``.

        Examples
        --------
        >>> import torch
        >>> from geowarp.torch import SpatialTransformer
        >>> stn = SpatialTransformer(torch.nn.Flatten(), "tps", features=16)
        >>> stn.predict_params(torch.rand(3, 1, 4, 4)).shape
        torch.Size([3, 32])
        """
        return self.regress(image)
