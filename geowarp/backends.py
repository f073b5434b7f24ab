"""Backends: what geowarp needs from an array library beyond the array API standard.

A `Backend` describes one library by name ("torch", "jax", "tensorflow", or
yours): how core ops join its autodiff, optional native sampler kernels and a
whole-warp fast path, and hooks run when its first array arrives or a new
transform family is defined. The core looks backends up here by library name
and never imports a framework folder: geowarp's own three are found through
the ``geowarp.backends`` entry point group (``pyproject.toml``) and loaded the
first time an array of their library arrives; numpy's, built into the core
(``geowarp._numpy_backend``), the first time it is asked for; anyone can
`register` another, or replace one.

A library that array-api-compat does not know brings its own namespace
(``namespace``) and says which arrays are its own (``owns``); such a backend
is asked before array-api-compat, so it may also claim a subclass of arrays
array-api-compat knows (a wrapped numpy array, say).

Examples
--------
numpy's built-in backend with its bilinear kernel replaced by one that counts
its calls and defers to the portable code, and without its whole-warp fast
path, so that warps sample through that kernel (``tests/test_backends.py``
registers a whole toy library).

>>> import dataclasses
>>> import numpy as np
>>> import geowarp as gw
>>> from geowarp import backends
>>> from geowarp.samplers import BILINEAR
>>> calls = []
>>> def bilinear(image, grid, fill, *, padding, align_corners):
...     calls.append(image.shape)
...     return BILINEAR.forward(image, grid, fill, padding=padding,
...                             align_corners=align_corners)[0]
>>> built_in = backends.get("numpy")
>>> counting = dataclasses.replace(built_in, samplers={"bilinear_sample": bilinear}, warp=None)
>>> backends.register(counting)
>>> gw.warp(np.ones((1, 1, 4, 4)), gw.Affine(np.eye(2, 3))).shape, calls
((1, 1, 4, 4), [(1, 1, 4, 4)])
>>> backends.unregister("numpy")  # the built-in one is back on the next use
>>> backends.get("numpy") is built_in
True
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

__all__ = [
    "ENTRY_POINT_GROUP",
    "Backend",
    "Kernel",
    "WarpFastPath",
    "get",
    "loaded",
    "notify_family",
    "op",
    "register",
    "unregister",
]

ENTRY_POINT_GROUP = "geowarp.backends"
"""Entry point group naming `Backend` objects; the entry point's name is the library's."""

Kernel = Callable[..., Any]
"""``kernel(image, grid, fill, *, padding, align_corners) -> out``: a sampler with the
signature of the core op it replaces (`geowarp.samplers.BILINEAR`, ...), differentiable
in the library's own autodiff, pinned by a parity test to the portable code."""

WarpFastPath = Callable[..., Any]
"""``warp(image, transform, out_shape, **settings) -> out or None``: a whole warp done
natively, or None to decline (the core then warps by grid and sampler)."""


@dataclass(frozen=True)
class Backend:
    """One array library's wiring into geowarp.

    Parameters
    ----------
    name : str
        The library's name: the top-level module of its arrays ("torch"), or
        what `geowarp.autodiff` and error messages call it.
    autodiff : callable, optional
        ``autodiff(op, arrays, options) -> out``: run a `geowarp.autodiff.Op`
        so that the library's autodiff differentiates it (through
        ``op.vjp``). Without it, ops run their plain forward.
    samplers : mapping of str to callable, optional
        Native sampler kernels by core op name (``"bilinear_sample"``,
        ``"nearest_sample"``); see `Kernel`. `geowarp.sample` uses them unless
        ``native=False``.
    warp : callable, optional
        A whole-warp fast path; see `WarpFastPath`.
    ops : mapping of str to callable, optional
        Native versions of the core's array helpers, by name, for what the
        array API standard lacks or does slowly (see `op`):
        ``scatter_add_rows(values, indices, num_rows)`` (sum rows at indices,
        duplicates accumulating), ``matmul_shared(left, right,
        transpose_left)`` (one matrix times a batch), ``content_key(array)``
        (a hashable key of an array's contents, or None) and
        ``padded_channels_last(image, fill)`` (the samplers' padded copy),
        ``solve(a, b)`` (a batched linear solve that never raises),
        ``device(array)`` (the array's device, where array-api-compat's
        lookup would do more work),
        ``known_values(array)`` (the values as a numpy array, or None while
        tracing) and ``compile(function)`` (``function``, a pure function of
        arrays (and tuples, lists or None of them) returning such, compiled:
        called again with arrays of the same shapes and dtypes, it reruns
        the compiled program; `geowarp.register` compiles each pyramid
        level's step with it). Without one the core's portable version runs
        (for ``compile``: the function, op by op).
    on_first_use : callable, optional
        ``on_first_use()``, run once, when the first array of the library
        reaches geowarp (or on `register` if the library is already in use).
    on_new_family : callable, optional
        ``on_new_family(cls)``, run for every `geowarp.Transform` subclass:
        those defined before the backend is registered, then each one as it
        is defined (JAX registers each family as a pytree this way).
    owns : callable, optional
        ``owns(array) -> bool`` for arrays that array-api-compat does not know
        (or that this backend claims from a library it knows).
    namespace : module, optional
        The array-API namespace of the arrays ``owns`` accepts.
    read : callable, optional
        ``read(array) -> array``, applied to every array geowarp takes from
        the user before it looks at it (TensorFlow reads a ``tf.Variable``'s
        value, so a gradient tape sees the read).

    Examples
    --------
    >>> from geowarp.backends import Backend
    >>> Backend("mylib").name
    'mylib'
    """

    name: str
    autodiff: Callable[..., Any] | None = None
    samplers: Mapping[str, Kernel] = field(default_factory=dict)
    warp: WarpFastPath | None = None
    ops: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    on_first_use: Callable[[], None] | None = None
    on_new_family: Callable[[type], None] | None = None
    owns: Callable[[Any], bool] | None = None
    namespace: Any = None
    read: Callable[[Any], Any] | None = None


