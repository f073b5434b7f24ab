"""How a core ``(forward, vjp)`` pair becomes a differentiable operation.

Every differentiable step of geowarp is an `Op`: ``forward(*arrays, **options)``
returns ``(out, residuals)`` with ``residuals`` a flat tuple of arrays, and
``vjp(residuals, cotangent, needs=..., **options)`` returns one cotangent per
input array (``None`` for the inputs whose flag in ``needs`` is False, so an
adapter that knows which gradients are wanted skips the others).
`call` runs an op on whatever library the arrays come from: plain forward on
numpy and array-api-strict, and through a registered adapter (PyTorch autograd,
``jax.custom_vjp``) where the library has autodiff, so gradients reach every
input with no extra call from the user.

Adapters are the ``autodiff`` of each library's `geowarp.backends.Backend`,
loaded the first time an array of that library arrives.

Examples
--------
Gradients on plain numpy: run the forward, then the VJP by hand.

>>> import numpy as np
>>> import geowarp as gw
>>> from geowarp.samplers import BILINEAR
>>> image = np.arange(16.0).reshape(1, 1, 4, 4)
>>> grid = np.zeros((1, 1, 1, 2))                 # the image centre
>>> out, residuals = BILINEAR.forward(image, grid, np.zeros(1), padding="zeros",
...                                   align_corners=False)
>>> d_image, d_grid, d_fill = BILINEAR.vjp(residuals, np.ones_like(out),
...                                        padding="zeros", align_corners=False)
>>> float(out[0, 0, 0, 0]), d_grid.tolist()
(7.5, [[[[2.0, 8.0]]]])
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import backends
from ._namespace import array_namespace, backend_name

__all__ = ["Op", "call", "register_adapter"]


@dataclass(frozen=True)
class Op:
    """A differentiable operation: a forward and its vector-Jacobian product.

    Parameters
    ----------
    name : str
        For error messages and framework graph names.
    forward : callable
        ``forward(*arrays, **options) -> (out, residuals)``.
    vjp : callable
        ``vjp(residuals, cotangent, *, needs=(True, ...), **options) -> tuple``
        with one cotangent per input array, ``None`` where ``needs`` is False.

    Examples
    --------
    >>> import numpy as np
    >>> from geowarp.autodiff import Op, call
    >>> def square_vjp(residuals, cotangent, needs=(True,)):
    ...     return (2 * residuals[0] * cotangent,)
    >>> square = Op("square", lambda x: (x * x, (x,)), square_vjp)
    >>> call(square, np.array([3.0]))
    array([9.])
    """

    name: str
    forward: Callable[..., tuple[Any, tuple[Any, ...]]]
    vjp: Callable[..., tuple[Any, ...]]


Adapter = Callable[..., Any]


def register_adapter(library: str, adapter: Adapter) -> None:
    """Route ops on arrays of ``library`` through ``adapter(op, arrays, options)``.

    Shorthand for registering (or updating) the library's
    `geowarp.backends.Backend` with ``autodiff=adapter``.

    Examples
    --------
    >>> from geowarp import backends
    >>> from geowarp.autodiff import register_adapter
    >>> register_adapter("mylib", lambda op, arrays, options: op.forward(*arrays, **options)[0])
    >>> backends.get("mylib").autodiff is not None
    True
    >>> backends.unregister("mylib")
    """
    existing = backends.get(library) or backends.Backend(library)
    backends.register(dataclasses.replace(existing, autodiff=adapter))


def call(op: Op, *arrays: Any, **options: Any) -> Any:
    """Run ``op`` on ``arrays``, differentiably where the arrays' library has autodiff."""
    backend = backends.get(backend_name(array_namespace(*arrays)))
    if backend is None or backend.autodiff is None:
        return op.forward(*arrays, **options)[0]
    return backend.autodiff(op, arrays, options)
