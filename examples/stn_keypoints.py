"""A spatial transformer trained on keypoints, whose predicted transform maps keypoints.

Each image shows a pattern moved by a random rotation, scale and shift, and
comes with the pixel positions of three landmarks. The STN predicts a
transform ``T`` that maps OUTPUT points to INPUT points (geowarp's convention,
as for ``affine_grid``), and ``warp(image, T)`` straightens the image. So:

* ``T.apply(canonical landmarks)`` says where the landmarks should be found
  in the input image: comparing it with the annotated positions is the
  training loss (no pixel loss at all);
* ``T.inverse().apply(annotated landmarks)`` carries annotations from the
  input image into the straightened output, e.g. to draw them on it.

Run ``python examples/stn_keypoints.py --steps 300``.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

import geowarp as gw
from geowarp.grid import normalized_to_pixel, pixel_to_normalized
from geowarp.torch import SpatialTransformer

SIZE = 24
# landmarks of the canonical pattern, in its normalized frame: two blob centres and a bar end
LANDMARKS = torch.tensor([[-0.3, -0.3], [0.35, 0.1], [-0.2, 0.5]])


def canonical_pattern() -> torch.Tensor:
    """Blobs at the first two landmarks and a bar ending at the third: (1, 1, SIZE, SIZE)."""
    axis = torch.linspace(-1 + 1 / SIZE, 1 - 1 / SIZE, SIZE)  # pixel centres, align_corners=False
    ys, xs = torch.meshgrid(axis, axis, indexing="ij")
    image = torch.zeros(SIZE, SIZE)
    for (x, y), sigma in zip(LANDMARKS[:2].tolist(), (0.15, 0.1), strict=True):
        image += torch.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2))
    bar_x, bar_y = LANDMARKS[2].tolist()
    image += torch.exp(-((xs - bar_x) ** 2) / 0.005) * ((ys > -0.1) & (ys < bar_y)).float()
    return image[None, None]


def random_motions(count: int) -> gw.Affine:
    """Rotations up to 0.6 rad, scales 0.85 to 1.15 and shifts up to 0.15 (output -> input)."""
    angle = 0.6 * (2 * torch.rand(count) - 1)
    scale = 1 + 0.15 * (2 * torch.rand(count) - 1)
    shift = 0.15 * (2 * torch.rand(count, 2) - 1)
    cos, sin = scale * torch.cos(angle), scale * torch.sin(angle)
    rows = [torch.stack([cos, -sin, shift[:, 0]], -1), torch.stack([sin, cos, shift[:, 1]], -1)]
    return gw.Affine(torch.stack(rows, dim=-2))


def make_dataset(count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Moved patterns (count, 1, SIZE, SIZE) and their landmarks in pixels (count, 3, 2)."""
    motion = random_motions(count)
    images = gw.warp(canonical_pattern().expand(count, -1, -1, -1), motion)
    # the motion takes output points to input points; a landmark of the pattern (the input)
    # therefore shows in the moved image (the output) where the inverse motion takes it
    landmarks = motion.inverse().apply(LANDMARKS)
    return images, normalized_to_pixel(landmarks, (SIZE, SIZE))


def landmark_loss(transform: gw.Transform, landmarks_px: torch.Tensor) -> torch.Tensor:
    """Squared distance, in normalized units, between predicted and annotated landmarks."""
    predicted = transform.apply(LANDMARKS)  # where the straightened output's landmarks come from
    annotated = pixel_to_normalized(landmarks_px, (SIZE, SIZE))
    return (predicted - annotated).square().sum(-1).mean()


def landmark_error_px(transform: gw.Transform, landmarks_px: torch.Tensor) -> float:
    """Mean distance in output pixels between annotations carried into the output and the ideal."""
    carried = transform.inverse().apply(pixel_to_normalized(landmarks_px, (SIZE, SIZE)))
    error = normalized_to_pixel(carried, (SIZE, SIZE)) - normalized_to_pixel(
        LANDMARKS, (SIZE, SIZE)
    )
    return float(error.norm(dim=-1).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description="STN trained on and applied to keypoints")
    parser.add_argument("--steps", type=int, default=300, help="training steps")
    steps = parser.parse_args().steps
    torch.manual_seed(0)
    images, landmarks_px = make_dataset(512)
    test_images, test_landmarks_px = make_dataset(128)

    localization = nn.Sequential(nn.Flatten(), nn.Linear(SIZE * SIZE, 64), nn.Tanh())
    stn = SpatialTransformer(localization, "affine", features=64)
    optimizer = torch.optim.Adam(stn.parameters(), lr=3e-3)
    for step in range(steps + 1):
        batch = torch.randint(0, len(images), (64,))
        _, transform = stn(images[batch], return_transform=True)
        loss = landmark_loss(transform, landmarks_px[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 100 == 0 or step == steps:
            print(f"step {step:4d}  landmark loss {loss.item():.5f}")

    with torch.no_grad():
        aligned, transform = stn(test_images, return_transform=True)
        untouched = gw.Affine.identity((len(test_images),), like=test_images)
        before = landmark_error_px(untouched, test_landmarks_px)
        after = landmark_error_px(transform, test_landmarks_px)
        image_error = (aligned - canonical_pattern()).square().mean().item()
    print(f"held-out landmark error: {before:.2f} px unaligned, {after:.2f} px after the STN")
    print(f"held-out image error (MSE to the pattern) after the STN: {image_error:.5f}")


if __name__ == "__main__":
    main()
