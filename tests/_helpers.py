"""Test helpers: torch references and framework-agnostic VJPs."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from geowarp.grid import normalized_to_pixel, pixel_to_normalized
from geowarp.samplers import BILINEAR, NEAREST

MODES = ("bilinear", "nearest")
PADDINGS = ("zeros", "border", "reflection")
COMBINATIONS = [(m, p, a) for m in MODES for p in (*PADDINGS, "constant") for a in (False, True)]


def torch_reference(
    image: np.ndarray,
    grid: np.ndarray,
    cotangent: np.ndarray,
    *,
    mode: str,
    padding: str,
    align_corners: bool,
    fill: np.ndarray | None = None,
    ring: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Output and (image, grid) cotangents from torch's grid_sample.

    ``padding="constant"`` is built independently of geowarp: the image is
    surrounded by a wide ring of ``fill`` and the grid moved into that frame.
    Moving the grid rounds, so at exact half-way ties use ``ring=False``:
    sample ``image - fill`` with zero padding and add ``fill`` back.
    """
    import torch
    import torch.nn.functional as F

    image_t = torch.tensor(image, requires_grad=True)
    grid_t = torch.tensor(grid, requires_grad=True)
    if padding == "constant" and not ring:
        offset = torch.tensor(fill, dtype=image_t.dtype)[None, :, None, None]
        out = offset + F.grid_sample(
            image_t - offset, grid_t, mode=mode, padding_mode="zeros", align_corners=align_corners
        )
    elif padding == "constant":
        height, width = image.shape[-2:]
        width_of_ring = 4 * max(height, width)  # even, so half-way ties round the same way
        padded = torch.tensor(fill, dtype=image_t.dtype)[None, :, None, None].repeat(
            image.shape[0], 1, height + 2 * width_of_ring, width + 2 * width_of_ring
        )
        padded[
            :, :, width_of_ring : width_of_ring + height, width_of_ring : width_of_ring + width
        ] = image_t
        pixels = normalized_to_pixel(grid_t, (height, width), align_corners=align_corners)
        moved = pixel_to_normalized(
            pixels + width_of_ring,
            (height + 2 * width_of_ring, width + 2 * width_of_ring),
            align_corners=align_corners,
        )
        out = F.grid_sample(
            padded, moved, mode=mode, padding_mode="zeros", align_corners=align_corners
        )
    else:
        out = F.grid_sample(
            image_t, grid_t, mode=mode, padding_mode=padding, align_corners=align_corners
        )
    d_image, d_grid = torch.autograd.grad(out, (image_t, grid_t), torch.tensor(cotangent))
    return out.detach().numpy(), d_image.numpy(), d_grid.numpy()


def core_op(mode: str) -> Any:
    return BILINEAR if mode == "bilinear" else NEAREST


def vjp(
    backend: Any, function: Callable[..., Any], primals: tuple[Any, ...], cotangent: Any
) -> tuple[Any, tuple[Any, ...]]:
    """``(function(*primals), cotangents)`` through the backend's own autodiff."""
    if backend.name == "torch":
        import torch

        leaves = tuple(p.detach().clone().requires_grad_(True) for p in primals)
        out = function(*leaves)
        grads = torch.autograd.grad(out, leaves, cotangent, allow_unused=True)
        grads = tuple(
            torch.zeros_like(p) if g is None else g for g, p in zip(grads, leaves, strict=True)
        )
        return out.detach(), grads
    if backend.name == "jax":
        import jax

        out, pullback = jax.vjp(function, *primals)
        return out, tuple(pullback(cotangent))
    if backend.name == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(primals)
            out = function(*primals)
        grads = tape.gradient(out, primals, output_gradients=cotangent)
        return out, tuple(
            tf.zeros_like(p) if g is None else g for g, p in zip(grads, primals, strict=True)
        )
    raise NotImplementedError(f"{backend.name} has no autodiff")


def random_grid(
    rng: np.random.Generator, shape: tuple[int, ...], low: float = -2.0, high: float = 2.0
) -> np.ndarray:
    return rng.uniform(low, high, size=shape)


def benchmark_script(name: str) -> Iterator[ModuleType]:
    """``benchmarks/<name>.py`` loaded as the module ``name`` for the duration of a test
    module (a generator for a module-scoped fixture): dataclasses and pickling look a
    module up by its name in ``sys.modules``."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(name, None)
