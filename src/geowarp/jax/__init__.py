"""JAX support: ``jax.custom_vjp`` wiring, and transforms registered as pytrees.

Nothing to call from here: pass JAX arrays to geowarp and gradients flow; pass
transforms to ``jax.jit``/``jax.grad``/``jax.vmap`` like any pytree.
"""

from ._pytree import register_transforms

__all__ = ["register_transforms"]
