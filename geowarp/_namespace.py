"""Which array library a call works in.

array-api-compat recognises numpy, array-api-strict, PyTorch and JAX arrays by
looking at ``sys.modules``, so nothing heavy is imported until the user passes
such an array. Other libraries (TensorFlow) are recognised by their registered
`geowarp.backends.Backend`, which brings its own namespace.
"""

from __future__ import annotations

from typing import Any

import array_api_compat

from . import backends
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
    owner = backends.owner(present)
    if owner is not None:
        foreign = [a for a in present if not owner.owns(a)]  # type: ignore[misc]
        if foreign:
            kinds = sorted({type(a).__module__ + "." + type(a).__qualname__ for a in foreign})
            raise GeowarpTypeError(
                f"expected arrays from one supported library; got {owner.name} arrays mixed "
                f"with {', '.join(kinds)}"
            )
        xp = owner.namespace
        _NAMES[id(xp)] = owner.name
    else:
        try:
            xp = array_api_compat.array_namespace(*present)
        except TypeError as error:
            kinds = sorted({type(a).__module__ + "." + type(a).__qualname__ for a in present})
            raise GeowarpTypeError(
                "expected arrays from one supported library (numpy, array_api_strict, torch, "
                f"jax, tensorflow, or a registered backend); got {', '.join(kinds)}: {error}"
            ) from None
    backends.use(backend_name(xp))
    return xp


# id(namespace) -> library name, for namespaces that registered backends bring
_NAMES: dict[int, str] = {}


def backend_name(xp: Any) -> str:
    """Short name of the library behind ``xp``: 'numpy', 'torch', 'jax', 'tensorflow', ...

    The others: 'array_api_strict', or the namespace's module name.
    """
    name = _NAMES.get(id(xp))
    if name is not None:
        return name
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
    # hot: every check asks it; which function answers depends only on the array's type
    kind = type(array)
    answer = _DEVICES.get(kind)
    if answer is None:
        xp = array_namespace(array)
        own = getattr(xp, "device", None) if id(xp) in _NAMES else None
        answer = _DEVICES[kind] = own or array_api_compat.device
    return answer(array)


_DEVICES: dict[type, Any] = {}


def read_variable(array: Any) -> Any:
    """``array`` as its backend reads inputs (a TF variable's current value); else unchanged.

    The read is recorded by an active ``tf.GradientTape``, so gradients reach
    the variable; geowarp's objects keep the value, as they keep any array.
    """
    kind = type(array)
    reader = _READERS.get(kind, _UNKNOWN)
    if reader is _UNKNOWN:
        owner = None if array is None or kind in (int, float) else backends.owner([array])
        reader = _READERS[kind] = None if owner is None else owner.read
    return array if reader is None else reader(array)


_UNKNOWN = object()
_READERS: dict[type, Any] = {}


def _forget() -> None:
    # a backend came or went: answers cached by array type may change
    _NAMESPACES.clear()
    _READERS.clear()
    _DEVICES.clear()


backends.on_change(_forget)
