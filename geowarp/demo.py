"""A small visual demo: the bundled sample image under three kinds of warp.

Run it with ``python -m geowarp.demo [--output PATH]``. It warps the sample
image with an affine map (rotation and scale), a projective map (a
perspective tilt) and a thin-plate spline (the centre of a 3x3 control grid
pushed aside), and saves the four images side by side, labelled, as a PNG.
Then it registers the sample image against a copy under a known homography
(``geowarp register`` on the sample pair) and prints how well it recovered it.

Only NumPy and Pillow are needed: no framework.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

import geowarp as gw

from . import cli
from ._images import load_sample, panel

__all__ = ["load_sample", "main", "side_by_side", "square_photo"]

DEFAULT_OUTPUT = Path("demo-output") / "warps.png"

_BACKGROUND = (0.96, 0.96, 0.96)  # what the warps show outside the image


def square_photo(rgb: Any, size: int) -> NDArray[np.float64]:
    """The central square of a (H, W, 3) uint8 photograph as (1, 3, size, size) in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from geowarp.demo import square_photo
    >>> square_photo(np.zeros((30, 40, 3), dtype=np.uint8), 16).shape
    (1, 3, 16, 16)
    """
    from PIL import Image

    side = min(rgb.shape[:2])
    top, left = (rgb.shape[0] - side) // 2, (rgb.shape[1] - side) // 2
    square = Image.fromarray(np.asarray(rgb)[top : top + side, left : left + side])
    picture = square.resize((size, size), Image.Resampling.LANCZOS)
    return (np.asarray(picture, dtype=np.float64) / 255).transpose(2, 0, 1)[None]


def side_by_side(panels: Sequence[tuple[str, Any]], font_size: int = 18) -> Any:
    """``(label, image)`` pairs in one labelled row, as a Pillow image.

    Images are (1, C, H, W) or (C, H, W) with values in [0, 1] (clipped).

    Examples
    --------
    >>> import numpy as np
    >>> from geowarp.demo import side_by_side
    >>> side_by_side([("a", np.zeros((1, 3, 8, 8))), ("b", np.ones((1, 1, 8, 8)))]).size
    (40, 46)
    """
    return panel(panels, font_size=font_size)


def _affine() -> gw.Affine:
    """Rotate by 25 degrees (clockwise on screen) and shrink to 75 %, about the centre."""
    angle = math.radians(25.0)
    scale = 0.75
    cos, sin = math.cos(angle), math.sin(angle)
    # The matrix maps output points to input points, so it is the inverse of
    # the motion seen on screen: rotate back by the angle and magnify by 1/scale.
    theta = np.array([[cos, sin, 0.0], [-sin, cos, 0.0]]) / scale
    return gw.Affine(theta)


def _projective() -> gw.Projective:
    """Tilt the image back: its top edge recedes, as seen in perspective."""
    corners = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    # Where the image corners land in the output (normalized x, y; y points down).
    trapezoid = np.array([[-0.55, -0.75], [0.55, -0.75], [0.95, 0.9], [-0.95, 0.9]])
    tilt = gw.Projective.from_estimate(corners, trapezoid)  # tilt(trapezoid) == corners
    assert isinstance(tilt, gw.Projective)  # four corners in general position
    return tilt


def _thin_plate_spline() -> gw.ThinPlateSpline:
    """A 3x3 control grid whose centre is pushed up and to the left."""
    ticks = np.array([-1.0, 0.0, 1.0])
    xs, ys = np.meshgrid(ticks, ticks)
    target = np.stack([xs.ravel(), ys.ravel()], axis=-1)
    source = target.copy()
    # The output centre samples the input at (0.3, 0.25): the content there
    # (below right of the centre) is pulled to the middle, stretching the rings.
    source[4] = [0.3, 0.25]
    return gw.ThinPlateSpline.from_landmarks(source, target)


def main(argv: Sequence[str] | None = None) -> Path:
    """Warp the sample image three ways, then register it against a warped copy.

    The first output is one PNG: original | affine (rotation and scale) |
    projective (perspective tilt) | thin-plate spline (a pushed control
    point), each with a small label. Then ``geowarp register`` runs on the
    sample pair (the sample image and a copy under a known homography): it
    writes the registered image and its panel (fixed, moving, warped,
    difference, deformation) next to the first PNG and prints the recovered
    transform and its corner error. The paths written are printed.

    Parameters
    ----------
    argv : sequence of str, optional
        Command-line arguments without the program name; ``sys.argv[1:]``
        when omitted. ``--output PATH`` sets where the PNG goes (default
        ``demo-output/warps.png``); missing folders are created.

    Returns
    -------
    path : pathlib.Path
        The PNG written.

    Examples
    --------
    >>> import io
    >>> import tempfile
    >>> from contextlib import redirect_stdout
    >>> from pathlib import Path
    >>> from geowarp.demo import main
    >>> with tempfile.TemporaryDirectory() as tmp, redirect_stdout(io.StringIO()) as printed:
    ...     path = main(["--output", str(Path(tmp) / "demo" / "warps.png")])
    ...     written = sorted(p.name for p in path.parent.iterdir())
    >>> path.name, written
    ('warps.png', ['registered.png', 'registered_panel.png', 'warps.png'])
    >>> "max corner error" in printed.getvalue()
    True
    """
    parser = argparse.ArgumentParser(
        prog="python -m geowarp.demo",
        description="Warp geowarp's sample image (affine, projective, thin-plate spline) "
        "and save the results side by side as a PNG.",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help=f"where to write the PNG (default: {DEFAULT_OUTPUT})",
    )
    args = parser.parse_args(argv)

    image = load_sample()
    fill = np.asarray(_BACKGROUND, dtype=image.dtype)
    panels: list[tuple[str, NDArray[Any]]] = [("original", image)]
    for label, transform in (
        ("affine", _affine()),
        ("projective", _projective()),
        ("thin-plate spline", _thin_plate_spline()),
    ):
        warped = gw.warp(image, transform, padding="constant", fill_value=fill)
        panels.append((label, np.asarray(warped)))

    output: Path = args.output
    output.parent.mkdir(parents=True, exist_ok=True)
    panel([(label, image[0]) for label, image in panels]).save(output)
    print(output)
    registered = output.parent / "registered.png"
    if cli.main(["register", "--transform", "projective", "-o", str(registered), "--quiet"]):
        raise RuntimeError("the registration demo failed (see the message above)")
    return output


if __name__ == "__main__":
    main()
