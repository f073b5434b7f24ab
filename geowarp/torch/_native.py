"""PyTorch's own ``grid_sample`` as the fast path of `geowarp.sample`.

Pinned to the portable sampler by tests (values and gradients), including the
non-finite policy of docs/reliability.md, which ``grid_sample`` alone does not
follow (it returns NaN for NaN or huge coordinates with zero padding, and reads
a pixel for NaN coordinates with border padding).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ..samplers._coordinates import COORDINATE_LIMIT
from ._autograd import apply_function


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
    # A NaN coordinate reads the padding value. With zeros/constant padding a far
    # coordinate does that by itself, unless an axis has one pixel and
    # align_corners=True, where every finite coordinate lands on that pixel.
    single_pixel = align_corners and min(image.shape[-2:]) == 1
    mask_output = padding in ("border", "reflection") or single_pixel
    lost = None
    row_major = grid.contiguous()  # grid_sample reads other layouts several times slower
    if _within_limit(row_major):  # nothing to clamp, no NaN: no masks either way
        grid = row_major
    else:
        lost = torch.isnan(grid).any(dim=-1)[:, None] if mask_output else None
        nan = 0.0 if mask_output else -COORDINATE_LIMIT
        if torch.is_grad_enabled() and grid.requires_grad:
            grid = apply_function(_Limit, grid, nan)
        else:  # no autograd.Function (and its per-call overhead) when nothing is differentiated
            grid = _Limit.forward(grid, nan)
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
    if lost is not None:
        out = torch.where(lost, offset, out)
    return out


def _within_limit(grid: torch.Tensor) -> bool:
    """Whether every coordinate is a number within +-COORDINATE_LIMIT (then `_Limit` is a no-op).

    Known on the CPU for one pass over the grid, cheaper than the limit's own
    passes and its masked backward. Elsewhere (a device round trip) and while
    compiling (a value-dependent branch) the answer is False: the limit runs.
    """
    if grid.device.type != "cpu" or torch.compiler.is_compiling() or grid.numel() == 0:
        return False
    low, high = torch.aminmax(grid.detach())
    return bool(low >= -COORDINATE_LIMIT) and bool(high <= COORDINATE_LIMIT)  # NaN: False


class _Limit(torch.autograd.Function):
    """Clamp to +-COORDINATE_LIMIT and replace NaN, as the portable samplers do.

    One fused forward and a one-mask backward: autograd through clamp and
    nan_to_num costs about eight passes over the grid.
    """

    @staticmethod
    def forward(grid: torch.Tensor, nan: float) -> torch.Tensor:
        # A fresh row-major buffer (grid_sample reads other layouts several times
        # slower), written by clamp and fixed in place: two passes, input untouched.
        limited = torch.empty_like(grid, memory_format=torch.contiguous_format)
        torch.clamp(grid, -COORDINATE_LIMIT, COORDINATE_LIMIT, out=limited)
        return limited.nan_to_num_(nan=nan)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        # grid_sample keeps the output for its own backward: saving it costs nothing
        ctx.save_for_backward(inputs[0], output)

    @staticmethod
    def backward(ctx: Any, cotangent: torch.Tensor) -> tuple[torch.Tensor, None]:
        grid, limited = ctx.saved_tensors
        # unchanged entries pass the gradient; clamped and NaN ones (NaN != x) do not
        return torch.where(limited == grid, cotangent, 0.0), None
