"""A minimal spatial transformer: learn to undo random rotations and shifts of a pattern."""

import argparse

import torch
from torch import nn

import geowarp as gw
from geowarp.torch import SpatialTransformer

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--steps", type=int, default=300)
steps = parser.parse_args().steps
torch.manual_seed(0)

# 256 copies of a two-blob pattern (16x16), moved by random rotations (< 29 degrees) and shifts
ys, xs = torch.meshgrid(torch.linspace(-1, 1, 16), torch.linspace(-1, 1, 16), indexing="ij")
pattern = torch.exp(-((xs + 0.2) ** 2 + ys**2) / 0.1) + torch.exp(-((xs - 0.3) ** 2 + ys**2) / 0.03)
angle, shift = 0.5 * (2 * torch.rand(256, 1) - 1), 0.2 * (2 * torch.rand(256, 2, 1) - 1)
rotation = torch.cat([angle.cos(), -angle.sin(), angle.sin(), angle.cos()], 1).reshape(-1, 2, 2)
images = gw.warp(pattern.expand(256, 1, 16, 16), gw.Affine(torch.cat([rotation, shift], dim=2)))

# localisation network -> 6 affine parameters (the head starts at the identity) -> warp
localization = nn.Sequential(nn.Flatten(), nn.Linear(256, 32), nn.Tanh())
stn = SpatialTransformer(localization, "affine", features=32)
optimizer = torch.optim.Adam(stn.parameters(), lr=1e-2)
for step in range(steps + 1):
    loss = (stn(images) - pattern).square().mean()  # straightened images match the pattern
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 100 == 0 or step == steps:
        print(f"step {step:4d}  loss {loss.item():.6f}")
