"""The JAX `geowarp.backends.Backend`: ``custom_vjp`` wiring; every family a pytree."""

from __future__ import annotations

from ..backends import Backend
from ._autograd import call
from ._pytree import register_family

BACKEND = Backend("jax", autodiff=call, on_new_family=register_family)
"""Loaded the first time geowarp sees a JAX array, or on ``import geowarp.jax``."""
