"""benchmarks/stn_mnist.py: every cell of both tables runs, resumes and reports, on tiny data.

No accuracy claim: one epoch on 40 synthetic digits. The real run's numbers
are in benchmarks/results/stn_mnist.md.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from _helpers import benchmark_script

torch = pytest.importorskip("torch")
pytest.importorskip("PIL")


@pytest.fixture(scope="module")
def runner():
    yield from benchmark_script("stn_mnist")


@pytest.fixture(scope="module")
def tiny_digits(tmp_path_factory):
    """60 28x28 'digits': class c is a bar at angle 18c degrees, with noise."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[-1:1:28j, -1:1:28j]
    images, labels = [], []
    for label in np.repeat(np.arange(10), 6):
        angle = np.deg2rad(18 * label)
        distance = np.abs(x * np.sin(angle) - y * np.cos(angle))
        bar = (distance < 0.15) & (x**2 + y**2 < 0.5)
        images.append(np.clip(bar + rng.normal(0, 0.05, bar.shape), 0, 1))
        labels.append(label)
    path = tmp_path_factory.mktemp("digits") / "tiny.npz"
    np.savez(path, images=np.asarray(images, np.float32), labels=np.asarray(labels))
    return path


ARGS = ["--epochs", "1", "--train-size", "40", "--test-size", "20", "--batch-size", "20",
        "--seeds", "0", "--threads", "1"]  # fmt: skip


def test_every_cell_runs_and_the_report_is_complete(runner, tiny_digits, tmp_path, monkeypatch):
    text = runner.main(["--data", str(tiny_digits), "--results", str(tmp_path), *ARGS])
    folder = tmp_path / "stn_mnist"
    cells = [json.loads(p.read_text()) for p in folder.glob("*.json")]
    expected = len(runner.DISTORTIONS) * len(runner.STN_MODELS) + len(runner.IC_MODELS)
    assert len(cells) == expected == 37
    for cell in cells:
        assert 0 <= cell["error"] <= 100
        assert cell["epochs"] == 1
        assert cell["params"] > 0
    # every row of both tables holds a number in every column, beside the paper's
    for name in runner.STN_MODELS:
        row = next(line for line in text.splitlines() if line.startswith(f"| {name} |"))
        assert row.count("[") == 4
        assert " - [" not in row
    for name in runner.IC_MODELS:
        row = next(line for line in text.splitlines() if line.startswith(f"| {name} |"))
        assert not row.rstrip(" |").endswith("-")
    assert (tmp_path / "stn_mnist.md").read_text() == text
    assert "--train-size 40" in text  # the command that produced it
    from PIL import Image

    with Image.open(tmp_path / "stn_mnist.png") as figure:
        assert figure.width > 10 * 42
        assert figure.height > 5 * 42

    # resumable: a second run with the same settings trains nothing ...
    def no_training(*args, **kwargs):
        raise AssertionError("a kept cell was trained again")

    monkeypatch.setattr(runner, "train_cell", no_training)
    assert runner.main(["--data", str(tiny_digits), "--results", str(tmp_path), *ARGS]) == text
    # ... while other settings are other cells
    monkeypatch.undo()
    runner.main(["--data", str(tiny_digits), "--results", str(tmp_path), *ARGS[2:],
                 "--epochs", "2", "--only", "H", "--models", "CNN"])  # fmt: skip
    assert len(list(folder.glob("*.json"))) == expected  # the file of that cell is replaced


def test_models_have_comparable_parameter_counts(runner):
    for side in (28, 42):
        fcn = runner._count(runner.build_model("FCN", side))
        cnn = runner._count(runner.build_model("CNN", side))
        for name in [*runner.STN_MODELS, *runner.IC_MODELS]:
            base = fcn if "FCN" in name else cnn
            assert abs(runner._count(runner.build_model(name, side)) - base) <= 0.06 * base, name


def test_untrained_transformers_are_the_identity(runner):
    digits = torch.rand(3, 1, 28, 28)
    for name in ["ST-FCN TPS", "ST-CNN Proj", "STN", "IC-STN-4"]:
        model = runner.build_model(name, 28)
        torch.testing.assert_close(model.transformer(digits), digits, atol=1e-5, rtol=0)
