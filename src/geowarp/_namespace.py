"""Which array library a call works in.

array-api-compat recognises numpy, array-api-strict, PyTorch and JAX arrays by
looking at ``sys.modules``, so nothing heavy is imported until the user passes
such an array. TensorFlow tensors are recognised the same way and get
geowarp's own namespace, `geowarp._compat.tensorflow`.
"""

from __future__ import annotations

import sys
from typing import Any

import array_api_compat

from ._errors import GeowarpTypeError

__all__ = ["array_namespace", "backend_name", "device", "read_variable"]


def array_namespace(*arrays: Any) -> Any:
    """Return the array-API namespace shared by ``arrays`` (``None`` entries are ignored).

    Raises `GeowarpTypeError` when the arrays come from different libraries or
    from a library geowarp does not know.
    """
    present = [a for a in arrays if a is not None and not isinstance(a, int | float)]
    # Every call of geowarp asks this several times; the answer depends only on
    # the arrays' types, so it is looked up once per combination of types.
    key = tuple(dict.fromkeys(type(a) for a in present))
    xp = _NAMESPACES.get(key)
    if xp is None:
        xp = _NAMESPACES[key] = _resolve(present)
    return xp


_NAMESPACES: dict[tuple[type, ...], Any] = {}


def _resolve(present: list[Any]) -> Any:
    if _tensorflow_arrays(present):
        from ._compat import tensorflow as tf_namespace

        return tf_namespace
    try:
        xp = array_api_compat.array_namespace(*present)
    except TypeError as error:
        kinds = sorted({type(a).__module__ + "." + type(a).__qualname__ for a in present})
        raise GeowarpTypeError(
            "expected arrays from one supported library (numpy, array_api_strict, torch, jax, "
            f"tensorflow); got {', '.join(kinds)}: {error}"
        ) from None
    if array_api_compat.is_jax_namespace(xp):  # JAX is loaded: transforms become pytrees
        from .jax import register_transforms

        register_transforms()
    return xp


def _tensorflow_arrays(present: list[Any]) -> bool:
    """Whether ``present`` are TensorFlow tensors; never imports TensorFlow."""
    tf = sys.modules.get("tensorflow")
    if tf is None or not any(isinstance(a, tf.Tensor | tf.Variable) for a in present):
        return False
    if not all(isinstance(a, tf.Tensor | tf.Variable) for a in present):
        kinds = sorted({type(a).__module__ + "." + type(a).__qualname__ for a in present})
        raise GeowarpTypeError(
            f"expected arrays from one supported library; got TensorFlow tensors mixed with "
            f"{', '.join(kinds)}"
        )
    return True


def backend_name(xp: Any) -> str:
    """Short name of the library behind ``xp``: 'numpy', 'torch', 'jax', 'tensorflow', ...

    The others: 'array_api_strict', or the namespace's module name.
    """
    if getattr(xp, "__name__", None) == "geowarp._compat.tensorflow":
        return "tensorflow"
    if array_api_compat.is_torch_namespace(xp):
        return "torch"
    if array_api_compat.is_jax_namespace(xp):
        return "jax"
    if array_api_compat.is_numpy_namespace(xp):
        return "numpy"
    if array_api_compat.is_array_api_strict_namespace(xp):
        return "array_api_strict"
    return getattr(xp, "__name__", "unknown")


def device(array: Any) -> Any:
    """The device of ``array``, also for traced JAX values (which lack ``.device``)."""
    tf = sys.modules.get("tensorflow")
    if tf is not None and isinstance(array, tf.Tensor | tf.Variable):
        from ._compat import tensorflow as tf_namespace

        return tf_namespace.device(array)
    return array_api_compat.device(array)


def read_variable(array: Any) -> Any:
    """A TensorFlow variable's current value as a tensor; any other input unchanged.

    The read is recorded by an active ``tf.GradientTape``, so gradients reach
    the variable; geowarp's objects keep the value, as they keep any array.
    """
    tf = sys.modules.get("tensorflow")
    if tf is not None and isinstance(array, tf.Variable):
        return tf.convert_to_tensor(array)
    return array
