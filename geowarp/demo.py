"""A small visual demo: the bundled sample image under three kinds of warp.

Run it with ``python -m geowarp.demo [--output PATH]``. It warps the sample
image with an affine map (rotation and scale), a projective map (a
perspective tilt) and a thin-plate spline (the centre of a 3x3 control grid
pushed aside), and saves the four images side by side, labelled, as a PNG.

Only NumPy and Pillow are needed (``pip install "geowarp[demo]"``).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

import geowarp as gw

__all__ = ["load_sample", "main"]

DEFAULT_OUTPUT = Path("demo-output") / "warps.png"

_BACKGROUND = (0.96, 0.96, 0.96)  # what the warps show outside the image
_GAP = 8  # pixels between panels
_LABEL_HEIGHT = 22  # pixels of label strip above each panel


def _require_pillow() -> Any:
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError('the geowarp demo needs Pillow: pip install "geowarp[demo]"') from exc
    return Image


def load_sample() -> NDArray[np.float32]:
    """Load the bundled sample image.

    The image (a checkerboard, concentric rings, a few coloured shapes and the
    word "geowarp") ships with the package, so no download is needed.

    Returns
    -------
    image : numpy.ndarray of shape (1, 3, H, W), float32
        RGB values in [0, 1], channels first as every geowarp sampler expects.

    Examples
    --------
    >>> from geowarp.demo import load_sample
    >>> image = load_sample()
    >>> image.shape, image.dtype
    ((1, 3, 256, 256), dtype('float32'))
    >>> bool(image.min() >= 0.0 and image.max() <= 1.0)
    True
    """
    image_module = _require_pillow()
    resource = resources.files("geowarp").joinpath("data", "sample.png")
    with resource.open("rb") as stream, image_module.open(stream) as picture:
        rgb = np.asarray(picture.convert("RGB"), dtype=np.float32) / np.float32(255.0)
    return np.ascontiguousarray(rgb.transpose(2, 0, 1)[None])


def _affine() -> gw.Affine:
    """Rotate by 25 degrees (clockwise on screen) and shrink to 75 %, about the centre."""
    angle = math.radians(25.0)
    scale = 0.75
    cos, sin = math.cos(angle), math.sin(angle)
    # The matrix maps output points to input points, so it is the inverse of
    # the motion seen on screen: rotate back by the angle and magnify by 1/scale.
    theta = np.array([[cos, sin, 0.0], [-sin, cos, 0.0]]) / scale
    return gw.Affine(theta)


def _homography(source: NDArray[np.float64], target: NDArray[np.float64]) -> NDArray[np.float64]:
    """The 3x3 matrix H with H(target[i]) == source[i] for four point pairs."""
    rows = []
    rhs = []
    for (u, v), (x, y) in zip(source, target, strict=True):
        rows.append([x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y])
        rows.append([0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y])
        rhs.extend([u, v])
    h = np.linalg.solve(np.array(rows), np.array(rhs))
    return np.append(h, 1.0).reshape(3, 3)


def _projective() -> gw.Projective:
    """Tilt the image back: its top edge recedes, as seen in perspective."""
    corners = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    # Where the image corners land in the output (normalized x, y; y points down).
    trapezoid = np.array([[-0.55, -0.75], [0.55, -0.75], [0.95, 0.9], [-0.95, 0.9]])
    return gw.Projective(_homography(corners, trapezoid))


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


def _to_uint8(image: NDArray[Any]) -> NDArray[np.uint8]:
    """(1, 3, H, W) floats in [0, 1] to (H, W, 3) bytes."""
    hwc = np.clip(np.asarray(image)[0].transpose(1, 2, 0), 0.0, 1.0)
    return np.round(hwc * 255.0).astype(np.uint8)


def _side_by_side(panels: Sequence[tuple[str, NDArray[Any]]]) -> Any:
    """Lay out labelled panels in one row, as a Pillow image."""
    image_module = _require_pillow()
    from PIL import ImageDraw

    height = max(panel.shape[-2] for _, panel in panels)
    width = sum(panel.shape[-1] for _, panel in panels) + _GAP * (len(panels) + 1)
    canvas = image_module.new("RGB", (width, height + _LABEL_HEIGHT + _GAP), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    left = _GAP
    for label, panel in panels:
        canvas.paste(image_module.fromarray(_to_uint8(panel)), (left, _LABEL_HEIGHT))
        text_width = draw.textlength(label)
        text_left = left + (panel.shape[-1] - text_width) / 2
        draw.text((text_left, 5), label, fill=(0, 0, 0))
        left += panel.shape[-1] + _GAP
    return canvas


def main(argv: Sequence[str] | None = None) -> Path:
    """Warp the sample image three ways and save the results side by side.

    The output is one PNG: original | affine (rotation and scale) |
    projective (perspective tilt) | thin-plate spline (a pushed control
    point), each with a small label. The path written is printed.

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
    ...     written = path.is_file()
    >>> path.name, written, printed.getvalue() == f"{path}\\n"
    ('warps.png', True, True)
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
    _side_by_side(panels).save(output)
    print(output)
    return output


if __name__ == "__main__":
    main()
