"""The PyTorch `geowarp.backends.Backend`: autograd wiring and ``grid_sample`` as the sampler."""

from __future__ import annotations

import functools

from ..backends import Backend
from ._autograd import call
from ._native import grid_sample
from ._ops import OPS

BACKEND = Backend(
    "torch",
    autodiff=call,
    samplers={
        "bilinear_sample": functools.partial(grid_sample, mode="bilinear"),
        "nearest_sample": functools.partial(grid_sample, mode="nearest"),
    },
    ops=OPS,
)
"""Registered when `geowarp.torch` is imported (or the first tensor arrives)."""
