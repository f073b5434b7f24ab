"""`SpatialTransformer`: the STN of Jaderberg et al. (NeurIPS 2015) as a PyTorch module."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .._errors import GeowarpTypeError, GeowarpValueError
from ._base import TransformerModule
from ._options import WarpOptions
from ._params import (
    check_control_grid,
    check_kind,
    init_identity_,
    param_count,
    tps_control_points,
)


class SpatialTransformer(TransformerModule):
    """Localisation network, regression head, warp: a spatial transformer.

    ``localization`` turns each image into ``features`` numbers; a linear
    head turns those into the transform's parameters ("identity plus params",
    see `params_to_transform`); the image is warped by the transform. The
    head starts with zero weights and the identity's bias, as the STN paper
    prescribes, so an untrained module returns its input unchanged.

    Parameters
    ----------
    localization : torch.nn.Module
        Maps images (B, C, H, W) to features (B, features), or to any
        (B, ...) shape holding ``features`` numbers per image (it is flattened).
    transform : {"affine", "projective", "tps"}
        The transform family; ``"tps"`` is a thin-plate spline whose control
        points (a ``control_grid``) move by the predicted offsets.
    features : int
        How many features ``localization`` gives per image: the head's input size.
    out_shape : (H_out, W_out), optional
        Size of the warped output; the input's size when omitted.
    mode, padding, align_corners, fill_value
        Sampler settings, as in `geowarp.warp`.
    control_grid : (rows, columns)
        The thin-plate spline's control points, spread evenly over [-1, 1]^2;
        16 (4 by 4) by default. Ignored by the matrix families.

    Attributes
    ----------
    localization : torch.nn.Module
    head : torch.nn.Linear
        ``features`` to the transform's parameters.
    control_points : tensor of shape (K, 2) or None
        The thin-plate spline's control points (a buffer, so it follows
        ``.to(device)``); None for the matrix families.

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
    >>> stn = SpatialTransformer(localization, "affine", features=8)
    >>> image = torch.rand(2, 1, 8, 8)
    >>> out, transform = stn(image, return_transform=True)
    >>> out.shape, transform.batch_shape
    (torch.Size([2, 1, 8, 8]), (2,))
    >>> torch.allclose(out, image, atol=1e-6)
    True
    """

    def __init__(
        self,
        localization: nn.Module,
        transform: str = "affine",
        *,
        features: int,
        out_shape: Sequence[int] | None = None,
        mode: str = "bilinear",
        padding: str = "zeros",
        align_corners: bool = False,
        fill_value: float = 0.0,
        control_grid: Sequence[int] = (4, 4),
    ) -> None:
        kind = check_kind(transform, "transform")
        options = WarpOptions.checked(out_shape, mode, padding, align_corners, fill_value)
        grid = check_control_grid(control_grid) if kind == "tps" else None
        super().__init__(kind, options, None if grid is None else tps_control_points(grid))
        if not isinstance(localization, nn.Module):
            raise GeowarpTypeError(
                f"localization must be a torch.nn.Module; got {type(localization).__name__}"
            )
        if isinstance(features, bool) or not isinstance(features, int) or features < 1:
            raise GeowarpValueError(f"features must be a positive int; got {features!r}")
        self.control_grid = grid
        self.localization = localization
        self.head = init_identity_(nn.Linear(features, param_count(kind, control_grid)))

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
        features = torch.flatten(self.localization(image), start_dim=1)
        if features.shape[1] != self.head.in_features:
            raise GeowarpValueError(
                f"localization must give features={self.head.in_features} numbers per image; "
                f"got output of shape {tuple(features.shape)}"
            )
        return self.head(features)
