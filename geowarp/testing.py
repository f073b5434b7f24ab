"""The contract every transform family keeps, as a check anyone can run.

`check_transform` puts a family through every property geowarp relies on, on
every installed array library: the apply/inverse round trip (where it is
invertible), the composition law, `~geowarp.Transform.sampling_grid` equal to
``apply`` at the pixel centres, batch broadcasting, dtype and device kept, a
warp that agrees across libraries, gradients (of ``apply`` and of the
sampling grid, w.r.t. every array of the transform) against central finite
differences in float64, and the `~geowarp.Transform.flatten` round trip
through ``jax.jit`` and ``tf.function``. geowarp's own families pass it on
every backend; call it from your own test suite for yours.

A family is described by a *factory*: ``factory(asarray, batch_shape, rng)``
returns a transform with batch shape ``batch_shape`` whose arrays are made
with ``asarray(values)`` from numpy ``values`` (``asarray`` gives them the
library and dtype under test; ``rng`` is a ``numpy.random.Generator``). A
factory should give a transform near the identity, so that points in
[-0.8, 0.8]^2 stay well inside its domain.

Examples
--------
>>> import numpy as np
>>> import geowarp as gw
>>> from geowarp.testing import check_transform
>>> def shears(asarray, batch_shape, rng):
...     matrix = np.eye(2, 3) + 0.1 * rng.normal(size=(*batch_shape, 2, 3))
...     return gw.Affine(asarray(matrix))
>>> report = check_transform(shears, backends=["numpy"])
>>> sorted(report["numpy"])[:4]
['batch_broadcasting', 'composition', 'dtype_and_device', 'flatten_round_trip']
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._errors import NotInvertibleError
from .grid import pixel_to_normalized
from .transforms import Affine, Transform
from .warp import warp

__all__ = ["BACKENDS", "Factory", "Library", "check_transform", "installed_backends", "library"]

Factory = Callable[[Callable[[Any], Any], tuple[int, ...], np.random.Generator], Transform]
"""``factory(asarray, batch_shape, rng) -> Transform``; see the module docstring."""

BACKENDS = ("numpy", "array_api_strict", "torch", "jax", "tensorflow")
"""The libraries `check_transform` knows how to test."""

_MODULES = {"array_api_strict": "array_api_strict", "numpy": "numpy"}


@dataclass(frozen=True)
class Library:
    """One array library as the checks see it: arrays from numpy and back.

    Parameters
    ----------
    name : str
        One of `BACKENDS`.
    """

    name: str

    def asarray(self, values: Any, dtype: str = "float64") -> Any:
        """``values`` as an array of this library, in ``dtype`` ("float32" or "float64")."""
        array = np.asarray(values, dtype=dtype)
        module = importlib.import_module(_MODULES.get(self.name, self.name))
        if self.name == "torch":
            return module.asarray(array)
        if self.name == "tensorflow":
            return module.constant(array)
        if self.name == "jax":
            return importlib.import_module("jax.numpy").asarray(array)
        if self.name == "array_api_strict":
            return module.asarray(array, dtype=getattr(module, dtype))
        return array

    def to_numpy(self, array: Any) -> np.ndarray:
        """``array`` (of this library) as a numpy array."""
        if self.name == "torch":
            return np.asarray(array.detach().cpu().numpy())
        if self.name == "array_api_strict":
            return np.asarray(np.from_dlpack(array))
        if self.name == "tensorflow":
            return np.asarray(array.numpy())
        return np.asarray(array)


def library(name: str) -> Library:
    """The `Library` called ``name``, with 64-bit floats switched on for JAX.

    Examples
    --------
    >>> from geowarp.testing import library
    >>> library("numpy").asarray([1.0, 2.0]).dtype
    dtype('float64')
    """
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}; got {name!r}")
    if name == "jax":
        importlib.import_module("jax").config.update("jax_enable_x64", True)
    return Library(name)


def installed_backends() -> tuple[str, ...]:
    """The names in `BACKENDS` whose library is installed.

    Examples
    --------
    >>> from geowarp.testing import installed_backends
    >>> "numpy" in installed_backends()
    True
    """
    return tuple(
        name for name in BACKENDS if importlib.util.find_spec(_MODULES.get(name, name)) is not None
    )


def check_transform(
    factory: Factory,
    *,
    backends: Iterable[str] | None = None,
    invertible: bool | None = None,
    gradients: bool = True,
    seed: int = 0,
    atol: float = 1e-9,
) -> dict[str, list[str]]:
    """Check the transform family that ``factory`` builds against geowarp's contract.

    Parameters
    ----------
    factory : callable
        ``factory(asarray, batch_shape, rng) -> Transform``; see the module docstring.
    backends : iterable of str, optional
        Where to check; every installed one of `BACKENDS` by default.
    invertible : bool, optional
        Whether ``inverse()`` must exist; by default a family whose
        ``inverse`` raises `geowarp.NotInvertibleError` is taken as not
        invertible (and then must raise it).
    gradients : bool
        Check gradients on the libraries with autodiff (torch, JAX,
        TensorFlow) against finite differences.
    seed : int
        Seed of the ``rng`` passed to ``factory``.
    atol : float
        Absolute tolerance of the float64 comparisons.

    Returns
    -------
    dict of str to list of str
        For each backend, the names of the properties checked.

    Raises
    ------
    AssertionError
        Naming the backend and the property that failed.
    """
    report: dict[str, list[str]] = {}
    for name in installed_backends() if backends is None else tuple(backends):
        lib = library(name)
        report[name] = []
        for check in _CHECKS:
            if check is _check_gradients and (not gradients or name not in _AUTODIFF):
                continue
            try:
                check(factory, lib, np.random.default_rng(seed), atol, invertible)
            except AssertionError as error:
                raise AssertionError(f"[{name}] {check.__name__[7:]}: {error}") from error
            report[name].append(check.__name__[7:])
    return report


# --- the properties ---------------------------------------------------------------------


def _points(rng: np.random.Generator, shape: Sequence[int] = (7, 2)) -> np.ndarray:
    return rng.uniform(-0.8, 0.8, size=tuple(shape))


def _close(actual: Any, expected: Any, atol: float, what: str) -> None:
    np.testing.assert_allclose(actual, expected, rtol=1e-7, atol=atol, err_msg=what)


def _build(factory: Factory, lib: Library, batch: tuple[int, ...], rng: Any, dtype: str) -> Any:
    transform = factory(lambda values: lib.asarray(values, dtype), batch, rng)
    assert isinstance(transform, Transform), f"factory returned {type(transform).__name__}"
    return transform


def _check_batch_broadcasting(factory, lib, rng, atol, invertible):
    transform = _build(factory, lib, (3,), rng, "float64")
    assert tuple(transform.batch_shape) == (3,), f"batch_shape {transform.batch_shape} != (3,)"
    points = _points(rng)
    shared = lib.to_numpy(transform.apply(lib.asarray(points)))
    assert shared.shape == (3, 7, 2), f"apply gave shape {shared.shape} for shared points"
    per_item = lib.to_numpy(transform.apply(lib.asarray(np.stack([points] * 3))))
    _close(shared, per_item, atol, "shared points differ from per-item points")
    single = _build(factory, lib, (), rng, "float64")
    assert tuple(single.batch_shape) == (), f"batch_shape {single.batch_shape} != ()"
    assert lib.to_numpy(single.apply(lib.asarray(points))).shape == (7, 2)


def _check_inverse(factory, lib, rng, atol, invertible):
    transform = _build(factory, lib, (), rng, "float64")
    try:
        inverse = transform.inverse()
    except NotInvertibleError:
        assert not invertible, "inverse() raised NotInvertibleError"
        return
    assert invertible is not False, "inverse() returned instead of raising NotInvertibleError"
    points = lib.asarray(_points(rng))
    for there, back in ((transform, inverse), (inverse, transform)):
        _close(
            lib.to_numpy(back.apply(there.apply(points))),
            lib.to_numpy(points),
            1e3 * atol,
            "inverse does not undo the transform",
        )


def _check_composition(factory, lib, rng, atol, invertible):
    transform = _build(factory, lib, (), rng, "float64")
    other = Affine(lib.asarray(np.eye(2, 3) + 0.1 * rng.normal(size=(2, 3))))
    points = lib.asarray(_points(rng))
    for first, second in ((transform, other), (other, transform), (transform, transform)):
        _close(
            lib.to_numpy((first @ second).apply(points)),
            lib.to_numpy(first.apply(second.apply(points))),
            atol,
            f"({type(first).__name__} @ {type(second).__name__}).apply differs",
        )


def _check_sampling_grid(factory, lib, rng, atol, invertible):
    transform = _build(factory, lib, (2,), rng, "float64")
    height, width = 3, 5
    rows, columns = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    centres = np.stack([columns, rows], axis=-1).reshape(-1, 2).astype(float)
    for align_corners in (False, True):
        normalized = pixel_to_normalized(centres, (height, width), align_corners=align_corners)
        expected = lib.to_numpy(transform.apply(lib.asarray(normalized)))
        grid = lib.to_numpy(transform.sampling_grid((height, width), align_corners=align_corners))
        assert grid.shape == (2, height, width, 2), f"grid shape {grid.shape}"
        _close(grid.reshape(2, -1, 2), expected, atol, f"align_corners={align_corners}")


def _check_dtype_and_device(factory, lib, rng, atol, invertible):
    for dtype in ("float32", "float64"):
        transform = _build(factory, lib, (), rng, dtype)
        reference = lib.asarray(np.zeros(1), dtype)
        assert transform.dtype == reference.dtype, f"dtype {transform.dtype} for {dtype} arrays"
        outputs = {
            "apply": transform.apply(lib.asarray(_points(rng), dtype)),
            "sampling_grid": transform.sampling_grid((2, 3)),
        }
        for what, array in outputs.items():
            assert array.dtype == reference.dtype, f"{what} gave {array.dtype} for {dtype}"
            assert _device(array) == _device(reference), f"{what} left the device"
        assert repr(transform).startswith(type(transform).__name__)


def _device(array: Any) -> Any:
    from ._namespace import device

    return device(array)


def _check_warp(factory, lib, rng, atol, invertible):
    state = rng.bit_generator.state
    image = rng.random((2, 2, 5, 6))
    transform = _build(factory, lib, (2,), rng, "float64")
    rng.bit_generator.state = state
    rng.random((2, 2, 5, 6))
    reference = _build(factory, Library("numpy"), (2,), rng, "float64")
    out = lib.to_numpy(warp(lib.asarray(image), transform, (4, 3)))
    expected = warp(image, reference, (4, 3))
    _close(out, expected, 1e3 * atol, "warp differs from numpy's")


def _check_flatten_round_trip(factory, lib, rng, atol, invertible):
    transform = _build(factory, lib, (2,), rng, "float64")
    leaves, structure = transform.flatten()
    assert leaves, "flatten found no arrays in the transform's fields"
    assert hash(structure) == hash(transform.flatten()[1]), "structure is not stable"
    points = lib.asarray(_points(rng))
    expected = lib.to_numpy(transform.apply(points))
    rebuilt = Transform.unflatten(structure, leaves)
    assert type(rebuilt) is type(transform)
    _close(lib.to_numpy(rebuilt.apply(points)), expected, 0.0, "unflatten(flatten(t)) differs")
    compiled = _COMPILED.get(lib.name)
    if compiled is not None:
        _close(lib.to_numpy(compiled(transform, points)), expected, atol, "compiled apply")


def _jax_jit(transform: Transform, points: Any) -> Any:
    jax = importlib.import_module("jax")
    return jax.jit(lambda t, p: t.apply(p))(transform, points)  # a pytree argument


def _tf_function(transform: Transform, points: Any) -> Any:
    tf = importlib.import_module("tensorflow")
    leaves, structure = transform.flatten()

    def run(points: Any, *leaves: Any) -> Any:
        return Transform.unflatten(structure, leaves).apply(points)

    return tf.function(run, autograph=False)(points, *leaves)


_COMPILED: dict[str, Callable[[Transform, Any], Any]] = {
    "jax": _jax_jit,
    "tensorflow": _tf_function,
}


def _check_gradients(factory, lib, rng, atol, invertible):
    transform = _build(factory, lib, (2,), rng, "float64")
    leaves, structure = transform.flatten()
    points = _points(rng)
    out_shape = (3, 4)
    weights_apply = rng.normal(size=(2, 7, 2))
    weights_grid = rng.normal(size=(2, *out_shape, 2))
    numpy_leaves = [lib.to_numpy(leaf) for leaf in leaves]
    constant = _constant_leaves(structure)

    def loss(values: list[np.ndarray]) -> float:
        rebuilt = Transform.unflatten(structure, values)
        mapped = rebuilt.apply(points)
        grid = rebuilt.sampling_grid(out_shape)
        return float(np.sum(weights_apply * mapped) + np.sum(weights_grid * grid))

    analytic = _AUTODIFF[lib.name](lib, structure, leaves, points, weights_apply, weights_grid)
    step = 1e-6
    for index, value in enumerate(numpy_leaves):
        if constant[index]:
            continue
        numeric = np.zeros_like(value)
        for position in np.ndindex(value.shape):
            plus = [v.copy() for v in numpy_leaves]
            minus = [v.copy() for v in numpy_leaves]
            plus[index][position] += step
            minus[index][position] -= step
            numeric[position] = (loss(plus) - loss(minus)) / (2 * step)
        got = lib.to_numpy(analytic[index]) if analytic[index] is not None else np.zeros_like(value)
        np.testing.assert_allclose(
            got, numeric, rtol=1e-5, atol=1e-6, err_msg=f"gradient w.r.t. array {index}"
        )


def _constant_leaves(structure: tuple[Any, ...]) -> list[bool]:
    """For each leaf of ``structure``, whether its field is in its family's ``constant_fields``."""
    cls, fields = structure
    flags: list[bool] = []
    for name, kind, content in fields:
        if kind == "array":
            flags.append(name in getattr(cls, "constant_fields", ()))
        elif kind == "transform":
            flags.extend(_constant_leaves(content))
        elif kind == "transforms":
            for part in content:
                flags.extend(_constant_leaves(part))
    return flags


