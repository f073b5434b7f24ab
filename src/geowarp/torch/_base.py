"""What `SpatialTransformer` and `ICSTN` share: predict parameters, build the transform, warp."""

from __future__ import annotations

import abc
from typing import Literal, overload

import torch
from torch import nn

from ..transforms import Transform
from ._options import WarpOptions
from ._params import params_to_transform


class TransformerModule(nn.Module, abc.ABC):
    """A module that predicts a transform from an image and warps the image by it.

    Subclasses implement `predict_params`; the transform family is ``kind``
    and the warp settings are ``options``.
    """

    control_points: torch.Tensor | None

    def __init__(
        self, kind: str, options: WarpOptions, control_points: torch.Tensor | None = None
    ) -> None:
        super().__init__()
        self.kind = kind
        self.options = options
        # not persistent: it follows from the constructor's control_grid, like the head's size
        self.register_buffer("control_points", control_points, persistent=False)

    @abc.abstractmethod
    def predict_params(self, image: torch.Tensor) -> torch.Tensor:
        """The predicted parameters (B, P), "identity plus params" (see `params_to_transform`)."""

    def predict_transform(self, image: torch.Tensor) -> Transform:
        """The predicted transform, batch shape (B,); it maps output points to input points.

        Examples
        --------
        >>> import torch
        >>> from geowarp.torch import SpatialTransformer
        >>> stn = SpatialTransformer(torch.nn.Flatten(), "projective", features=16)
        >>> transform = stn.predict_transform(torch.rand(2, 1, 4, 4))
        >>> type(transform).__name__, transform.batch_shape
        ('Projective', (2,))
        """
        return params_to_transform(
            self.predict_params(image), self.kind, control_points=self.control_points
        )

    @overload
    def forward(
        self, image: torch.Tensor, *, return_transform: Literal[False] = False
    ) -> torch.Tensor: ...

    @overload
    def forward(
        self, image: torch.Tensor, *, return_transform: Literal[True]
    ) -> tuple[torch.Tensor, Transform]: ...

    def forward(
        self, image: torch.Tensor, *, return_transform: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, Transform]:
        """Warp ``image`` (B, C, H, W) by the transform predicted from it.

        Parameters
        ----------
        image : tensor of shape (B, C, H, W)
            Floating-point images.
        return_transform : bool
            Also return the predicted transform (batch shape (B,)), e.g. to
            map keypoints with ``.apply`` (output to input points) or
            ``.inverse().apply`` (input to output points), or to compose it.

        Returns
        -------
        out : tensor of shape (B, C, H_out, W_out)
            ``(H_out, W_out)`` is ``out_shape``, or the input's size.
        transform : Transform, only with ``return_transform=True``
        """
        transform = self.predict_transform(image)
        out = self.options.warp(image, transform)
        if return_transform:
            return out, transform
        return out

    def extra_repr(self) -> str:
        """The transform family and warp settings, for ``print(module)``."""
        return f"transform={self.kind!r}, {self.options.describe()}"
