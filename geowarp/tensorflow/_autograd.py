"""Wire core ops into TensorFlow autodiff with ``tf.custom_gradient``: wiring only, no maths.

Every op runs the core's forward and VJP (`geowarp.sample` picks the TF
sampler kernels of `geowarp.tensorflow._native` itself unless
``native=False``), each as a `geowarp.tensorflow._native.Step`: eagerly, op by
op on the first call with new shapes (no compilation to wait for), then as an
XLA-compiled ``tf.function`` (``jit_compile=True``), compiled once per op,
setting, shape and dtype: one fused program instead of a chain of small
TensorFlow kernels (2-4x faster on the CPU). Inside a ``tf.function`` the
compiled steps are calls in the caller's graph, and inside
``tf.function(jit_compile=True)`` they join the caller's program.
"""

from __future__ import annotations

import functools
from typing import Any

import tensorflow as tf

from ..autodiff import Op
from ._native import Step, placed_like, recording


def call(op: Op, arrays: tuple[tf.Tensor, ...], options: dict[str, Any]) -> tf.Tensor:
    """Run ``op`` so that ``tf.GradientTape`` differentiates it through its explicit VJP.

    Examples
    --------
    >>> import tensorflow as tf
    >>> import geowarp as gw
    >>> theta = tf.constant([[1.0, 0.0, 0.5], [0.0, 1.0, 0.0]])
    >>> points = tf.zeros((1, 2))
    >>> with tf.GradientTape() as tape:
    ...     tape.watch(theta)
    ...     mapped = gw.Affine(theta).apply(points)
    >>> tape.gradient(mapped, theta).numpy().tolist()
    [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]
    """
    tensors = tuple(tf.convert_to_tensor(a) for a in arrays)  # a tf.Variable reads once
    with placed_like(tensors[0]):
        if not recording():  # inference: the output alone, no residuals kept
            return _compiled(op, tuple(sorted(options.items())))[2](*tensors)
        return _differentiable(op, options)(*tensors)


@functools.lru_cache(maxsize=128)
def _compiled(op: Op, options: tuple[tuple[str, Any], ...]) -> tuple[Step, Step, Step]:
    """``op``'s forward, VJP and output alone as `Step` objects, per setting."""
    settings = dict(options)
    forward = Step(lambda *arrays: op.forward(*arrays, **settings))
    vjp = Step(lambda residuals, cotangent: op.vjp(residuals, cotangent, **settings))
    output = Step(lambda *arrays: op.forward(*arrays, **settings)[0])
    return forward, vjp, output


def _differentiable(op: Op, options: dict[str, Any]) -> Any:
    forward, vjp, _ = _compiled(op, tuple(sorted(options.items())))

    @tf.custom_gradient
    def apply(*arrays: tf.Tensor) -> Any:
        out, residuals = forward(*arrays)

        def gradient(cotangent: tf.Tensor) -> list[Any]:
            return list(vjp(residuals, cotangent))

        return out, gradient

    return apply
