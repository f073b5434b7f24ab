"""Transforms as JAX pytrees: pass them through ``jax.jit``, ``jax.grad`` and ``jax.vmap``.

Each family is registered with its arrays as leaves and everything else (the
family, a regularization weight, the nesting of a `geowarp.Composed`) as the
static part, through `geowarp.Transform.flatten`. Every family defined
before the JAX backend loads (the first time geowarp sees a JAX array, or on
``import geowarp.jax``) is registered then; every family defined later, as
soon as its class statement runs.

Examples
--------
>>> import jax, jax.numpy as jnp
>>> import geowarp as gw
>>> image = jnp.arange(16.0).reshape(1, 1, 4, 4)
>>> shift = gw.Affine(jnp.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.0]]))
>>> grad = jax.grad(lambda t: jnp.sum(gw.warp(image, t)))(shift)
>>> type(grad).__name__, grad.matrix.shape
('Affine', (2, 3))
"""

from __future__ import annotations

import threading
from typing import Any

import jax

from ..transforms import Transform

__all__ = ["register_family"]

_REGISTERED: set[type] = set()
_LOCK = threading.Lock()


def register_family(cls: type) -> None:
    """Register the transform family ``cls`` as a JAX pytree node (once)."""
    with _LOCK:
        if cls in _REGISTERED:
            return
        jax.tree_util.register_pytree_node(cls, _flatten, _unflatten)
        _REGISTERED.add(cls)


def _flatten(transform: Transform) -> tuple[list[Any], tuple[Any, ...]]:
    return transform.flatten()


def _unflatten(structure: tuple[Any, ...], leaves: Any) -> Transform:
    return Transform.unflatten(structure, list(leaves))
