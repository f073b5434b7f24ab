"""Wire core ops into TensorFlow autodiff with ``tf.custom_gradient``: wiring only, no maths.

Every op runs the core's forward and VJP (`geowarp.sample` picks the TF
sampler kernels of `geowarp.tensorflow._native` itself unless
``native=False``). They run as XLA-compiled
``tf.function``s (``jit_compile=True``), compiled once per op, setting, shape
and dtype: eagerly and inside a ``tf.function`` each step is one fused
program instead of a chain of small TensorFlow kernels (2-4x faster on the
CPU), and inside ``tf.function(jit_compile=True)`` they join the caller's
program.
"""

from __future__ import annotations

import functools
from typing import Any

import tensorflow as tf

from ..autodiff import Op
from ._native import placed_like, recording


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
def _compiled(op: Op, options: tuple[tuple[str, Any], ...]) -> tuple[Any, Any, Any]:
    """``op``'s forward, VJP and output alone as XLA-compiled ``tf.function``s, per setting."""
    settings = dict(options)
    forward = tf.function(
        lambda *arrays: op.forward(*arrays, **settings), autograph=False, jit_compile=True
    )
    vjp = tf.function(
        lambda residuals, cotangent: op.vjp(residuals, cotangent, **settings),
        autograph=False,
        jit_compile=True,
    )
    output = tf.function(
        lambda *arrays: op.forward(*arrays, **settings)[0], autograph=False, jit_compile=True
    )
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
