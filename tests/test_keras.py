"""Keras 3 layers on each Keras backend: values, training, serialisation.

Keras picks its backend once, from ``KERAS_BACKEND``, when it is first
imported, so each backend runs in its own subprocess: this file run as a script
(``python tests/test_keras.py jax``) does the checks and prints a JSON report
that the tests read.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import warnings
from typing import Any

import numpy as np
import pytest

KERAS_BACKENDS = ("tensorflow", "jax", "torch")


def _selected() -> list[str]:
    wanted = os.environ.get("GEOWARP_TEST_BACKENDS")
    names = [n.strip() for n in wanted.split(",")] if wanted else list(KERAS_BACKENDS)
    return [name for name in KERAS_BACKENDS if name in names]


@pytest.fixture(scope="module", params=_selected())
def report(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The worker's findings on one Keras backend (one subprocess per backend)."""
    backend = request.param
    missing = [m for m in ("keras", backend) if importlib.util.find_spec(m) is None]
    if missing:
        if os.environ.get("GEOWARP_REQUIRE_BACKENDS"):
            pytest.fail(f"keras on {backend} is required but {missing} is not installed")
        pytest.skip(f"{missing} not installed")
    environment = {**os.environ, "KERAS_BACKEND": backend}
    result = subprocess.run(
        [sys.executable, __file__, backend],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_backend_is_the_one_asked_for(report, request):
    # what keras.backend.backend() said inside the worker, against the fixture's parameter
    assert report["backend"] == request.node.callspec.params["report"]


def test_identity_parameters_return_the_image(report):
    assert report["identity_max_abs"] < 1e-6


def test_warp_layer_matches_geowarp_on_numpy(report):
    for family, error in report["warp_vs_numpy"].items():
        assert error < 1e-5, family


def test_spatial_transformer_trains(report):
    for family, (before, after) in report["training"].items():
        assert after < 0.5 * before, family


def test_save_and_load_round_trip(report):
    assert report["reloaded_max_abs"] == 0.0
    assert report["config_round_trip"]


def test_gradients_reach_the_parameters(report):
    assert report["param_gradient_norm"] > 0


# --------------------------------------------------------------------------- the worker


def _blobs(count: int, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs at random offsets, and the same blob centred (the task's target)."""
    ys, xs = np.mgrid[0:size, 0:size]
    centre = (size - 1) / 2

    def blob(x: float, y: float) -> np.ndarray:
        return np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / 8.0)

    shifts = rng.uniform(-3, 3, (count, 2))
    images = np.stack([blob(centre + dx, centre + dy) for dx, dy in shifts])[..., None]
    target = np.broadcast_to(blob(centre, centre)[None, ..., None], images.shape)
    return images.astype("float32"), np.ascontiguousarray(target, dtype="float32")


def _warp_vs_numpy(rng: np.random.Generator) -> dict[str, float]:
    import keras

    import geowarp as gw
    from geowarp.keras import Warp

    image = rng.random((2, 9, 11, 3)).astype("float32")
    errors = {}
    for family, count in (("affine", 6), ("projective", 8), ("tps", 18)):
        params = (0.1 * rng.normal(size=(2, count))).astype("float32")
        layer = Warp(family, out_shape=(7, 5), control_grid=(3, 3), padding="reflection")
        out = keras.ops.convert_to_numpy(layer(image, params))
        wide = params.astype("float64")
        if family == "affine":
            transform: Any = gw.Affine(np.eye(2, 3) + wide.reshape(2, 2, 3))
        elif family == "projective":
            transform = gw.Projective(np.eye(3) + np.pad(wide, ((0, 0), (0, 1))).reshape(2, 3, 3))
        else:
            control = gw.ThinPlateSpline.control_points((3, 3))
            transform = gw.ThinPlateSpline(control + wide.reshape(2, 9, 2), control)
        expected = gw.warp(
            image.transpose(0, 3, 1, 2).astype("float64"), transform, (7, 5), padding="reflection"
        )
        errors[family] = float(np.abs(out - expected.transpose(0, 2, 3, 1)).max())
    return errors


def _train(family: str, count: int, rng: np.random.Generator) -> tuple[float, float, Any]:
    import keras

    from geowarp.keras import SpatialTransformer

    keras.utils.set_random_seed(0)
    images, target = _blobs(count, 16, rng)
    localization = keras.Sequential(
        [keras.layers.Flatten(), keras.layers.Dense(32, activation="tanh")]
    )
    inputs = keras.Input((16, 16, 1))
    stn = SpatialTransformer(localization, family, control_grid=(3, 3))
    model = keras.Model(inputs, stn(inputs))
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    before = float(model.evaluate(images, target, verbose=0))
    model.fit(images, target, batch_size=16, epochs=6, verbose=0)
    return before, float(model.evaluate(images, target, verbose=0)), model


def _round_trip(model: Any, images: np.ndarray) -> tuple[float, bool]:
    import keras

    from geowarp.keras import SpatialTransformer

    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "stn.keras")
        model.save(path)
        loaded = keras.models.load_model(path)
    reloaded = np.abs(loaded.predict(images, verbose=0) - model.predict(images, verbose=0))
    stn = next(layer for layer in model.layers if isinstance(layer, SpatialTransformer))
    config = SpatialTransformer.from_config(stn.get_config()).get_config()
    same = json.dumps(config, sort_keys=True) == json.dumps(stn.get_config(), sort_keys=True)
    return float(reloaded.max()), same


def _param_gradient_norm(rng: np.random.Generator) -> float:
    """d(sum of squares)/d(params) through the backend's own autodiff."""
    import keras

    from geowarp.keras import Warp

    image = rng.random((2, 8, 8, 1)).astype("float32")
    params = (0.1 * rng.normal(size=(2, 6))).astype("float32")
    layer = Warp()
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        p = tf.constant(params)
        with tf.GradientTape() as tape:
            tape.watch(p)
            loss = tf.reduce_sum(layer(image, p) ** 2)
        grad = tape.gradient(loss, p).numpy()
    elif backend == "jax":
        import jax

        grad = jax.grad(lambda p: (layer(image, p) ** 2).sum())(params)
    else:
        import torch

        p = torch.tensor(params, requires_grad=True)
        (layer(image, p) ** 2).sum().backward()
        grad = p.grad.numpy()
    return float(np.linalg.norm(np.asarray(grad)))


def worker() -> dict[str, Any]:
    """Every check on the backend KERAS_BACKEND names; returns the JSON-ready findings."""
    import keras

    from geowarp.keras import Warp

    rng = np.random.default_rng(0)
    image = rng.random((3, 8, 10, 2)).astype("float32")
    identity = Warp("projective")(image, np.zeros((3, 8), dtype="float32"))
    first = Warp("affine", data_format="channels_first")
    identity_first = first(image.transpose(0, 3, 1, 2), np.zeros((3, 6), dtype="float32"))
    identity_error = max(
        float(np.abs(keras.ops.convert_to_numpy(identity) - image).max()),
        float(
            np.abs(keras.ops.convert_to_numpy(identity_first) - image.transpose(0, 3, 1, 2)).max()
        ),
    )
    training, model = {}, None
    # 60 images in batches of 16: the last batch is short, so TensorFlow traces the step
    # with an unknown batch size. The thin-plate spline's solve still needs a known one
    # (geowarp.transforms._tps_ops allocates its right-hand side by shape), hence 64.
    for family, count in (("affine", 60), ("projective", 60), ("tps", 64)):
        before, after, model = _train(family, count, rng)
        training[family] = (before, after)
    reloaded, same_config = _round_trip(model, _blobs(8, 16, rng)[0])
    return {
        "backend": keras.backend.backend(),
        "identity_max_abs": identity_error,
        "warp_vs_numpy": _warp_vs_numpy(rng),
        "training": training,
        "reloaded_max_abs": reloaded,
        "config_round_trip": same_config,
        "param_gradient_norm": _param_gradient_norm(rng),
    }


if __name__ == "__main__":
    if os.environ.get("KERAS_BACKEND") != sys.argv[1]:
        raise SystemExit("set KERAS_BACKEND to the backend named on the command line")
    # geowarp's own warnings are errors (Keras and TF warn about their numpy 2 migration)
    warnings.filterwarnings("error", module=r"geowarp(\.|$)")
    # ... except that geowarp's index arithmetic asks for int64, which JAX without x64
    # narrows to int32 with a warning on every trace
    warnings.filterwarnings("ignore", message="Explicitly requested dtype int64")
    print(json.dumps(worker()))
