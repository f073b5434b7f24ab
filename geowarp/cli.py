"""The ``geowarp`` command line: warp an image, register two images.

Run ``geowarp --help`` (or ``python -m geowarp --help``) for the commands::

    geowarp warp photo.png -o rotated.png --rotate 20 --scale 0.9
    geowarp warp photo.png -o tilted.png --matrix "1,0.1,0;0,1,0;0.0005,0,1"
    geowarp register moving.png fixed.png -o registered.png --transform projective
    geowarp register moving.png fixed.png --transform-out t.txt   # then: warp --matrix t.txt
    geowarp register                      # the bundled sample pair: how well is it recovered?

Pixel coordinates are ``(x, y)`` with ``(0, 0)`` the centre of the top-left
pixel, as in OpenCV and scikit-image. Matrices and point files describe the
motion as seen on screen, input pixel -> output pixel (OpenCV's ``warpAffine``
convention); geowarp turns them into its own output -> input transforms.
Errors (unreadable files, bad matrices, impossible sizes) print one line and
exit with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import geowarp as gw

from . import _geometry
from ._errors import GeowarpError, GeowarpValueError
from ._images import SUFFIXES, draw_grid, load_sample, panel, read_image, write_image

__all__ = ["main"]

FAMILIES = ("affine", "projective", "tps")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``geowarp`` command line; returns the exit status (0, or 2 on an error).

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; ``sys.argv[1:]`` when omitted.

    Examples
    --------
    >>> import io
    >>> import tempfile
    >>> from contextlib import redirect_stdout
    >>> from pathlib import Path
    >>> from geowarp.cli import main
    >>> with tempfile.TemporaryDirectory() as folder, redirect_stdout(io.StringIO()):
    ...     status = main(["register", "-o", str(Path(folder) / "out.png"), "--quiet"])
    ...     written = sorted(p.name for p in Path(folder).iterdir())
    >>> status, written
    (0, ['out.png', 'out_panel.png'])
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        args.run(args)
    except (GeowarpError, OSError, ValueError) as error:
        print(f"geowarp {args.command}: error: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # a bug of ours: still one line, and how to report it
        name = type(error).__name__
        print(f"geowarp {args.command}: internal error ({name}): {error}", file=sys.stderr)
        return 2
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="geowarp",
        description="Warp images and register image pairs with geowarp. Pixel coordinates are "
        "(x, y), the top-left pixel's centre at (0, 0). Reads and writes "
        f"{', '.join(s[1:].upper() for s in SUFFIXES)}.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_warp(commands.add_parser("warp", help="warp an image by a transform you describe"))
    _add_register(commands.add_parser("register", help="find the transform between two images"))
    return parser


def _add_warp(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Warp IMAGE by a motion seen on screen: rotation, scale, shear and translation about "
        "the image centre (applied in that order: scale, shear, rotate, translate), or a "
        "pixel matrix, or thin-plate spline point pairs."
    )
    parser.add_argument("image", type=Path, metavar="IMAGE", help="the image to warp")
    parser.add_argument("-o", "--output", type=Path, required=True, help="where to write it")
    parser.add_argument(
        "--rotate",
        type=float,
        default=0.0,
        metavar="DEG",
        help="turn counter-clockwise on screen by DEG degrees",
    )
    parser.add_argument(
        "--scale", type=float, nargs="+", default=[1.0], metavar="S", help="magnify by S (or SX SY)"
    )
    parser.add_argument(
        "--shear",
        type=float,
        default=0.0,
        metavar="DEG",
        help="slant vertical lines by DEG degrees (x += tan(DEG) * y)",
    )
    parser.add_argument(
        "--translate",
        type=float,
        nargs=2,
        default=[0.0, 0.0],
        metavar=("TX", "TY"),
        help="shift by TX, TY pixels (y down)",
    )
    parser.add_argument(
        "--matrix",
        metavar="MATRIX",
        help='a 2x3 or 3x3 pixel matrix, input -> output, as "a,b,c;d,e,f[;g,h,i]" '
        "or a text file of 2 or 3 rows (replaces the options above)",
    )
    parser.add_argument(
        "--tps-points",
        type=Path,
        metavar="FILE",
        help="a text file of rows 'x_in y_in x_out y_out' (pixels): each input "
        "point moves to its output point, a thin-plate spline in between",
    )
    parser.add_argument(
        "--size",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        help="output height and width (default: the input's)",
    )
    parser.add_argument("--mode", choices=("bilinear", "nearest"), default="bilinear")
    parser.add_argument("--padding", choices=("zeros", "border", "reflection"), default="zeros")
    parser.set_defaults(run=_warp)


def _add_register(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Find the transform T that brings MOVING onto FIXED (geowarp.warp(MOVING, T) ~ FIXED), "
        "from the images' pixels, or from matching points with --landmarks. Writes the warped "
        "image and a panel: fixed, moving, warped, their difference and the deformation. "
        "With no images, registers geowarp's sample image against a copy warped by a known "
        "transform and reports how well it was recovered."
    )
    parser.add_argument("moving", type=Path, nargs="?", metavar="MOVING")
    parser.add_argument("fixed", type=Path, nargs="?", metavar="FIXED")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("geowarp-output/registered.png"),
        help="the warped image (default: %(default)s)",
    )
    parser.add_argument(
        "--panel",
        type=Path,
        metavar="PATH",
        help="the panel PNG (default: OUTPUT's name + _panel.png)",
    )
    parser.add_argument("--transform", choices=FAMILIES, default="affine")
    parser.add_argument(
        "--loss",
        choices=("mse", "ncc", "mi"),
        default="mse",
        help="mse for images of one brightness, ncc if it changed linearly, mi (mutual "
        "information) for different modalities",
    )
    parser.add_argument("--levels", type=int, default=3, help="pyramid levels (default: 3)")
    parser.add_argument(
        "--landmarks",
        type=Path,
        metavar="FILE",
        help="fit to matching points instead: rows 'x_moving y_moving x_fixed y_fixed' (pixels)",
    )
    parser.add_argument(
        "--transform-out",
        type=Path,
        metavar="FILE",
        help="also write the transform found, for 'geowarp warp' to apply to other images: "
        "the pixel matrix, moving -> fixed (warp --matrix FILE), or a spline's point pairs "
        "(warp --tps-points FILE)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=_register)


def _warp(args: argparse.Namespace) -> None:
    image = read_image(args.image)
    in_shape = image.shape[-2:]
    if args.size is not None and min(args.size) < 1:
        raise GeowarpValueError(f"--size must be positive; got {args.size[0]} {args.size[1]}")
    out_shape = tuple(args.size) if args.size else in_shape
    transform = _warp_transform(args, in_shape, out_shape)
    warped = gw.warp(image[None], transform, out_shape, mode=args.mode, padding=args.padding)
    print(write_image(args.output, warped[0]))


def _warp_transform(args: argparse.Namespace, in_shape: Any, out_shape: Any) -> gw.Transform:
    if args.tps_points is not None:
        rows = _geometry.read_rows(args.tps_points, 4, "--tps-points")
        return _geometry.spline_from_pixels(rows[:, :2], rows[:, 2:], in_shape, out_shape)
    if args.matrix is not None:
        forward = _geometry.parse_matrix(args.matrix)
    else:
        if len(args.scale) not in (1, 2):
            raise GeowarpValueError(f"--scale takes 1 or 2 numbers; got {len(args.scale)}")
        forward = _geometry.motion(
            in_shape, args.rotate, args.scale, args.shear, args.translate, out_shape
        )
    return _geometry.from_forward_pixels(forward, in_shape, out_shape)


def _register(args: argparse.Namespace) -> None:
    if (args.moving is None) != (args.fixed is None):
        raise GeowarpValueError("register takes two images, MOVING and FIXED, or none")
    if args.levels < 1:
        raise GeowarpValueError(f"--levels must be at least 1; got {args.levels}")
    truth = None
    if args.moving is None:
        moving, fixed, truth = _sample_pair(args.transform)
    else:
        moving, fixed = _same_channels(read_image(args.moving), read_image(args.fixed))
    started = time.perf_counter()
    if args.landmarks is not None:
        rows = _geometry.read_rows(args.landmarks, 4, "--landmarks")
        transform = _geometry.fit_pixels(
            args.transform, rows[:, :2], rows[:, 2:], moving.shape[-2:], fixed.shape[-2:]
        )
        warped = gw.warp(moving[None], transform, fixed.shape[-2:])[0]
        summary = f"fitted to {rows.shape[0]} point pairs"
    else:
        result = gw.register(
            moving[None],
            fixed[None],
            args.transform,
            loss=args.loss,
            levels=args.levels,
            progress=not args.quiet,
        )
        transform, warped = result.transform, np.asarray(result.warped)[0]
        summary = f"final {args.loss} {float(np.asarray(result.loss).ravel()[0]):.3g}"
    seconds = time.perf_counter() - started
    print(write_image(args.output, warped))
    panel_path = args.panel or args.output.with_name(args.output.stem + "_panel.png")
    _write_panel(panel_path, fixed, moving, warped, transform)
    print(panel_path)
    if args.transform_out is not None:
        shapes = (moving.shape[-2:], fixed.shape[-2:])
        print(_geometry.write_transform(args.transform_out, transform, *shapes))
    print(_report(transform, moving.shape[-2:], fixed.shape[-2:], summary, seconds, truth))


def _same_channels(moving: Any, fixed: Any) -> tuple[Any, Any]:
    # grey against colour: register in grey (the mean of the colour channels)
    if moving.shape[0] != fixed.shape[0]:
        moving, fixed = (image.mean(axis=0, keepdims=True) for image in (moving, fixed))
    return moving, fixed


def _sample_pair(family: str) -> tuple[Any, Any, gw.Transform]:
    """(moving, fixed, truth): the sample image (grey) and a copy warped by a known transform.

    ``warp(moving, truth) == fixed``: for the matrix families the sample is
    fixed and moving is warped by the inverse; a spline has no closed-form
    inverse, so there the sample is moving and fixed is warped by the truth.
    """
    sample = load_sample()[0].mean(axis=0, keepdims=True)
    truth = _geometry.known_transform(family)
    if family == "tps":
        return sample, np.asarray(gw.warp(sample[None], truth))[0], truth
    return np.asarray(gw.warp(sample[None], truth.inverse()))[0], sample, truth


def _write_panel(path: Path, fixed: Any, moving: Any, warped: Any, transform: Any) -> None:
    difference = np.clip(0.5 + (np.asarray(warped) - fixed).mean(axis=0, keepdims=True), 0, 1)
    lines = _geometry.grid_lines(transform, fixed.shape[-2:], moving.shape[-2:])
    images = [
        ("fixed", fixed),
        ("moving", moving),
        ("warped", warped),
        ("difference", difference),
        ("deformation", draw_grid(moving, lines)),
    ]
    if path.suffix.lower() not in SUFFIXES:
        raise GeowarpValueError(f"--panel must end in one of {', '.join(SUFFIXES)}; got {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    panel(images).save(path)


def _report(
    transform: Any, in_shape: Any, out_shape: Any, summary: str, seconds: float, truth: Any
) -> str:
    lines = [f"{type(transform).__name__} in {seconds:.2f} s ({summary})"]
    if isinstance(transform, gw.Affine | gw.Projective):
        pixels = _geometry.to_forward_pixels(transform, in_shape, out_shape)
        lines.append("pixel matrix, moving -> fixed (OpenCV warpAffine/warpPerspective):")
        lines.extend("  " + "  ".join(f"{v: .6g}" for v in row) for row in pixels.tolist())
    if truth is not None:
        error = _geometry.corner_error(transform, truth, out_shape, in_shape)
        lines.append(f"max corner error against the known transform: {error:.4f} px")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
