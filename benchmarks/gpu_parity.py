"""CUDA against the CPU: geowarp's warps, gradients and registration on both devices.

Run on a machine with a CUDA GPU (``scripts/gpu_check.sh`` runs it)::

    python benchmarks/gpu_parity.py              # cuda against cpu
    python benchmarks/gpu_parity.py --device cpu # a dry run of the script itself

For each transform family (affine, projective, thin-plate spline), both
modes, every padding and both ``align_corners``, the same float64 image and
parameters are warped on the CPU and on ``--device``, and the outputs and the
gradients w.r.t. the image and the parameters compared; then a float32
registration of a photograph with a known affine warp runs on both, and the
two transforms found are compared. Prints the largest differences and exits
with status 1 if any exceeds its tolerance. Needs torch, numpy and
scikit-image only.
"""

from __future__ import annotations

import argparse
import itertools
import sys

import numpy as np
import torch
from skimage import data

import geowarp as gw

#: Largest differences allowed between the devices (float64 warps; float32 registration).
VALUE_TOLERANCE, GRADIENT_TOLERANCE, MATRIX_TOLERANCE = 1e-9, 1e-7, 1e-3


def _transform(family: str, params: torch.Tensor) -> gw.Transform:
    if family == "tps":
        return gw.ThinPlateSpline.from_params(params, control_grid=(3, 3))
    return gw.transforms.get_family(family).from_params(params)


def _warp_case(
    family: str, mode: str, padding: str, align_corners: bool, device: str
) -> tuple[float, float]:
    """Largest differences of (output, gradients) between the CPU and ``device``."""
    rng = np.random.default_rng(0)
    count = {"affine": 6, "projective": 8, "tps": 18}[family]
    image = rng.normal(size=(2, 3, 20, 24))
    params = rng.normal(scale=0.1, size=(2, count))
    weights = rng.normal(size=(2, 3, 18, 22))  # the output's cotangent
    found = []
    for where in ("cpu", device):
        image_t = torch.tensor(image, device=where, requires_grad=True)
        params_t = torch.tensor(params, device=where, requires_grad=True)
        out = gw.warp(
            image_t,
            _transform(family, params_t),
            (18, 22),
            mode=mode,
            padding=padding,
            align_corners=align_corners,
        )
        (out * torch.tensor(weights, device=where)).sum().backward()
        assert image_t.grad is not None
        assert params_t.grad is not None
        found.append([t.detach().cpu().numpy() for t in (out, image_t.grad, params_t.grad)])
    (out_a, *grads_a), (out_b, *grads_b) = found
    value = float(np.abs(out_a - out_b).max())
    gradient = max(float(np.abs(a - b).max()) for a, b in zip(grads_a, grads_b, strict=True))
    return value, gradient


def _registration(device: str) -> float:
    """Largest difference between the matrices registered on the CPU and on ``device``."""
    photo = data.camera()[::2, ::2].astype(np.float32) / 255.0
    truth = gw.Affine(np.array([[1.03, -0.05, 0.04], [0.05, 0.98, -0.03]]))
    moving = np.asarray(gw.warp(photo[None, None], truth.inverse()))
    matrices = []
    for where in ("cpu", device):
        result = gw.register(
            torch.tensor(moving, device=where), torch.tensor(photo[None, None], device=where)
        )
        matrices.append(result.transform.matrix.detach().cpu().numpy())
    return float(np.abs(matrices[0] - matrices[1]).max())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda", help="the device compared with the CPU")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda"):
        if not torch.cuda.is_available():
            print("no CUDA device: nothing to compare")
            return 1
        print(f"{torch.cuda.get_device_name(args.device)}; torch {torch.__version__}")
    failures = 0
    worst = [0.0, 0.0]
    for family, mode, padding, align_corners in itertools.product(
        ("affine", "projective", "tps"),
        ("bilinear", "nearest"),
        ("zeros", "border", "reflection"),
        (False, True),
    ):
        value, gradient = _warp_case(family, mode, padding, align_corners, args.device)
        worst = [max(worst[0], value), max(worst[1], gradient)]
        if value > VALUE_TOLERANCE or gradient > GRADIENT_TOLERANCE:
            failures += 1
            print(
                f"FAIL {family} {mode} {padding} align_corners={align_corners}: "
                f"output {value:.2e}, gradients {gradient:.2e}"
            )
    print(f"warps: largest differences, output {worst[0]:.2e}, gradients {worst[1]:.2e}")
    matrix = _registration(args.device)
    print(f"registration: largest matrix difference {matrix:.2e}")
    failures += matrix > MATRIX_TOLERANCE
    print("parity: ok" if not failures else f"parity: {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
