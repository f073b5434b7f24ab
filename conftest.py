"""Collect the doctests of adapter folders only where their framework is installed."""

from __future__ import annotations

import importlib.util

_ADAPTERS = {
    "torch": ["geowarp/torch"],
    "jax": ["geowarp/jax"],
    "tensorflow": ["geowarp/tensorflow"],
    "keras": ["geowarp/keras"],
}

collect_ignore = [
    path
    for framework, paths in _ADAPTERS.items()
    if importlib.util.find_spec(framework) is None
    for path in paths
]
