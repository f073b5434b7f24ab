"""How the transformer modules warp: output size and sampler settings, checked once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..grid import check_shape
from ..samplers import check_settings
from ..transforms import Transform
from ..warp import warp


@dataclass(frozen=True)
class WarpOptions:
    """The `geowarp.warp` settings of a transformer module.

    Examples
    --------
    >>> import torch
    >>> import geowarp as gw
    >>> from geowarp.torch._options import WarpOptions
    >>> options = WarpOptions.checked(out_shape=(2, 2))
    >>> identity = gw.Affine.identity(like=torch.zeros(1))
    >>> options.warp(torch.ones(1, 1, 4, 4), identity).shape
    torch.Size([1, 1, 2, 2])
    """

    out_shape: tuple[int, int] | None = None
    mode: str = "bilinear"
    padding: str = "zeros"
    align_corners: bool = False
    fill_value: float | None = None

    @classmethod
    def checked(
        cls,
        out_shape: Sequence[int] | None = None,
        mode: str = "bilinear",
        padding: str = "zeros",
        align_corners: bool = False,
        fill_value: float | None = None,
    ) -> WarpOptions:
        """Validate the settings now, so a bad one fails at construction, not mid-training."""
        mode, padding, align_corners = check_settings(mode, padding, align_corners, fill_value)
        shape = None if out_shape is None else check_shape(out_shape, "out_shape")
        fill = None if fill_value is None else float(fill_value)
        return cls(shape, mode, padding, align_corners, fill)

    def warp(self, image: torch.Tensor, transform: Transform) -> torch.Tensor:
        """``geowarp.warp(image, transform, ...)`` with these settings."""
        return warp(
            image,
            transform,
            self.out_shape,
            mode=self.mode,
            padding=self.padding,
            align_corners=self.align_corners,
            fill_value=self.fill_value,
        )

    def describe(self) -> str:
        """The settings for a module's ``extra_repr``."""
        return (
            f"out_shape={self.out_shape}, mode={self.mode!r}, padding={self.padding!r}, "
            f"align_corners={self.align_corners}"
        )
