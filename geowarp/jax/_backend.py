"""The JAX `geowarp.backends.Backend`: ``custom_vjp`` wiring; every family a pytree."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..backends import Backend
from ._autograd import call
from ._pytree import register_family


def _scatter_add_rows(values: Any, indices: Any, num_rows: int) -> Any:
    # duplicates accumulate in .at[].add
    return jnp.zeros((num_rows, values.shape[1]), dtype=values.dtype).at[indices].add(values)


def _known_values(array: Any) -> Any:
    # a tracer (inside jit, grad or vmap) has no values yet
    return None if isinstance(array, jax.core.Tracer) else np.asarray(array)


BACKEND = Backend(
    "jax",
    autodiff=call,
    # compile: JAX compiles every operation for each new shape it meets, so a
    # registration run op by op compiles hundreds of small programs; jit makes
    # each pyramid level's step one program
    ops={"scatter_add_rows": _scatter_add_rows, "known_values": _known_values, "compile": jax.jit},
    on_new_family=register_family,
)
"""Loaded the first time geowarp sees a JAX array, or on ``import geowarp.jax``."""
