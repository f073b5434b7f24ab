"""Image files and picture panels for the command line and the demo (Pillow, numpy).

Images come in as float32 arrays (C, H, W) with values in [0, 1], whatever the
file held (8- or 16-bit, grey, grey with alpha, RGB, RGBA, float TIFF), and go
out as 8-bit PNG, JPEG or TIFF, the format chosen by the file's extension.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._errors import GeowarpValueError

__all__ = ["SUFFIXES", "draw_grid", "load_sample", "panel", "read_image", "write_image"]

SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
"""The file types read and written, by extension."""

_GAP = 8  # pixels between panels
_LABEL_HEIGHT = 22  # pixels of label strip above each panel


def read_image(path: str | Path) -> NDArray[np.float32]:
    """The image in ``path`` as float32 (C, H, W) in [0, 1]: 1 channel for grey, 3 for colour.

    Alpha is dropped. Raises `GeowarpValueError` for a file that is missing or
    not an image Pillow can read, naming the file.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from geowarp._images import read_image, write_image
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = Path(folder) / "grey.png"
    ...     _ = write_image(path, np.full((1, 2, 3), 0.5, dtype=np.float32))
    ...     read_image(path).shape
    (1, 2, 3)
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as picture:
            picture.load()
            return _as_float(picture)
    except FileNotFoundError:
        raise GeowarpValueError(f"cannot read {path}: no such file") from None
    except (UnidentifiedImageError, OSError) as error:
        raise GeowarpValueError(f"cannot read {path} as an image: {error}") from None


def _as_float(picture: Any) -> NDArray[np.float32]:
    mode = picture.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        scale = 65535.0 if mode.startswith("I;16") or np.asarray(picture).max() > 255 else 255.0
        values = np.asarray(picture, dtype=np.float32)[None] / np.float32(scale)
    elif mode == "F":
        values = np.asarray(picture, dtype=np.float32)[None]
    elif mode in ("1", "L", "LA", "P") and _is_grey(picture):
        values = np.asarray(picture.convert("L"), dtype=np.float32)[None] / np.float32(255.0)
    else:
        rgb = np.asarray(picture.convert("RGB"), dtype=np.float32) / np.float32(255.0)
        values = rgb.transpose(2, 0, 1)
    return np.ascontiguousarray(np.clip(values, 0.0, 1.0), dtype=np.float32)


def _is_grey(picture: Any) -> bool:
    if picture.mode != "P":
        return True
    rgb = np.asarray(picture.convert("RGB"))
    return bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())


def write_image(path: str | Path, image: Any) -> Path:
    """Write ``image`` (C, H, W) with values in [0, 1] (clipped) as 8-bit PNG, JPEG or TIFF.

    Folders are created. Raises `GeowarpValueError` for an unknown extension.
    Returns the path written.
    """
    from PIL import Image

    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise GeowarpValueError(
            f"cannot write {path}: the extension must be one of {', '.join(SUFFIXES)}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(_to_uint8(image)).save(path)
    return path


def _to_uint8(image: Any) -> NDArray[np.uint8]:
    """(C, H, W) (or (1, C, H, W)) floats in [0, 1] to (H, W) or (H, W, 3) bytes."""
    values = np.asarray(image, dtype=np.float64)
    if values.ndim == 4:
        values = values[0]
    values = np.nan_to_num(np.clip(values, 0.0, 1.0))
    out = np.round(values * 255.0).astype(np.uint8)
    return out[0] if out.shape[0] == 1 else out[:3].transpose(1, 2, 0)


def panel(panels: Sequence[tuple[str, Any]], font_size: int | None = None) -> Any:
    """Labelled images (C, H, W) side by side in one row, as a Pillow RGB image.

    ``font_size`` chooses a scalable font for the labels (Pillow's small
    bitmap font when None).

    Examples
    --------
    >>> import numpy as np
    >>> from geowarp._images import panel
    >>> panel([("a", np.zeros((1, 4, 5))), ("b", np.ones((3, 6, 2)))]).size
    (31, 36)
    """
    from PIL import Image, ImageDraw, ImageFont

    font = None if font_size is None else ImageFont.load_default(size=font_size)
    label_height = _LABEL_HEIGHT if font_size is None else font_size + 12
    height = max(np.shape(image)[-2] for _, image in panels)
    width = sum(np.shape(image)[-1] for _, image in panels) + _GAP * (len(panels) + 1)
    canvas = Image.new("RGB", (width, height + label_height + _GAP), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    left = _GAP
    for label, image in panels:
        canvas.paste(Image.fromarray(_to_uint8(image)).convert("RGB"), (left, label_height))
        text_left = left + (np.shape(image)[-1] - draw.textlength(label, font=font)) / 2
        draw.text((text_left, 5), label, fill=(0, 0, 0), font=font)
        left += np.shape(image)[-1] + _GAP
    return canvas


def draw_grid(image: Any, lines: Sequence[Any], colour: Sequence[float] = (1.0, 0.2, 0.2)) -> Any:
    """``image`` (C, H, W) in RGB with polylines drawn on it: each line (N, 2) pixel (x, y).

    Used to show a deformation: the lines of a regular grid in the output,
    mapped by the transform into the input image.
    """
    from PIL import Image, ImageDraw

    canvas = Image.fromarray(_to_uint8(image)).convert("RGB")
    draw = ImageDraw.Draw(canvas)
    fill = tuple(round(255 * c) for c in colour)
    for line in lines:
        points = [tuple(point) for point in np.asarray(line, dtype=np.float64).tolist()]
        if all(np.isfinite(points).ravel()):
            draw.line(points, fill=fill, width=1)
    rgb = np.asarray(canvas, dtype=np.float32) / np.float32(255.0)
    return rgb.transpose(2, 0, 1)


def load_sample() -> NDArray[np.float32]:
    """The bundled sample image as float32 (1, 3, 256, 256) in [0, 1].

    A checkerboard, concentric rings, a few coloured shapes and the word
    "geowarp"; it ships with the package, so no download is needed.

    Examples
    --------
    >>> from geowarp._images import load_sample
    >>> load_sample().shape
    (1, 3, 256, 256)
    """
    from PIL import Image

    resource = resources.files("geowarp").joinpath("data", "sample.png")
    with resource.open("rb") as stream, Image.open(stream) as picture:
        rgb = np.asarray(picture.convert("RGB"), dtype=np.float32) / np.float32(255.0)
    return np.ascontiguousarray(rgb.transpose(2, 0, 1)[None])