def _torch_gradients(lib, structure, leaves, points, weights_apply, weights_grid):
    torch = importlib.import_module("torch")
    variables = [leaf.detach().clone().requires_grad_() for leaf in leaves]
    rebuilt = Transform.unflatten(structure, variables)
    loss = (torch.as_tensor(weights_apply) * rebuilt.apply(torch.as_tensor(points))).sum() + (
        torch.as_tensor(weights_grid) * rebuilt.sampling_grid(weights_grid.shape[1:3])
    ).sum()
    return torch.autograd.grad(loss, variables, allow_unused=True)


def _jax_gradients(lib, structure, leaves, points, weights_apply, weights_grid):
    jax = importlib.import_module("jax")
    jnp = importlib.import_module("jax.numpy")

    def loss(values: list[Any]) -> Any:
        rebuilt = Transform.unflatten(structure, values)
        return jnp.sum(weights_apply * rebuilt.apply(jnp.asarray(points))) + jnp.sum(
            weights_grid * rebuilt.sampling_grid(weights_grid.shape[1:3])
        )

    return jax.grad(loss)(list(leaves))


def _tf_gradients(lib, structure, leaves, points, weights_apply, weights_grid):
    tf = importlib.import_module("tensorflow")
    with tf.GradientTape() as tape:
        for leaf in leaves:
            tape.watch(leaf)
        rebuilt = Transform.unflatten(structure, leaves)
        loss = tf.reduce_sum(weights_apply * rebuilt.apply(tf.constant(points))) + tf.reduce_sum(
            weights_grid * rebuilt.sampling_grid(weights_grid.shape[1:3])
        )
    return tape.gradient(loss, list(leaves))


_AUTODIFF: dict[str, Callable[..., Any]] = {
    "torch": _torch_gradients,
    "jax": _jax_gradients,
    "tensorflow": _tf_gradients,
}

_CHECKS = (
    _check_batch_broadcasting,
    _check_composition,
    _check_dtype_and_device,
    _check_flatten_round_trip,
    _check_gradients,
    _check_inverse,
    _check_sampling_grid,
    _check_warp,
)