_LOCK = threading.RLock()
_BACKENDS: dict[str, Backend] = {}
_USED: set[str] = set()
_ENTRY_POINTS: dict[str, metadata.EntryPoint] | None = None
# names whose entry point is being loaded: its module registers the backend itself
_LOADING: set[str] = set()
_LISTENERS: list[Callable[[], None]] = []


def on_change(listener: Callable[[], None]) -> None:
    """Call ``listener()`` whenever a backend is registered or unregistered (internal)."""
    _LISTENERS.append(listener)


def _changed() -> None:
    for listener in _LISTENERS:
        listener()


def register(backend: Backend) -> None:
    """Make ``backend`` the one geowarp uses for arrays of ``backend.name``.

    Runs its ``on_new_family`` hook for every transform family defined so far.

    Examples
    --------
    >>> from geowarp import backends
    >>> backends.register(backends.Backend("mylib"))
    >>> backends.get("mylib").name
    'mylib'
    >>> backends.unregister("mylib")
    """
    if not isinstance(backend, Backend):
        raise TypeError(f"backend must be a geowarp.backends.Backend; got {type(backend).__name__}")
    with _LOCK:
        _BACKENDS[backend.name] = backend
        _changed()
        if backend.on_new_family is not None:
            for cls in _families():
                backend.on_new_family(cls)
        if backend.name in _USED and backend.on_first_use is not None:
            backend.on_first_use()


def unregister(name: str) -> None:
    """Forget the backend of library ``name`` (nothing happens if there is none).

    Examples
    --------
    >>> from geowarp import backends
    >>> backends.unregister("no such library")
    """
    with _LOCK:
        _BACKENDS.pop(name, None)
        _USED.discard(name)
        _changed()


def get(name: str) -> Backend | None:
    """The backend of library ``name``, loading its entry point on first use; or None.

    Examples
    --------
    >>> from geowarp import backends
    >>> backends.get("numpy").name  # built in: the core's numpy kernels
    'numpy'
    >>> backends.get("no such library") is None
    True
    """
    backend = _BACKENDS.get(name)
    if backend is not None or name in _LOADING:
        return backend
    entry = _entry_points().get(name)
    if entry is None:
        return None
    with _LOCK:
        if name not in _BACKENDS:
            _LOADING.add(name)
            try:
                loaded_backend = entry.load()
            finally:
                _LOADING.discard(name)
            if name not in _BACKENDS:  # the module did not register itself
                register(loaded_backend)
    return _BACKENDS.get(name)


def op(library: str, name: str) -> Callable[..., Any] | None:
    """Library ``library``'s native version of the core helper ``name``, or None.

    See `Backend`'s ``ops`` for the helpers and their signatures.

    Examples
    --------
    >>> from geowarp import backends
    >>> backends.op("numpy", "scatter_add_rows") is not None  # numpy's bincount
    True
    >>> backends.op("numpy", "compile") is None  # numpy runs op by op
    True
    """
    backend = get(library)
    return None if backend is None else backend.ops.get(name)


def use(name: str) -> Backend | None:
    """`get`, and the backend's ``on_first_use`` hook the first time (internal)."""
    backend = get(name)
    if name not in _USED:
        with _LOCK:
            if name not in _USED:
                _USED.add(name)
                if backend is not None and backend.on_first_use is not None:
                    backend.on_first_use()
    return backend


def loaded() -> tuple[str, ...]:
    """The names of the backends registered or loaded so far.

    Examples
    --------
    >>> from geowarp import backends
    >>> isinstance(backends.loaded(), tuple)
    True
    """
    return tuple(_BACKENDS)


def owner(arrays: list[Any]) -> Backend | None:
    """The backend whose ``owns`` claims any of ``arrays`` (internal).

    Entry-point backends of libraries already imported are loaded first, so a
    library's arrays are recognised without geowarp importing it.
    """
    for backend in list(_BACKENDS.values()):
        if backend.owns is not None and any(backend.owns(a) for a in arrays):
            return backend
    pending = [n for n in _entry_points() if n not in _BACKENDS and n in sys.modules]
    if not pending:
        return None
    for name in pending:
        get(name)
    return owner(arrays)


def notify_family(cls: type) -> None:
    """Run every loaded backend's ``on_new_family`` hook for ``cls`` (internal)."""
    for backend in list(_BACKENDS.values()):
        if backend.on_new_family is not None:
            backend.on_new_family(cls)


def _families() -> list[type]:
    from .transforms import Transform

    # every subclass, abstract ones included: __init_subclass__ cannot tell yet which
    # are abstract, and registering an abstract class (as a pytree node) is harmless
    found: list[type] = []
    pending: list[type] = list(Transform.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        found.append(cls)
    return found


#: Backends that ship in the core and need no installed entry point.
_BUILT_IN = {"numpy": "geowarp._numpy_backend:BACKEND"}


def _entry_points() -> dict[str, metadata.EntryPoint]:
    global _ENTRY_POINTS
    if _ENTRY_POINTS is None:
        found = metadata.entry_points(group=ENTRY_POINT_GROUP)
        entries = {entry.name: entry for entry in found}
        for name, value in _BUILT_IN.items():
            entries.setdefault(name, metadata.EntryPoint(name, value, ENTRY_POINT_GROUP))
        _ENTRY_POINTS = entries
    return _ENTRY_POINTS
