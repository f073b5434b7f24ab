"""
The normalized frame and ``align_corners``
==========================================

The pixel centres of a 4x4 image (dots) and where the normalized coordinates
-1, 0 and +1 fall with ``align_corners=False`` (left: the image edges) and
``align_corners=True`` (right: the corner pixels' centres), as computed by
`geowarp.grid.normalized_to_pixel`.
"""

import numpy as np
from PIL import Image, ImageDraw, ImageFont

import geowarp as gw

SIZE, CELL, MARGIN = 4, 60, 50


def panel(align_corners):
    """Draw the 4x4 pixel grid and the normalized ticks in pixel coordinates."""
    width = SIZE * CELL + 2 * MARGIN
    picture = Image.new("RGB", (width, width), "white")
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default(size=18)

    def to_canvas(pixel):  # pixel coordinates (centres at integers) -> canvas
        return MARGIN + (pixel + 0.5) * CELL

    for i in range(SIZE + 1):  # pixel edges
        edge = MARGIN + i * CELL
        draw.line([(edge, MARGIN), (edge, MARGIN + SIZE * CELL)], fill="lightgrey")
        draw.line([(MARGIN, edge), (MARGIN + SIZE * CELL, edge)], fill="lightgrey")
    for row in range(SIZE):
        for col in range(SIZE):
            x, y = to_canvas(col), to_canvas(row)
            draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill="black")
    ticks = np.array([[-1.0, -1.0], [0.0, 0.0], [1.0, 1.0]])
    pixels = gw.grid.normalized_to_pixel(ticks, (SIZE, SIZE), align_corners=align_corners)
    for (value, _), (px, _) in zip(ticks, pixels, strict=True):
        x = to_canvas(px)
        draw.line([(x, MARGIN - 15), (x, MARGIN + SIZE * CELL + 15)], fill="red", width=2)
        label = f"{value:+.0f}" if value else "0"
        draw.text((x, MARGIN + SIZE * CELL + 18), label, fill="red", font=font, anchor="ma")
    draw.text(
        (width / 2, 12), f"align_corners={align_corners}", fill="black", font=font, anchor="ma"
    )
    return picture


left, right = panel(False), panel(True)
frames = Image.new("RGB", (left.width + right.width, left.height), "white")
frames.paste(left, (0, 0))
frames.paste(right, (left.width, 0))
del left, right  # only the joined picture is shown
