"""Pixel-frame geometry for the command line: motions, matrices and point files, in numpy.

Everything here speaks OpenCV's language (forward maps, input pixel -> output
pixel, pixel centres at integers, ``(x, y)``) and turns it into geowarp's
transforms (output -> input, normalized frame) with `geowarp.grid`'s frames.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

import geowarp as gw

from ._errors import GeowarpValueError
from .grid import normalized_to_pixel, pixel_to_normalized

__all__ = [
    "corner_error",
    "fit_pixels",
    "from_forward_pixels",
    "grid_lines",
    "known_transform",
    "motion",
    "parse_matrix",
    "read_rows",
    "spline_from_pixels",
    "to_forward_pixels",
    "write_transform",
]

Shape = tuple[int, int]


def read_rows(path: Path, columns: int, option: str) -> NDArray[np.float64]:
    """The numbers of a text file as (N, ``columns``): commas or spaces, ``#`` comments.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from geowarp._geometry import read_rows
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = Path(folder) / "points.txt"
    ...     _ = path.write_text("# x y\\n1, 2\\n3 4\\n")
    ...     read_rows(path, 2, "--points").tolist()
    [[1.0, 2.0], [3.0, 4.0]]
    """
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise GeowarpValueError(f"{option}: cannot read {path}: {error}") from None
    return _numbers(text.replace(",", " "), columns, f"{option} file {path}")


def _numbers(text: str, columns: int, what: str) -> NDArray[np.float64]:
    rows = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            rows.append([float(value) for value in line.split()])
        except ValueError:
            raise GeowarpValueError(f"{what}: {line!r} is not a row of numbers") from None
    if not rows or any(len(row) != columns for row in rows):
        raise GeowarpValueError(f"{what}: expected rows of {columns} numbers")
    values = np.array(rows)
    if not np.isfinite(values).all():
        raise GeowarpValueError(f"{what}: every number must be finite")
    return values


def parse_matrix(text: str) -> NDArray[np.float64]:
    """A 3x3 pixel matrix from ``"a,b,c;d,e,f[;g,h,i]"`` or a text file of 2 or 3 rows.

    Examples
    --------
    >>> from geowarp._geometry import parse_matrix
    >>> parse_matrix("1,0,5;0,1,0").tolist()
    [[1.0, 0.0, 5.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    path = Path(text)
    source = path.read_text() if path.is_file() else text.replace(";", "\n")
    lines = [line for line in source.replace(",", " ").splitlines() if line.split("#")[0].strip()]
    matrix = _numbers("\n".join(lines), 3, "--matrix")
    if matrix.shape[0] == 2:
        matrix = np.vstack([matrix, [0.0, 0.0, 1.0]])
    if matrix.shape[0] != 3:
        raise GeowarpValueError(f"--matrix must have 2 or 3 rows; got {matrix.shape[0]}")
    if abs(np.linalg.det(matrix)) <= 1e-12 * max(1.0, float(np.abs(matrix).max()) ** 3):
        raise GeowarpValueError("--matrix is singular: it collapses the image onto a line")
    return matrix


def motion(
    in_shape: Shape,
    rotate: float,
    scale: list[float],
    shear: float,
    translate: list[float],
    out_shape: Shape,
) -> NDArray[np.float64]:
    """The forward pixel matrix of scale, shear, rotation, then translation about the centre.

    The input's centre goes to the output's centre (then shifts by
    ``translate``); positive ``rotate`` turns counter-clockwise on screen.
    """
    sx, sy = (scale[0], scale[0]) if len(scale) == 1 else scale
    if sx == 0 or sy == 0:
        raise GeowarpValueError(f"--scale must not be 0; got {scale}")
    angle, slant = math.radians(rotate), math.tan(math.radians(shear))
    cos, sin = math.cos(angle), math.sin(angle)
    linear = np.array([[cos, sin], [-sin, cos]]) @ np.array([[1.0, slant], [0.0, 1.0]])
    linear = linear @ np.diag([sx, sy])
    centre_in = np.array([(in_shape[1] - 1) / 2, (in_shape[0] - 1) / 2])
    centre_out = np.array([(out_shape[1] - 1) / 2, (out_shape[0] - 1) / 2])
    shift = centre_out + np.asarray(translate) - linear @ centre_in
    return np.vstack([np.hstack([linear, shift[:, None]]), [0.0, 0.0, 1.0]])


def from_forward_pixels(forward: Any, in_shape: Shape, out_shape: Shape) -> gw.Transform:
    """geowarp's transform (output -> input, normalized) of a forward pixel matrix."""
    forward = np.asarray(forward, dtype=np.float64)
    affine = np.allclose(forward[2], [0.0, 0.0, forward[2, 2]], atol=1e-12)
    cls = gw.Affine if affine else gw.Projective
    return cls.from_pixel_matrix(forward / forward[2, 2], in_shape, out_shape)


def to_forward_pixels(transform: Any, in_shape: Shape, out_shape: Shape) -> NDArray[np.float64]:
    """The forward pixel matrix (input -> output) of a matrix transform, H[2, 2] = 1."""
    forward = np.asarray(transform.to_pixel_matrix(in_shape, out_shape), dtype=np.float64)
    forward = forward.reshape(-1, 3, 3)[0]  # a batch of one: its only item
    return forward / forward[2, 2]


def spline_from_pixels(
    input_points: Any, output_points: Any, in_shape: Shape, out_shape: Shape
) -> gw.ThinPlateSpline:
    """The spline moving each input pixel point onto its output point."""
    source = pixel_to_normalized(np.asarray(input_points), in_shape)
    target = pixel_to_normalized(np.asarray(output_points), out_shape)
    return gw.ThinPlateSpline.from_landmarks(source, target)


def write_transform(path: Path, transform: Any, in_shape: Shape, out_shape: Shape) -> Path:
    """Write ``transform`` (output -> input, normalized) as ``geowarp warp`` reads it back.

    A matrix family becomes its forward pixel matrix, input -> output (for
    ``--matrix FILE``); a thin-plate spline becomes rows ``x_in y_in x_out
    y_out`` (pixels) at its target points (for ``--tps-points FILE``), through
    which ``geowarp warp`` fits the same spline. A batch of one is written as
    its item. The first line, a comment, says how to apply it.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> import geowarp as gw
    >>> from geowarp._geometry import parse_matrix, write_transform
    >>> shift = gw.Affine(np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.0]]))
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = write_transform(Path(folder) / "t.txt", shift, (10, 10), (10, 10))
    ...     parse_matrix(str(path)).tolist()  # input pixel x - 2.5 lands at output x
    [[1.0, 0.0, -2.5], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    size = f"--size {out_shape[0]} {out_shape[1]}"
    if isinstance(transform, gw.ThinPlateSpline):
        target = np.asarray(transform.target_points, dtype=np.float64)
        target = target.reshape(-1, *target.shape[-2:])[0]
        source = np.asarray(transform.apply(target), dtype=np.float64).reshape(target.shape)
        rows = np.hstack(
            [normalized_to_pixel(source, in_shape), normalized_to_pixel(target, out_shape)]
        )
        header = (
            "thin-plate spline point pairs, rows 'x_in y_in x_out y_out' (pixels); apply with: "
            f"geowarp warp IMAGE --tps-points FILE {size}"
        )
    else:
        rows = to_forward_pixels(transform, in_shape, out_shape)
        header = (
            f"pixel matrix, input -> output; apply with: geowarp warp IMAGE --matrix FILE {size}"
        )
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savetxt(path, rows, fmt="%.17g", header=header)
    except OSError as error:
        raise GeowarpValueError(f"--transform-out: cannot write {path}: {error}") from None
    return path


def fit_pixels(
    family: str, moving_points: Any, fixed_points: Any, moving_shape: Shape, fixed_shape: Shape
) -> gw.Transform:
    """The ``family`` transform fitted to matching points (pixels), fixed -> moving."""
    source = pixel_to_normalized(np.asarray(moving_points), moving_shape)
    target = pixel_to_normalized(np.asarray(fixed_points), fixed_shape)
    cls = gw.transforms.get_family(family, "--transform")
    fitted = cls.from_estimate(source, target)  # type: ignore[attr-defined]
    if not fitted:
        raise GeowarpValueError(f"--landmarks: {fitted.message}")
    return fitted


def known_transform(family: str) -> gw.Transform:
    """The transform the sample pair of the command line is made with: a small, clear motion."""
    angle = math.radians(6.0)
    cos, sin = math.cos(angle), math.sin(angle)
    affine = np.array([[1.04 * cos, 1.04 * sin, 0.05], [-1.04 * sin, 1.04 * cos, -0.03]])
    if family == "affine":
        return gw.Affine(affine)
    if family == "projective":
        return gw.Projective(np.vstack([affine, [0.06, -0.04, 1.0]]))
    # on the control points `register` fits by default, so that it can recover it exactly
    target = np.asarray(gw.ThinPlateSpline.control_points((4, 4)))
    source = target * 0.97 + np.array([0.02, -0.01])
    source[5] += [0.05, -0.04]  # two inner points pulled aside
    source[10] += [-0.03, 0.04]
    return gw.ThinPlateSpline.from_landmarks(source, target)


def corner_error(transform: Any, truth: Any, out_shape: Shape, in_shape: Shape) -> float:
    """Largest distance (input pixels) between where the two map the output's corner pixels."""
    height, width = out_shape
    corners = np.array([[0, 0], [width - 1, 0], [0, height - 1], [width - 1, height - 1]], float)
    normalized = pixel_to_normalized(corners, out_shape)
    mapped = [
        normalized_to_pixel(np.asarray(t.apply(normalized), dtype=np.float64), in_shape)
        for t in (transform, truth)
    ]
    return float(np.linalg.norm(mapped[0] - mapped[1], axis=-1).max())


def grid_lines(transform: Any, out_shape: Shape, in_shape: Shape, count: int = 9) -> list[Any]:
    """Lines of a regular grid over the output, mapped into input pixels: (N, 2) each."""
    height, width = out_shape
    along = np.linspace(0.0, 1.0, 65)
    lines = []
    for fraction in np.linspace(0.0, 1.0, count):
        lines.append(
            np.stack([along * (width - 1), np.full_like(along, fraction * (height - 1))], 1)
        )
        lines.append(
            np.stack([np.full_like(along, fraction * (width - 1)), along * (height - 1)], 1)
        )
    points = pixel_to_normalized(np.concatenate(lines), out_shape)
    mapped = normalized_to_pixel(np.asarray(transform.apply(points), dtype=np.float64), in_shape)
    return np.split(mapped.reshape(-1, 2), len(lines))  # a batch of one: its only item
