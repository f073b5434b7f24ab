"""`geowarp.warp` on TF tensors for inference: the whole warp as one compiled program.

Eagerly, each op of a warp is its own XLA program, and calling a program costs
a few hundred microseconds of Python and dispatch, more than a small warp
computes. When no gradient tape records, nothing needs the ops apart, so the
warp (sampling grid and sampler) runs as one XLA-compiled ``tf.function``,
compiled once per transform structure, shape, dtype and setting; the
transform travels into it as its arrays (`geowarp.Transform.flatten`).
Compiling takes far longer than one warp op by op, so, as for every
`geowarp.tensorflow._native.Step`, the first call with new shapes runs op by
op and the program is compiled on the second.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from ..transforms import Transform
from ._native import Step, placed_like, recording

__all__ = ["inference_warp"]


def inference_warp(
    image: Any, transform: Transform, out_shape: Sequence[int], **settings: Any
) -> Any:
    """``warp(image, transform, out_shape, **settings)`` as one program, or None.

    None (the caller warps op by op) while a tape records, while a
    ``tf.function`` is traced (the caller's graph holds the ops already), for
    a ``fill_value`` that is not a plain number, where the transform's arrays
    are not TF tensors on the image's device, and on the first call with
    these shapes, dtypes and settings (compiling costs more than that call).
    """
    if not tf.executing_eagerly() or recording():
        return None
    if not isinstance(settings.get("fill_value", 0.0), int | float):
        return None
    leaves, structure = transform.flatten()
    if not all(_alike(leaf, image) for leaf in leaves):
        return None  # the op-by-op warp names the mix of libraries or devices
    program = _program(structure, tuple(out_shape), tuple(sorted(settings.items())))
    if not program.runs_compiled(image, *leaves):
        return None
    with placed_like(image):
        return program.compiled(image, *leaves)


def _alike(array: Any, image: tf.Tensor) -> bool:
    return isinstance(array, tf.Tensor) and array.device == image.device


@functools.lru_cache(maxsize=64)
def _program(
    structure: tuple[Any, ...], out_shape: tuple[int, int], settings: tuple[tuple[str, Any], ...]
) -> Step:
    from ..warp import warp

    options = dict(settings)
    if options.get("padding") != "constant":
        options.pop("fill_value", None)  # given with padding="constant" only

    def run(image: tf.Tensor, *leaves: tf.Tensor) -> tf.Tensor:
        return warp(image, Transform.unflatten(structure, leaves), out_shape, **options)

    return Step(run)
