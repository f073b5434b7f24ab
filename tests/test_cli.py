"""The ``geowarp`` command line, end to end: files in, files out, clear errors."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import geowarp as gw
from geowarp import _geometry
from geowarp._images import read_image, write_image
from geowarp.cli import main


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    """A small RGB test picture with structure everywhere (a PNG on disk)."""
    ys, xs = np.mgrid[0:48, 0:64] / 8.0
    image = np.stack([0.5 + 0.4 * np.sin(xs), 0.5 + 0.4 * np.cos(ys), (xs + ys) / 14.0])
    return write_image(tmp_path / "photo.png", np.clip(image, 0, 1).astype(np.float32))


def test_warp_by_a_motion_matches_the_library(photo, tmp_path, capsys):
    out = tmp_path / "out" / "rotated.tif"
    assert main(["warp", str(photo), "-o", str(out), "--rotate", "20", "--scale", "0.8"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    image = read_image(photo)
    forward = _geometry.motion(image.shape[-2:], 20.0, [0.8], 0.0, [0.0, 0.0], image.shape[-2:])
    transform = _geometry.from_forward_pixels(forward, image.shape[-2:], image.shape[-2:])
    expected = np.asarray(gw.warp(image[None], transform))[0]
    np.testing.assert_allclose(read_image(out), expected, atol=1 / 255 + 1e-6)  # 8-bit file


def test_a_pure_rotation_moves_a_pixel_counter_clockwise():
    # the right-hand edge's middle goes to the top edge's middle under +90 degrees
    forward = _geometry.motion((5, 5), 90.0, [1.0], 0.0, [0.0, 0.0], (5, 5))
    np.testing.assert_allclose(forward @ [4.0, 2.0, 1.0], [2.0, 0.0, 1.0], atol=1e-12)


def test_warp_by_a_matrix_agrees_with_the_motion(photo, tmp_path):
    image = read_image(photo)
    forward = _geometry.motion(image.shape[-2:], 0.0, [1.0], 10.0, [3.0, -2.0], (40, 50))
    text = ";".join(",".join(repr(v) for v in row) for row in forward[:2].tolist())
    by_matrix, by_motion = tmp_path / "matrix.png", tmp_path / "motion.png"
    assert (
        main(["warp", str(photo), "-o", str(by_matrix), "--matrix", text, "--size", "40", "50"])
        == 0
    )
    motion = ["--shear", "10", "--translate", "3", "-2", "--size", "40", "50"]
    assert main(["warp", str(photo), "-o", str(by_motion), *motion]) == 0
    np.testing.assert_array_equal(read_image(by_matrix), read_image(by_motion))
    assert read_image(by_matrix).shape == (3, 40, 50)


def test_warp_by_spline_points_moves_the_points(photo, tmp_path):
    points = tmp_path / "points.txt"
    points.write_text(
        "# x_in y_in x_out y_out\n10 10 12 9\n50 10 50 10\n10 40 10 40\n50 40 48 41\n"
    )
    out = tmp_path / "spline.png"
    assert main(["warp", str(photo), "-o", str(out), "--tps-points", str(points)]) == 0
    image = read_image(photo)
    # the input pixel (10, 10) now sits at output pixel (12, 9)
    np.testing.assert_allclose(read_image(out)[:, 9, 12], image[:, 10, 10], atol=2 / 255)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["warp", "missing.png", "-o", "x.png"], "cannot read missing.png: no such file"),
        (["warp", "{photo}", "-o", "x.png", "--matrix", "1,0;0,1"], "rows of 3 numbers"),
        (["warp", "{photo}", "-o", "x.png", "--matrix", "1,2,0;2,4,0"], "singular"),
        (["warp", "{photo}", "-o", "x.png", "--matrix", "1,0,nan;0,1,0"], "finite"),
        (["warp", "{photo}", "-o", "x.png", "--size", "0", "5"], "--size must be positive"),
        (["warp", "{photo}", "-o", "x.png", "--size", "99999", "99999"], "would need"),
        (["warp", "{photo}", "-o", "x.bmp"], "extension must be one of"),
        (["warp", "{photo}", "-o", "x.png", "--scale", "0"], "--scale must not be 0"),
        (["warp", "{notes}", "-o", "x.png"], "cannot read .* as an image"),
        (["register", "{photo}"], "two images"),
        (["register", "-o", "x.png", "--levels", "0"], "--levels must be at least 1"),
    ],
)
def test_errors_are_one_line_without_a_traceback(photo, tmp_path, capsys, arguments, message):
    notes = tmp_path / "notes.png"
    notes.write_text("not an image")
    filled = [a.format(photo=photo, notes=notes) for a in arguments]
    filled = [str(tmp_path / a) if a.startswith("x.") else a for a in filled]
    assert main(filled) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"geowarp {arguments[0]}: error: ")
    assert re.search(message, error), error
    assert "Traceback" not in error
    assert error.count("\n") == 1


def test_python_dash_m_and_help_run():
    done = subprocess.run(
        [sys.executable, "-m", "geowarp", "warp", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0
    for option in ("--rotate", "--scale", "--shear", "--translate", "--matrix", "--tps-points"):
        assert option in done.stdout


@pytest.mark.parametrize("family", ["affine", "projective"])
def test_register_recovers_the_sample_pair(tmp_path, capsys, family):
    out = tmp_path / "registered.png"
    assert main(["register", "-o", str(out), "--transform", family, "--quiet"]) == 0
    printed = capsys.readouterr().out
    error = float(
        re.search(r"max corner error against the known transform: ([\d.]+) px", printed)[1]
    )
    assert error < 0.05
    assert "pixel matrix, moving -> fixed" in printed
    panel = read_image(tmp_path / "registered_panel.png")
    assert panel.shape[0] == 3
    assert panel.shape[2] > 5 * 256  # five images side by side
    assert read_image(out).shape == (1, 256, 256)


def test_register_two_files_brings_moving_onto_fixed(photo, tmp_path):
    image = read_image(photo)
    shift = gw.Affine(np.array([[1.0, 0.0, 0.06], [0.0, 1.0, -0.04]]))
    moving = write_image(
        tmp_path / "moving.jpg", np.asarray(gw.warp(image[None], shift.inverse()))[0]
    )
    out, panel = tmp_path / "out.tiff", tmp_path / "panels" / "p.png"
    arguments = [str(moving), str(photo), "-o", str(out), "--panel", str(panel), "--quiet"]
    assert main(["register", *arguments, "--loss", "ncc"]) == 0
    interior = (slice(None), slice(8, -8), slice(8, -8))
    difference = np.abs(read_image(out) - image)[interior]
    assert difference.mean() < 0.02  # JPEG and 8-bit files, but the same picture
    assert panel.is_file()


def test_register_with_mutual_information_across_a_brightness_inversion(photo, tmp_path):
    image = read_image(photo)
    shift = gw.Affine(np.array([[1.0, 0.0, 0.05], [0.0, 1.0, 0.03]]))
    inverted = 1.0 - np.asarray(gw.warp(image[None], shift.inverse(), padding="border"))[0]
    moving = write_image(tmp_path / "moving.png", inverted)
    out = tmp_path / "out.png"
    assert (
        main(["register", str(moving), str(photo), "-o", str(out), "--loss", "mi", "--quiet"]) == 0
    )
    interior = (slice(None), slice(12, -12), slice(12, -12))
    assert np.abs(read_image(out) - (1.0 - image))[interior].mean() < 0.02


@pytest.mark.parametrize("family", ["affine", "projective", "tps"])
def test_register_writes_the_transform_that_warp_applies(tmp_path, capsys, family):
    # register, then `geowarp warp` the moving image by the file written: the same image
    from geowarp.cli import _sample_pair

    moving, fixed, _ = _sample_pair(family)
    paths = [
        write_image(tmp_path / name, image) for name, image in (("m.png", moving), ("f.png", fixed))
    ]
    found, registered = tmp_path / "t" / "transform.txt", tmp_path / "registered.png"
    arguments = ["register", *map(str, paths), "-o", str(registered), "--transform", family]
    assert main([*arguments, "--transform-out", str(found), "--quiet"]) == 0
    assert str(found) in capsys.readouterr().out.splitlines()
    header = found.read_text().splitlines()[0]
    option = "--tps-points" if family == "tps" else "--matrix"
    assert header.startswith("# ")
    assert f"geowarp warp IMAGE {option} FILE --size 256 256" in header
    again = tmp_path / "again.png"
    assert (
        main(["warp", str(paths[0]), "-o", str(again), option, str(found), "--size", "256", "256"])
        == 0
    )
    difference = np.abs(read_image(again) - read_image(registered))
    assert difference.max() <= 1.5 / 255  # both 8-bit: a value on a rounding edge at most
    assert difference.mean() < 1e-4


def test_a_transform_file_that_cannot_be_written_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    target = blocker / "transform.txt"  # under a file: no such folder can be made
    arguments = ["register", "-o", str(tmp_path / "o.png"), "--transform-out", str(target)]
    assert main([*arguments, "--quiet"]) == 2
    assert "--transform-out: cannot write" in capsys.readouterr().err


def test_register_from_landmarks_fits_the_points(tmp_path, capsys):
    truth = _geometry.known_transform("projective")  # the sample pair's
    rng = np.random.default_rng(1)
    fixed_points = rng.uniform(10, 245, (12, 2))
    normalized = gw.grid.pixel_to_normalized(fixed_points, (256, 256))
    moving_points = gw.grid.normalized_to_pixel(np.asarray(truth.apply(normalized)), (256, 256))
    rows = np.hstack([moving_points, fixed_points])
    points = tmp_path / "points.csv"
    points.write_text("\n".join(",".join(map(repr, row)) for row in rows.tolist()))
    arguments = ["register", "-o", str(tmp_path / "o.png"), "--transform", "projective"]
    assert main([*arguments, "--landmarks", str(points), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "fitted to 12 point pairs" in printed
    assert float(re.search(r"corner error .*: ([\d.]+) px", printed)[1]) < 1e-3
    points.write_text("1 1 2 2\n2 2 3 3\n3 3 4 4\n4 4 5 5\n")  # all on one line
    assert main([*arguments, "--landmarks", str(points), "--quiet"]) == 2
    assert "--landmarks: " in capsys.readouterr().err
