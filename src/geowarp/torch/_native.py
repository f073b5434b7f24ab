"""PyTorch's own ``grid_sample`` as the fast path of `geowarp.sample`.

Pinned to the portable sampler by tests (values and gradients), including the
non-finite policy of docs/reliability.md, which ``grid_sample`` alone does not
follow (it returns NaN for NaN or huge coordinates with zero padding, and reads
a pixel for NaN coordinates with border padding).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..samplers._coordinates import COORDINATE_LIMIT


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
    grid = grid.clamp(-COORDINATE_LIMIT, COORDINATE_LIMIT)  # keeps NaN
    # A NaN coordinate reads the padding value. With zeros/constant padding a far
    # coordinate does that by itself, unless an axis has one pixel and
    # align_corners=True, where every finite coordinate lands on that pixel.
    single_pixel = align_corners and min(image.shape[-2:]) == 1
    mask_output = padding in ("border", "reflection") or single_pixel
    if mask_output:
        lost = torch.isnan(grid).any(dim=-1)[:, None]
        grid = torch.nan_to_num(grid, nan=0.0)
    else:
        grid = torch.nan_to_num(grid, nan=-COORDINATE_LIMIT)
    offset = fill[:, None, None]
    if padding == "constant":
        # Bilinear weights sum to one, so sampling (image - fill) with zero padding
        # and adding fill back is exactly "the image surrounded by fill".
        out = (
            F.grid_sample(
                image - offset, grid, mode=mode, padding_mode="zeros", align_corners=align_corners
            )
            + offset
        )
    else:
        out = F.grid_sample(
            image, grid, mode=mode, padding_mode=padding, align_corners=align_corners
        )
    if mask_output:
        out = torch.where(lost, offset, out)
    return out
