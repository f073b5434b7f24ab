"""PyTorch's own ``grid_sample`` as the fast path of `geowarp.sample`.

Pinned to the portable sampler by tests/test_sampler_parity.py (values and gradients).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def grid_sample(
    image: torch.Tensor,
    grid: torch.Tensor,
    fill: torch.Tensor,
    *,
    mode: str,
    padding: str,
    align_corners: bool,
) -> torch.Tensor:
    """`geowarp.sample` through ``torch.nn.functional.grid_sample``."""
    if padding != "constant":
        return F.grid_sample(
            image, grid, mode=mode, padding_mode=padding, align_corners=align_corners
        )
    # Bilinear weights sum to one, so sampling (image - fill) with zero padding and
    # adding fill back is exactly "the image surrounded by fill".
    offset = fill[:, None, None]
    out = F.grid_sample(
        image - offset, grid, mode=mode, padding_mode="zeros", align_corners=align_corners
    )
    return out + offset
