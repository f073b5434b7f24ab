"""Interleaved timing shared by the benchmarks: every round calls each peer once."""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    """Wall times of one callable over the timed rounds, in ms."""

    median: float
    minimum: float


def time_interleaved(
    fns: dict[str, Callable[[], object]],
    repeats: int,
    warmup: int,
    *,
    shuffle_seed: int | None = None,
) -> dict[str, Timing]:
    """Time each callable; every round calls each one once, in a rotating order.

    With ``shuffle_seed`` the order of every round is shuffled instead (seeded),
    so no callable always runs right after the same one.
    """
    names = list(fns)
    samples: dict[str, list[float]] = {name: [] for name in names}
    shuffler = None if shuffle_seed is None else random.Random(shuffle_seed)
    for round_index in range(warmup + repeats):
        shift = round_index % len(names)
        order = names[shift:] + names[:shift]
        if shuffler is not None:
            order = shuffler.sample(names, len(names))
        for name in order:
            start = time.perf_counter()
            fns[name]()
            elapsed = time.perf_counter() - start
            if round_index >= warmup:
                samples[name].append(elapsed)
    return {
        name: Timing(1e3 * statistics.median(values), 1e3 * min(values))
        for name, values in samples.items()
    }


def time_back_to_back(
    fns: dict[str, Callable[[], object]], repeats: int, warmup: int
) -> dict[str, Timing]:
    """Time each callable alone: ``warmup`` untimed calls, then ``repeats`` timed ones in a row.

    Its data stay in cache and its worker threads awake between calls: the best
    case of each, where `time_interleaved` measures a call among other work.
    """
    found = {}
    for name, fn in fns.items():
        values = []
        for index in range(warmup + repeats):
            start = time.perf_counter()
            fn()
            if index >= warmup:
                values.append(time.perf_counter() - start)
        found[name] = Timing(1e3 * statistics.median(values), 1e3 * min(values))
    return found
