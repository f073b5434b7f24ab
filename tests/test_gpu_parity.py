"""benchmarks/gpu_parity.py, the CUDA check of scripts/gpu_check.sh, stays runnable.

CI has no GPU, so here it compares the CPU with itself: every case runs and
reports, and a device whose warps differ is caught. The real comparison runs
on a GPU machine (scripts/gpu_check.sh).
"""

from __future__ import annotations

import pytest

from _helpers import benchmark_script

torch = pytest.importorskip("torch")
pytest.importorskip("skimage")


@pytest.fixture(scope="module")
def parity():
    yield from benchmark_script("gpu_parity")


def test_every_case_runs_and_agrees_on_one_device(parity, capsys):
    assert parity.main(["--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "warps: largest differences, output 0.00e+00, gradients 0.00e+00" in printed
    assert "registration: largest matrix difference 0.00e+00" in printed
    assert printed.rstrip().endswith("parity: ok")


def test_a_device_that_differs_fails(parity, monkeypatch, capsys):
    # each case warps on the CPU, then on the device: a stand-in device whose warps
    # are off by 1e-6 (the tolerance is 1e-9) fails every case
    real_warp = parity.gw.warp
    calls = iter(range(1000))

    def device_off(image, *args, **kwargs):
        out = real_warp(image, *args, **kwargs)
        return out + 1e-6 if isinstance(image, torch.Tensor) and next(calls) % 2 else out

    monkeypatch.setattr(parity.gw, "warp", device_off)
    assert parity.main(["--device", "cpu"]) == 1
    printed = capsys.readouterr().out
    assert "FAIL affine bilinear zeros align_corners=False: output 1.00e-06" in printed
    assert "parity: 36 failed" in printed
