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

__all__ = [
    "array_namespace",
    "backend_name",
    "device",
    "join",
    "known_values",
    "prime",
    "read_variable",
]


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
    name = _NAMES.get(id(xp)) or _LIBRARIES.get(id(xp))
    if name is not None:
        return name
    if array_api_compat.is_torch_namespace(xp):
        name = "torch"
    elif array_api_compat.is_jax_namespace(xp):
        name = "jax"
    elif array_api_compat.is_numpy_namespace(xp):
        name = "numpy"
    elif array_api_compat.is_array_api_strict_namespace(xp):
        name = "array_api_strict"
    else:
        name = getattr(xp, "__name__", "unknown")
    _LIBRARIES[id(xp)] = name  # namespaces are modules: they live as long as the process
    return name


_LIBRARIES: dict[int, str] = {}


def device(array: Any) -> Any:
    """The device of ``array``, also for traced JAX values (which lack ``.device``)."""
    # hot: every check asks it; which function answers depends only on the array's type
    kind = type(array)
    answer = _DEVICES.get(kind)
    if answer is None:
        xp = array_namespace(array)
        own = getattr(xp, "device", None) if id(xp) in _NAMES else None
        own = own or backends.op(backend_name(xp), "device")
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


def join(*named: tuple[str, Any]) -> tuple[list[Any], tuple[Any, Any] | None]:
    """The arguments of one call, in one library: numpy and Python sequences join the others.

    ``named`` holds ``(argument name, value)`` pairs. None and Python scalars
    pass through unchanged. numpy arrays and Python sequences join the library
    and device of the call's other arrays (a numpy image with a torch
    transform becomes a torch tensor on the transform's device, its dtype
    kept); with no other arrays, sequences become numpy arrays. Arrays of two
    different libraries raise `GeowarpTypeError` naming both arguments.

    Returns the values, each read as its backend reads inputs (a TensorFlow
    variable's value), and ``(namespace, device)`` of the library they
    joined, or None when nothing had to join (all arrays of one library).

    Examples
    --------
    >>> from geowarp._namespace import join
    >>> (points,), target = join(("points", [[0.5, 1.0]]))
    >>> points.dtype, target
    (dtype('float64'), None)
    """
    values = [read_variable(value) for _, value in named]
    kinds = [_kind(value) for value in values]
    leader = None
    for position, kind in enumerate(kinds):
        if kind in (None, "numpy", "sequence"):
            continue
        if leader is None:
            leader = position
        elif kind != kinds[leader]:
            first, second = named[leader][0], named[position][0]
            raise GeowarpTypeError(
                f"{first} comes from {kinds[leader]} but {second} from {kind}; the arrays "
                "of one call must come from one library (numpy arrays and sequences join "
                f"the other's): convert {second} or {first}"
            )
    if leader is None:
        if "sequence" not in kinds:
            return values, None
        import numpy as np

        pairs = zip(values, kinds, strict=True)
        return [np.asarray(v) if k == "sequence" else v for v, k in pairs], None
    if "numpy" not in kinds and "sequence" not in kinds:
        return values, None
    xp = array_namespace(values[leader])
    place = device(values[leader])
    target = (xp, place)
    return [
        to_library(value, target) if kind in ("numpy", "sequence") else value
        for value, kind in zip(values, kinds, strict=True)
    ], target


def known_values(array: Any) -> Any:
    """``array``'s values as a numpy array when they are known; None while tracing.

    Under ``jax.jit``, ``tf.function`` or ``torch.compile`` an array is a
    stand-in whose values exist only when the program runs: checks that need
    values skip it, and the documented non-finite policy applies instead
    (docs/reliability.md). A backend answers through its ``known_values`` op;
    other libraries through DLPack. Reading an accelerator's array waits for
    it, so callers check small arrays only, and cache what they found.

    Examples
    --------
    >>> import numpy as np
    >>> from geowarp._namespace import known_values
    >>> known_values(np.array([1.0, 2.0]))
    array([1., 2.])
    """
    import numpy as np

    kind = _kind(array)
    if kind in (None, "numpy", "sequence"):
        return np.asarray(array)
    native = backends.op(kind, "known_values")
    if native is not None:
        return native(array)
    try:
        return np.from_dlpack(array)
    except (TypeError, ValueError, RuntimeError, BufferError, AttributeError):
        return None


def to_library(value: Any, target: tuple[Any, Any]) -> Any:
    """``value`` (a numpy array or a sequence) as an array of ``target`` = (namespace, device)."""
    import numpy as np

    xp, place = target
    return xp.asarray(np.asarray(value), device=place)


def _kind(value: Any) -> str | None:
    # "numpy", "sequence", a library's name, or None (no array: None or a Python scalar)
    kind = type(value)
    answer = _KINDS.get(kind, _UNKNOWN)
    if answer is _UNKNOWN:
        if value is None or isinstance(value, bool | int | float | complex):
            answer = None
        elif isinstance(value, list | tuple):
            answer = "sequence"
        else:
            answer = backend_name(array_namespace(value))
        _KINDS[kind] = answer
    return answer


_KINDS: dict[type, Any] = {}


def prime(array: Any) -> None:
    """Answer now, and after every backend change, what geowarp asks of ``array``'s type.

    Compiled code (``torch.compile``) then finds every answer cached: no
    library lookup, entry point scan or import runs while it traces, and it
    traces without graph breaks or warnings. Framework adapters prime their
    tensor type when imported.
    """
    _PRIMED[type(array)] = array
    _answer(array)


def _answer(array: Any) -> None:
    array_namespace(array)
    device(array)
    read_variable(array)
    _kind(array)


_PRIMED: dict[type, Any] = {}


def _forget() -> None:
    # a backend came or went: answers cached by array type may change
    _NAMESPACES.clear()
    _KINDS.clear()
    _READERS.clear()
    _DEVICES.clear()
    for array in _PRIMED.values():
        _answer(array)


backends.on_change(_forget)
