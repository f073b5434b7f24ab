"""Wire core ops into JAX autodiff with ``jax.custom_vjp``: wiring only, no maths."""

from __future__ import annotations

import functools
from typing import Any

import jax

from ..autodiff import Op


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _apply(op: Op, options: tuple[tuple[str, Any], ...], *arrays: jax.Array) -> jax.Array:
    return op.forward(*arrays, **dict(options))[0]


def _apply_fwd(op: Op, options: tuple[tuple[str, Any], ...], *arrays: jax.Array) -> Any:
    return op.forward(*arrays, **dict(options))


def _apply_bwd(
    op: Op, options: tuple[tuple[str, Any], ...], residuals: Any, cotangent: jax.Array
) -> tuple[Any, ...]:
    return tuple(op.vjp(residuals, cotangent, **dict(options)))


_apply.defvjp(_apply_fwd, _apply_bwd)


# Compiled once per op, options and input shapes: eager calls then run one XLA
# program instead of dozens of dispatched ops, and inside a user's jit it inlines.
_compiled = jax.jit(_apply, static_argnums=(0, 1))


def call(op: Op, arrays: tuple[jax.Array, ...], options: dict[str, Any]) -> jax.Array:
    """Run ``op`` differentiably under JAX transformations (grad, jit, vmap of grad)."""
    return _compiled(op, tuple(sorted(options.items())), *arrays)
