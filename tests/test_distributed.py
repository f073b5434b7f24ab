"""Data-parallel training, threads and clusters: geowarp's layers and caches under each.

* PyTorch: `SpatialTransformer` and `ICSTN` under ``DistributedDataParallel``
  (gloo, 2 CPU processes) give the gradients of one process on the whole batch.
* Keras: `geowarp.keras.SpatialTransformer` trains under
  ``tf.distribute.MirroredStrategy`` on two logical CPUs as on one device.
* Threads: two threads warping by thin-plate splines at once, sharing the
  spline grid-weight cache, get the results each gets alone.
* examples/dask_gigapixel.py runs on a small image.

The distributed parts need processes of their own (the gloo ranks; TensorFlow
fixes its logical devices when it starts), so this file run as a script is the
worker: ``python tests/test_distributed.py ddp RANK PORT OUT`` or
``python tests/test_distributed.py keras``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import geowarp as gw

ROOT = Path(__file__).resolve().parents[1]
#: The DDP cases: (name, module kind, family). Each rank runs all of them.
DDP_CASES = (
    ("stn-affine", "stn", "affine"),
    ("stn-tps", "stn", "tps"),
    ("icstn", "icstn", "affine"),
)
BATCH = 8  # the global batch; each of the 2 ranks takes half


def _worker_env() -> dict[str, str]:
    # one thread per process: 2 ranks on a shared machine, and fixed reduction orders
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


# --------------------------------------------------------------------------- PyTorch DDP


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ddp_batch() -> tuple[Any, Any]:
    """A fixed float64 batch of images (BATCH, 1, 8, 8) and targets."""
    import torch

    generator = torch.Generator().manual_seed(0)
    images = torch.rand(BATCH, 1, 8, 8, generator=generator, dtype=torch.float64)
    return images, torch.roll(images, shifts=1, dims=-1)


def _ddp_module(kind: str, family: str) -> Any:
    """The same float64 module in every process, its head moved off the identity."""
    import torch

    from geowarp.torch import ICSTN, SpatialTransformer

    torch.manual_seed(0)
    localization = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 8), torch.nn.Tanh())
    module: SpatialTransformer | ICSTN
    if kind == "stn":
        module = SpatialTransformer(localization, family, features=8, control_grid=(3, 3))
    else:
        module = ICSTN(localization, family, steps=2, features=8)
    with torch.no_grad():  # a zero head would leave the localisation net without gradient
        module.head.weight.normal_(std=0.05)
    return module.double()


def _gradients(module: Any, images: Any, targets: Any) -> dict[str, Any]:
    loss = ((module(images) - targets) ** 2).mean()
    loss.backward()
    return {name: p.grad.detach().clone() for name, p in module.named_parameters()}


def ddp_worker(rank: int, port: int, out: str) -> None:
    """One gloo rank: its half of the batch through DDP; rank 0 saves the gradients."""
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        images, targets = _ddp_batch()
        half = slice(rank * BATCH // 2, (rank + 1) * BATCH // 2)
        found = {}
        for name, kind, family in DDP_CASES:
            model = DistributedDataParallel(_ddp_module(kind, family))
            # DDP averages the ranks' gradients: with each rank's loss a mean over its
            # half, that is the gradient of the mean over the whole batch
            loss = ((model(images[half]) - targets[half]) ** 2).mean()
            loss.backward()
            found[name] = {n: p.grad.clone() for n, p in model.module.named_parameters()}
        if rank == 0:
            torch.save(found, out)
        dist.barrier()  # neither rank tears down while the other still talks
    finally:
        dist.destroy_process_group()


def _run_ranks(out: Path) -> list[str]:
    """Run the two gloo ranks on a free port; the failed ranks' stderr."""
    port = _free_port()
    ranks = [
        subprocess.Popen(
            [sys.executable, __file__, "ddp", str(rank), str(port), str(out)],
            env=_worker_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in range(2)
    ]
    errors = []
    for process in ranks:
        try:
            _, stderr = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
        if process.returncode != 0:
            errors.append(stderr[-3000:])
    return errors


@pytest.fixture(scope="module")
def ddp_gradients(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Rank 0's averaged gradients per case, from two gloo processes."""
    torch = pytest.importorskip("torch")
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available")
    out = tmp_path_factory.mktemp("ddp") / "gradients.pt"
    errors = _run_ranks(out)
    if errors and "address already in use" in "\n".join(errors).lower():
        errors = _run_ranks(out)  # another process took the free port first: once more
    assert not errors, "\n".join(errors)
    return dict(torch.load(out))


@pytest.mark.parametrize("case", DDP_CASES, ids=[case[0] for case in DDP_CASES])
def test_ddp_gradients_equal_one_process_on_the_whole_batch(ddp_gradients, case):
    import torch

    name, kind, family = case
    images, targets = _ddp_batch()
    expected = _gradients(_ddp_module(kind, family), images, targets)
    found = ddp_gradients[name]
    assert found.keys() == expected.keys()
    for parameter, gradient in expected.items():
        assert torch.linalg.vector_norm(gradient) > 0, parameter
        torch.testing.assert_close(found[parameter], gradient, rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------- Keras MirroredStrategy


def _keras_data() -> tuple[np.ndarray, np.ndarray]:
    """Blobs at random offsets (16, 12, 12, 1) and the centred blob, float32."""
    rng = np.random.default_rng(0)
    ys, xs = np.mgrid[0:12, 0:12]
    shifts = rng.uniform(-2, 2, (16, 2))
    images = np.stack(
        [np.exp(-((xs - 5.5 - dx) ** 2 + (ys - 5.5 - dy) ** 2) / 6) for dx, dy in shifts]
    )
    target = np.exp(-((xs - 5.5) ** 2 + (ys - 5.5) ** 2) / 6)
    return (
        images[..., None].astype("float32"),
        np.broadcast_to(target[None, ..., None], images[..., None].shape).astype("float32"),
    )


def _keras_model(weights: list[np.ndarray] | None = None) -> Any:
    import keras

    from geowarp.keras import SpatialTransformer

    keras.utils.set_random_seed(0)
    localization = keras.Sequential(
        [keras.layers.Flatten(), keras.layers.Dense(8, activation="tanh")]
    )
    inputs = keras.Input((12, 12, 1))
    model = keras.Model(inputs, SpatialTransformer(localization, "affine")(inputs))
    if weights is not None:
        model.set_weights(weights)
    model.compile(keras.optimizers.SGD(0.5), "mse")
    return model


def keras_worker() -> dict[str, Any]:
    """Train under MirroredStrategy on two logical CPUs and on one device; compare."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    images, target = _keras_data()
    single = _keras_model()
    # move the head off the identity so the first step reaches every weight
    start = [
        w + 0.01 * np.random.default_rng(1).normal(size=w.shape).astype(w.dtype)
        for w in single.get_weights()
    ]
    single.set_weights(start)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        mirrored = _keras_model(start)
    # one step on the whole global batch: each replica takes half
    single.fit(images, target, batch_size=16, epochs=1, shuffle=False, verbose=0)
    mirrored.fit(images, target, batch_size=16, epochs=1, shuffle=False, verbose=0)
    step_difference = max(
        float(np.abs(a - b).max())
        for a, b in zip(single.get_weights(), mirrored.get_weights(), strict=True)
    )
    before = float(mirrored.evaluate(images, target, batch_size=16, verbose=0))
    mirrored.fit(images, target, batch_size=16, epochs=15, shuffle=False, verbose=0)
    after = float(mirrored.evaluate(images, target, batch_size=16, verbose=0))
    return {
        "replicas": int(strategy.num_replicas_in_sync),
        "step_difference": step_difference,
        "moved": max(
            float(np.abs(a - b).max()) for a, b in zip(start, single.get_weights(), strict=True)
        ),
        "loss": [before, after],
    }


@pytest.fixture(scope="module")
def mirrored_report() -> dict[str, Any]:
    missing = [m for m in ("keras", "tensorflow") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"{missing} not installed")
    result = subprocess.run(
        [sys.executable, __file__, "keras"],
        capture_output=True,
        text=True,
        env={**_worker_env(), "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"},
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_mirrored_strategy_uses_two_replicas(mirrored_report):
    assert mirrored_report["replicas"] == 2


def test_mirrored_step_equals_a_single_device_step(mirrored_report):
    assert mirrored_report["moved"] > 1e-3  # the step did something to compare
    assert mirrored_report["step_difference"] < 1e-5


def test_mirrored_training_lowers_the_loss(mirrored_report):
    before, after = mirrored_report["loss"]
    assert after < 0.8 * before


# --------------------------------------------------------------------------- threads


def _spline_warps(seed: int) -> list[tuple[Any, Any, tuple[int, int]]]:
    """(image, spline, out_shape) triples: a few grids, so threads evict each other's weights."""
    rng = np.random.default_rng(seed)
    cases = []
    for index, out_shape in enumerate(((9, 11), (12, 7), (16, 16))):
        control = gw.ThinPlateSpline.control_points((3, 3 + index))
        spline = gw.ThinPlateSpline(control + 0.1 * rng.normal(size=control.shape), control)
        cases.append((rng.random((1, 2, 10, 10)), spline, out_shape))
    return cases


def test_two_threads_warping_splines_at_once_get_correct_results(monkeypatch):
    from geowarp.transforms import _tps_ops

    # a two-entry cache, so the threads' lookups, inserts and evictions interleave
    cache = _tps_ops.GridWeightCache(max_entries=2)
    monkeypatch.setattr(_tps_ops, "GRID_WEIGHTS", cache)
    monkeypatch.setattr("geowarp.transforms._tps.GRID_WEIGHTS", cache)
    work = {seed: _spline_warps(seed) for seed in (1, 2)}
    expected = {
        seed: [gw.warp(image, spline, shape) for image, spline, shape in cases]
        for seed, cases in work.items()
    }
    barrier = threading.Barrier(2)
    found: dict[int, list[Any]] = {1: [], 2: []}
    failures: list[BaseException] = []

    def run(seed: int) -> None:
        try:
            barrier.wait(timeout=10)
            for _ in range(20):
                for image, spline, shape in work[seed]:
                    found[seed].append(gw.warp(image, spline, shape))
        except BaseException as error:  # reported by the main thread
            failures.append(error)

    threads = [threading.Thread(target=run, args=(seed,)) for seed in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures, failures
    for seed, results in found.items():
        assert len(results) == 20 * len(expected[seed])
        for index, result in enumerate(results):
            np.testing.assert_array_equal(result, expected[seed][index % len(expected[seed])])
    assert len(cache) <= 2


# --------------------------------------------------------------------------- the gigapixel example


def test_gigapixel_example_runs_small():
    pytest.importorskip("distributed")
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "dask_gigapixel.py"),
            "--size",
            "512",
            "--chunk",
            "256",
        ],
        capture_output=True,
        text=True,
        env=_worker_env(),
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    cells = [[cell.strip() for cell in row.strip(" |").split("|")] for row in rows[1:]]
    means = {row[0]: float(row[3]) for row in cells}  # the report's table: warp -> mean
    assert "tps, geowarp.dask" in means
    if "affine, dask_image" in means:  # the two affine warps agree
        assert abs(means["affine, dask_image"] - means["affine, geowarp.dask"]) < 1e-5


if __name__ == "__main__":
    if sys.argv[1] == "ddp":
        ddp_worker(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
        # gloo's threads sometimes outlive the group at interpreter exit, and C++ then
        # aborts ("terminate called without an active exception"): the work is done and
        # saved, so leave without running the destructors
        sys.stdout.flush()
        os._exit(0)
    elif sys.argv[1] == "keras":
        print(json.dumps(keras_worker()))
    else:
        raise SystemExit(f"unknown worker {sys.argv[1]!r}; expected 'ddp' or 'keras'")
