"""Wire core ops into TensorFlow autodiff with ``tf.custom_gradient``: wiring only, no maths.

The samplers take TensorFlow's own kernels (`geowarp.tensorflow._native`),
which follow the portable code value for value and gradient for gradient;
every other op runs the core's forward and VJP.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from ..autodiff import Op
from ._native import KERNELS


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
    kernel = KERNELS.get(op.name)
    if kernel is not None:
        return kernel(*tensors, **options)
    return _differentiable(op, options)(*tensors)


def _differentiable(op: Op, options: dict[str, Any]) -> Any:
    @tf.custom_gradient
    def apply(*arrays: tf.Tensor) -> Any:
        out, residuals = op.forward(*arrays, **options)

        def gradient(cotangent: tf.Tensor) -> list[Any]:
            return list(op.vjp(residuals, cotangent, **options))

        return out, gradient

    return apply
