"""
A spatial transformer learns to recentre
========================================

A tiny `geowarp.torch.SpatialTransformer` (affine) sees 32x32 glyphs drawn
with Pillow, each shifted and turned at random, and learns in a few seconds
to warp them back upright and centred: its loss is the distance between its
output and the upright glyph. Rows: the inputs, the STN's outputs before
training (the identity, as its head starts there), after training, and the
upright glyphs it aims for.
"""

import math

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

import geowarp as gw
from geowarp.torch import SpatialTransformer

torch.manual_seed(0)
torch.set_num_threads(1)  # a model this small runs fastest on one thread
SIZE = 32


def glyph(letter):
    """One upright letter, white on black, as a (1, SIZE, SIZE) tensor in [0, 1]."""
    picture = Image.new("L", (SIZE, SIZE), 0)
    font = ImageFont.load_default(size=22)
    ImageDraw.Draw(picture).text((SIZE / 2, SIZE / 2), letter, fill=255, font=font, anchor="mm")
    return torch.tensor(np.asarray(picture, dtype=np.float32) / 255)[None]


GLYPHS = torch.stack([glyph(letter) for letter in "FGLPR"])  # (5, 1, 32, 32)


def batch(size):
    """Random glyphs under random turns (up to 40 degrees) and shifts, and the upright ones."""
    upright = GLYPHS[torch.randint(len(GLYPHS), (size,))]
    angle = (torch.rand(size) * 2 - 1) * math.radians(40)
    shift = (torch.rand(size, 2) * 2 - 1) * 0.3
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], -1), torch.stack([sin, cos, shift[:, 1]], -1)], 1
    )
    return gw.warp(upright, gw.Affine(theta)), upright


localization = torch.nn.Sequential(
    torch.nn.Flatten(), torch.nn.Linear(SIZE * SIZE, 64), torch.nn.Tanh()
)
stn = SpatialTransformer(localization, "affine")
shown, shown_upright = batch(8)
with torch.no_grad():
    before = stn(shown)

# %%
# A few hundred Adam steps on fresh batches: a few seconds on a CPU.
optimizer = torch.optim.Adam(stn.parameters(), lr=3e-3)
for step in range(400):
    inputs, upright = batch(64)
    loss = (stn(inputs) - upright).square().mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 100 == 0:
        print(f"step {step}: loss {loss.item():.4f}")
with torch.no_grad():
    after = stn(shown)


def grid_picture(rows, scale=3):
    """Rows of (N, 1, SIZE, SIZE) tensors, each labelled on its left, enlarged."""
    font = ImageFont.load_default(size=15)
    label_width, cell = 170, SIZE * scale + 4
    picture = Image.new("RGB", (label_width + len(rows[0][1]) * cell, len(rows) * cell), "white")
    draw = ImageDraw.Draw(picture)
    for r, (label, images) in enumerate(rows):
        draw.text((6, r * cell + cell / 2), label, fill="black", font=font, anchor="lm")
        for c, image in enumerate(images.clamp(0, 1)):
            tile = Image.fromarray((image[0].numpy() * 255).astype(np.uint8))
            tile = tile.resize((SIZE * scale, SIZE * scale), Image.Resampling.NEAREST)
            picture.paste(tile, (label_width + c * cell + 2, r * cell + 2))
    return picture


learned = grid_picture(
    [
        ("inputs", shown),
        ("STN before training", before),
        ("STN after training", after),
        ("upright (the aim)", shown_upright),
    ]
)
