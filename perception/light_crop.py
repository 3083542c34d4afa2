"""The light read where its heads are: crops of the camera image around the governing
light's two heads, placed by the known map (:attr:`.config.FusionConfig.light_crop`).

The pooled light head (:mod:`.heads`) must find the colour somewhere in the image and
tell whose light it is; at a town's stop line its own far head is a green block of a few
pixels beside the red heads of the other approaches, and the pooled head reads red there.
A stack on the CARLA leaderboard's map track knows where each light stands, as HD-map
traffic-light pipelines do: it projects the heads' known positions into the image
(:func:`pilot.perception.labels.light_heads`, in the ego frame, through the camera's
calibration) and classifies the crops. Here each head's window is square, centred on
the projected centre, its half side the head's half height times ``SCALE`` in pixels at
its depth (at least ``MIN_HALF`` pixels); ``grid_sample`` resamples it to ``SIZE × SIZE``.
A head behind the camera, or whose centre falls outside the image, is not visible: its
features are zeros and a visibility input says so (the near head, 3.5 m up beside the
line, leaves the top of the image in the last metres before it, where the car waits and
sees only the far head).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pilot.envs.driving.signals import LAMP_HALF, NEAR_HALF

#: half heights (m) of the near head and of the far head's lamp, the rows of light_heads
HALF_HEIGHTS = (NEAR_HALF[2], LAMP_HALF[2])
SCALE = 1.5  # a window's half side over the head's half height
MIN_HALF = 2.0  # pixels
SIZE = 12  # pixels of a resampled crop's side
FEATURES = 32


def windows(
    heads: torch.Tensor,
    intrinsics: torch.Tensor,
    extrinsics: torch.Tensor,
    image_hw: tuple[int, int],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(centres, halves, visible)`` of the heads' windows: ``heads`` ``(B, 2, 3)`` ego-frame
    centres (NaN: no light) → pixel centres ``(B, 2, 2)`` as ``(u, v)``, half sides
    ``(B, 2)`` in pixels and visibility ``(B, 2)`` bool."""
    h, w = image_hw
    rot, t = extrinsics[:3, :3], extrinsics[:3, 3]
    cam = (heads - t) @ rot  # ego → camera (x right, y down, z ahead)
    z = cam[..., 2]
    safe = torch.where(z > 0.5, z, torch.ones_like(z))
    u = intrinsics[0, 0] * cam[..., 0] / safe + intrinsics[0, 2]
    v = intrinsics[1, 1] * cam[..., 1] / safe + intrinsics[1, 2]
    visible = (z > 0.5) & (u >= -0.5) & (u <= w - 0.5) & (v >= -0.5) & (v <= h - 0.5)
    visible &= torch.isfinite(cam).all(-1)
    size = heads.new_tensor(HALF_HEIGHTS) * SCALE
    halves = (intrinsics[1, 1] * size / safe).clamp(min=MIN_HALF)
    centres = torch.stack([u, v], dim=-1).nan_to_num(0.0)
    return centres, halves.nan_to_num(MIN_HALF), visible


def crop(
    image: torch.Tensor, centres: torch.Tensor, halves: torch.Tensor, visible: torch.Tensor
) -> torch.Tensor:
    """The windows of :func:`windows` cut from ``image`` ``(B, C, H, W)`` and resampled
    bilinearly: ``(B, 2, C, SIZE, SIZE)``; an invisible window reads zeros."""
    b, c, h, w = image.shape
    n = centres.shape[1]
    steps = (torch.arange(SIZE, dtype=image.dtype, device=image.device) + 0.5) / SIZE * 2 - 1
    # pixel u's centre is at normalised (u + 0.5) / w * 2 - 1 (align_corners=False)
    cx = (centres[..., 0] + 0.5) / w * 2 - 1
    cy = (centres[..., 1] + 0.5) / h * 2 - 1
    gx = cx[..., None, None] + steps[None, None, None, :] * (halves * 2 / w)[..., None, None]
    gy = cy[..., None, None] + steps[None, None, :, None] * (halves * 2 / h)[..., None, None]
    grid = torch.stack(torch.broadcast_tensors(gx, gy), dim=-1)  # (B, n, SIZE, SIZE, 2)
    grid = torch.where(visible[..., None, None, None], grid, torch.full_like(grid, -4.0))
    out = F.grid_sample(
        image,
        grid.reshape(b, n * SIZE, SIZE, 2).to(image.dtype),
        mode="bilinear",
        padding_mode="zeros",
        align_corners=False,
    )
    return out.reshape(b, c, n, SIZE, SIZE).transpose(1, 2)


class LightCrops(nn.Module):
    """Normalised image ``(B, 3, H, W)`` and the heads' ego-frame centres ``(B, 2, 3)`` →
    light logits ``(B, states)``: one small CNN shared by both crops (average and max
    pooled), its features zeroed for an invisible head, the two heads' features and
    visibilities into a two-layer classifier."""

    def __init__(self, geometry, states: int) -> None:
        super().__init__()
        self.image_hw = geometry.image_hw
        self.register_buffer("K", torch.tensor(geometry.camera_K).float(), persistent=False)
        self.register_buffer("T", torch.tensor(geometry.camera_T).float(), persistent=False)
        half = FEATURES // 2
        self.cnn = nn.Sequential(
            nn.Conv2d(3, half, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(half, half, 3, stride=2, padding=1),
            nn.ReLU(inplace=True),
        )
        self.classify = nn.Sequential(
            nn.Linear(2 * (FEATURES + 1), 64), nn.ReLU(inplace=True), nn.Linear(64, states)
        )

    def forward(self, image: torch.Tensor, heads: torch.Tensor) -> torch.Tensor:
        centres, halves, visible = windows(heads.float(), self.K, self.T, self.image_hw)
        patches = crop(image, centres, halves, visible)
        b, n = patches.shape[:2]
        x = self.cnn(patches.flatten(0, 1))
        feats = torch.cat([x.mean((2, 3)), x.amax((2, 3))], dim=1).reshape(b, n, FEATURES)
        seen = visible.to(feats.dtype)[..., None]
        return self.classify(torch.cat([feats * seen, seen], dim=-1).flatten(1))
