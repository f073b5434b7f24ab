"""Which array library a call works in.

array-api-compat recognises numpy, array-api-strict, PyTorch and JAX arrays by
looking at ``sys.modules``, so nothing heavy is imported until the user passes
such an array.
"""

from __future__ import annotations

from typing import Any

import array_api_compat

from ._errors import GeowarpTypeError

__all__ = ["array_namespace", "backend_name", "device"]


def array_namespace(*arrays: Any) -> Any:
    """Return the array-API namespace shared by ``arrays`` (``None`` entries are ignored).

    Raises `GeowarpTypeError` when the arrays come from different libraries or
    from a library geowarp does not know.
    """
    present = [a for a in arrays if a is not None and not isinstance(a, int | float)]
    try:
        return array_api_compat.array_namespace(*present)
    except TypeError as error:
        kinds = sorted({type(a).__module__ + "." + type(a).__qualname__ for a in present})
        raise GeowarpTypeError(
            f"expected arrays from one supported library (numpy, array_api_strict, torch, jax); "
            f"got {', '.join(kinds)}: {error}"
        ) from None


def backend_name(xp: Any) -> str:
    """Short name of the library behind ``xp``: 'numpy', 'torch', 'jax', 'array_api_strict'."""
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
    return array_api_compat.device(array)
