"""Collect the doctests of adapter folders (and of geowarp.dask and numba's kernels)
only where their library is installed.

The package is imported here, before any module is collected: under
``--import-mode=importlib`` pytest imports a collected module itself and then
sets it as an attribute of its parent package, so a lone run of one module's
doctests (``pytest geowarp/warp.py``) would otherwise turn ``geowarp.warp``,
the function, into the module ``geowarp/warp.py``.
"""

from __future__ import annotations

import importlib.util

import geowarp  # noqa: F401  (see the docstring)

_ADAPTERS = {
    "torch": ["geowarp/torch"],
    "jax": ["geowarp/jax"],
    "tensorflow": ["geowarp/tensorflow"],
    "keras": ["geowarp/keras"],
    "dask": ["geowarp/dask"],
    "numba": ["geowarp/samplers/_numba_kernels.py"],
}

collect_ignore = [
    path
    for framework, paths in _ADAPTERS.items()
    if importlib.util.find_spec(framework) is None
    for path in paths
]
