"""JAX support: ``jax.custom_vjp`` wiring, and transforms registered as pytrees.

Nothing to call from here: pass JAX arrays to geowarp and gradients flow; pass
transforms to ``jax.jit``/``jax.grad``/``jax.vmap`` like any pytree. Importing
this package registers the backend at once (geowarp otherwise loads it the
first time it sees a JAX array).
"""

from .. import backends
from ._backend import BACKEND

backends.register(BACKEND)

__all__: list[str] = []
