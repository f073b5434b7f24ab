"""Backends the tests run on, as a fixture.

``GEOWARP_TEST_BACKENDS=numpy,torch`` narrows the list. A backend that is not
installed is skipped locally and an error where ``GEOWARP_REQUIRE_BACKENDS`` is
set (as CI does), so CI never passes by skipping.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

ALL_BACKENDS = ("numpy", "array_api_strict", "torch", "jax", "tensorflow")


def _selected() -> tuple[str, ...]:
    wanted = os.environ.get("GEOWARP_TEST_BACKENDS")
    if not wanted:
        return ALL_BACKENDS
    names = tuple(name.strip() for name in wanted.split(",") if name.strip())
    unknown = set(names) - set(ALL_BACKENDS)
    if unknown:
        raise pytest.UsageError(f"unknown GEOWARP_TEST_BACKENDS entries: {sorted(unknown)}")
    return names


@dataclass(frozen=True)
class Backend:
    """One array library under test: its namespace and numpy round trips."""

    name: str
    xp: Any

    def asarray(self, values: Any, dtype: str = "float64") -> Any:
        array = np.asarray(values, dtype=dtype)
        if self.name == "torch":
            import torch

            return torch.asarray(array)
        if self.name == "tensorflow":
            import tensorflow as tf

            return tf.constant(array)
        return self.xp.asarray(array, dtype=getattr(self.xp, dtype))

    def to_numpy(self, array: Any) -> np.ndarray:
        if self.name == "torch":
            return array.detach().cpu().numpy()
        if self.name == "array_api_strict":
            return np.from_dlpack(array)
        if self.name == "tensorflow":
            return array.numpy()
        return np.asarray(array)


def _load(name: str) -> Backend:
    try:
        if name == "jax":
            import jax

            jax.config.update("jax_enable_x64", True)
            import jax.numpy as xp
        elif name == "torch":
            import array_api_compat.torch as xp
        elif name == "tensorflow":
            import tensorflow  # noqa: F401 - before geowarp's namespace, which needs it

            from geowarp.tensorflow import _namespace as xp
        else:
            xp = importlib.import_module(name)
    except ImportError as error:
        if os.environ.get("GEOWARP_REQUIRE_BACKENDS"):
            raise RuntimeError(f"backend {name} is required but not installed: {error}") from error
        pytest.skip(f"{name} is not installed")
    return Backend(name, xp)


@pytest.fixture(params=_selected())
def backend(request: pytest.FixtureRequest) -> Backend:
    """Each selected array library in turn."""
    return _load(request.param)


@pytest.fixture(params=[name for name in _selected() if name != "numpy"])
def framework(request: pytest.FixtureRequest) -> Backend:
    """Each selected array library but numpy (the one whose arrays join the others)."""
    return _load(request.param)


@pytest.fixture(params=[name for name in ("torch", "jax", "tensorflow") if name in _selected()])
def autodiff_backend(request: pytest.FixtureRequest) -> Backend:
    """Each selected library with its own autodiff, where geowarp registers an adapter."""
    return _load(request.param)


@pytest.fixture(params=[n for n in ("numpy", "array_api_strict") if n in _selected()])
def fd_backend(request: pytest.FixtureRequest) -> Backend:
    """The libraries without autodiff, where the explicit VJPs meet finite differences."""
    return _load(request.param)


@pytest.fixture
def torch_backend() -> Backend:
    """PyTorch, for tests that compare against its reference implementations."""
    if "torch" not in _selected():
        pytest.skip("torch backend not selected")
    return _load("torch")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261126)
