"""Transforms as JAX pytrees: pass them through ``jax.jit``, ``jax.grad`` and ``jax.vmap``.

Each family is registered with its arrays as leaves and everything else (the
family, a regularization weight, the nesting of a `geowarp.Composed`) as the
static part, through `geowarp.transforms._base.flatten`. geowarp registers
them the first time it sees a JAX array (or on ``import geowarp.jax``).

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

from typing import Any

import jax

from ..transforms import Transform
from ..transforms._base import flatten, unflatten

__all__ = ["register_transforms"]

_REGISTERED: set[type] = set()


def register_transforms() -> None:
    """Register every transform family defined so far (each once) as a JAX pytree node."""
    pending: list[type] = [Transform]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls not in _REGISTERED and not getattr(cls, "__abstractmethods__", None):
            jax.tree_util.register_pytree_node(cls, _flatten, _unflatten)
            _REGISTERED.add(cls)


def _flatten(transform: Transform) -> tuple[list[Any], tuple[Any, ...]]:
    return flatten(transform)


def _unflatten(structure: tuple[Any, ...], leaves: Any) -> Transform:
    return unflatten(structure, list(leaves))


register_transforms()
