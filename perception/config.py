"""The fusion network's config and presets, without torch (the CLI reads them to check
arguments before anything heavy loads)."""

from __future__ import annotations

import dataclasses
from typing import Literal

from pilot.config import field

MODALITIES = ("camera", "lidar", "camera+lidar")


@dataclasses.dataclass(frozen=True)
class FusionConfig:
    """Shape of the fusion network (the ``small`` preset's values are the defaults)."""

    modalities: Literal["camera", "lidar", "camera+lidar"] = field(
        "camera+lidar", "which sensors the network reads: camera, lidar or camera+lidar"
    )
    bev_stride: int = field(
        2, "label cells per BEV feature cell (2: 64 × 64 features on the 128 × 128 grid)"
    )
    channels: int = field(32, "BEV feature channels (each branch and the fused map)")
    camera_widths: tuple[int, ...] = field(
        (16, 32, 48), "channels of the camera CNN's three stride-2 stages"
    )
    heights: tuple[float, ...] = field(
        (0.0, 1.0, 2.0), "heights (m) above each BEV cell at which the image is sampled"
    )
    head_channels: int = field(32, "hidden channels of every BEV head")
    waypoints: bool = field(True, "predict the route waypoints (a head on the fused BEV)")
    max_objects: int = field(64, "most objects per frame the object targets hold")
    min_sigma: float = field(1.0, "smallest Gaussian radius (feature cells) of a centre peak")
    light_grid: tuple[int, int] = field(
        (3, 4),
        "rows × columns of the grid the light head pools the camera features to (average "
        "and max per cell), so it knows where a colour is; (1, 1) pools the whole image",
    )
    light_channels: int = field(
        16, "channels the light head reduces the camera features to (1 × 1) before pooling"
    )
    light_crop: bool = field(
        False,
        "read the light from crops of the image around its two heads, placed by the known "
        "map (needs the camera and a dataset that records light_heads), instead of the "
        "pooled camera features",
    )

    def __post_init__(self) -> None:
        if self.modalities not in MODALITIES:
            raise ValueError(f"modalities must be one of {list(MODALITIES)}")
        if self.bev_stride not in (1, 2, 4):
            raise ValueError("bev_stride must be 1, 2 or 4")
        if self.channels < 1 or self.head_channels < 1 or self.max_objects < 1:
            raise ValueError("channels, head_channels and max_objects must be positive")
        if len(self.camera_widths) != 3 or min(self.camera_widths) < 1:
            raise ValueError("camera_widths needs three positive widths")
        if not self.heights:
            raise ValueError("heights needs at least one height")
        if len(self.light_grid) != 2 or min(self.light_grid) < 1 or self.light_channels < 1:
            raise ValueError("light_grid needs two positive sizes, light_channels must be positive")
        if self.light_crop and not self.uses_camera:
            raise ValueError("light_crop needs the camera: modalities camera or camera+lidar")

    @property
    def uses_camera(self) -> bool:
        return "camera" in self.modalities

    @property
    def uses_lidar(self) -> bool:
        return "lidar" in self.modalities


#: the presets; ``small`` trains on two CPU cores in minutes, ``gpu`` is wider and finer
PRESETS = {
    "small": FusionConfig(),
    "gpu": FusionConfig(
        bev_stride=1, channels=64, camera_widths=(32, 64, 128), head_channels=64, max_objects=96
    ),
}
