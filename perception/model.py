"""The camera-lidar fusion network: camera and lidar features meet in the BEV grid.

Layout (BEVFusion's pattern, Liu et al. 2023: each sensor is brought into the same BEV grid
on its own, then the grids are concatenated and mixed by convolutions):

* **camera branch**: a small CNN (three stride-2 stages, the last one upsampled and added
  back, so features keep a 4-pixel stride with a wider view) on the ``H × W`` image;
  :class:`CameraToBEV` places its features on the BEV grid;
* **lidar branch**: convolutions on TransFuser's two-band lidar histogram (Chitta et al.
  2022), brought to the same BEV resolution;
* **fusion**: concatenation + convolutions, with one stride-2 stage for a wider view;
* **heads** (:mod:`.heads`): semantic segmentation, CenterNet objects, the light, waypoints.

**Camera to BEV.** Every BEV feature cell's centre is projected into the image at a few
heights above the ground (0, 1 and 2 m by default) with the camera's calibration from the
dataset (:func:`.sensors.project`), and the feature map is read there by ``grid_sample``;
the heights go to separate channels, so the network sees a column of image evidence above
each cell and learns which height matters (the road at 0 m, a car's body at 1 m). The
sampling grid is computed once from the calibration; cells behind the camera or outside
the image read zeros and a visibility channel says which. This is the fixed-geometry
"inverse perspective" family (OFT, Roddick et al. 2018; Simple-BEV, Harley et al. 2023)
rather than lift-splat (Philion & Fidler 2020), which predicts a depth distribution per
pixel and scatters features into voxels: here the geometry is exact and known, nothing
has to learn depth (no depth supervision, nothing to go wrong early in training), and the
cost is one bilinear gather, cheap on a CPU.

The one switch :attr:`FusionConfig.modalities` picks ``camera``, ``lidar`` or both; the same
code runs on CUDA and on the CPU.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import MODALITIES, PRESETS, FusionConfig  # noqa: F401 - re-exported
from .grid import GridConfig
from .sensors import project


@dataclasses.dataclass(frozen=True)
class Geometry:
    """What the network needs to know about a dataset: the camera's calibration, the
    image size, the BEV grid and the label sets (read from the manifest; saved with a
    checkpoint, so the same network is rebuilt from it)."""

    camera_K: tuple[tuple[float, ...], ...]
    camera_T: tuple[tuple[float, ...], ...]
    image_hw: tuple[int, int]
    grid: GridConfig
    grid_classes: tuple[str, ...] = ("road", "marking", "vehicle", "pedestrian", "static")
    box_classes: tuple[str, ...] = ("vehicle", "pedestrian", "static")
    box_ids: tuple[int, ...] = (5, 6, 7)  # their ids in the world's CLASS_NAMES
    light_states: tuple[str, ...] = ("none", "green", "yellow", "red")
    waypoints: int = 6

    @classmethod
    def from_manifest(cls, manifest: dict) -> Geometry:
        cal, cfg, classes = manifest["calibration"], manifest["config"], manifest["classes"]
        return cls.from_dict(
            {
                **cal,
                "image_hw": [cfg["camera"]["height"], cfg["camera"]["width"]],
                "grid": cfg["labels"]["grid"],
                "grid_classes": classes["grid"],
                "box_classes": classes["box"],
                "box_ids": [classes["names"].index(n) for n in classes["box"]],
                "light_states": classes["light"],
                "waypoints": cfg["labels"]["waypoints"],
            }
        )

    def as_dict(self) -> dict:
        out = dataclasses.asdict(self)
        return json.loads(json.dumps(out))  # tuples → lists, as it reads back from JSON

    @classmethod
    def from_dict(cls, d: dict) -> Geometry:
        return cls(
            camera_K=tuple(tuple(float(v) for v in r) for r in d["camera_K"]),
            camera_T=tuple(tuple(float(v) for v in r) for r in d["camera_T"]),
            image_hw=(int(d["image_hw"][0]), int(d["image_hw"][1])),
            grid=GridConfig(**d["grid"]),
            grid_classes=tuple(d["grid_classes"]),
            box_classes=tuple(d["box_classes"]),
            box_ids=tuple(int(i) for i in d["box_ids"]),
            light_states=tuple(d["light_states"]),
            waypoints=int(d["waypoints"]),
        )

    def feature_grid(self, stride: int) -> GridConfig:
        """The BEV grid of the features: the label grid with ``stride``-times larger cells."""
        g = self.grid
        return GridConfig(g.resolution * stride, g.ahead, g.behind, g.side)


def camera_sampling_grid(
    intrinsics: np.ndarray,
    extrinsics: np.ndarray,
    image_hw: tuple[int, int],
    grid: GridConfig,
    heights: Sequence[float],
) -> tuple[np.ndarray, np.ndarray]:
    """Where each BEV cell centre (at each height) falls in the image, for ``grid_sample``.

    Returns ``coords`` float32 ``(len(heights), rows, cols, 2)``, ``(x, y)`` in
    ``grid_sample``'s normalised image coordinates with ``align_corners=False`` (−1 and 1
    are the outer edges of the edge pixels, whatever the feature map's stride), and
    ``visible`` bool ``(len(heights), rows, cols)``; an invisible point's coordinates are
    set far outside the image, so it reads zeros."""
    h, w = image_hw
    xs, ys = grid.centres()
    rows, cols = grid.shape
    out = np.full((len(heights), rows, cols, 2), -4.0, dtype=np.float32)
    visible = np.zeros((len(heights), rows, cols), dtype=bool)
    x, y = np.meshgrid(xs, ys, indexing="ij")
    for k, z in enumerate(heights):
        pts = np.stack([x.ravel(), y.ravel(), np.full(x.size, float(z))], axis=1)
        uv = project(pts, np.asarray(intrinsics), np.asarray(extrinsics)).reshape(rows, cols, 2)
        # pixel j's centre is u = j, its edges j ± 0.5: u = -0.5 → -1, u = w - 0.5 → +1
        norm = np.stack([(uv[..., 0] + 0.5) / w * 2 - 1, (uv[..., 1] + 0.5) / h * 2 - 1], -1)
        ok = np.isfinite(norm).all(-1) & (np.abs(norm) <= 1).all(-1)
        out[k][ok] = norm[ok]
        visible[k] = ok
    return out, visible


class CameraToBEV(nn.Module):
    """Image features ``(B, C, h, w)`` → BEV features ``(B, C × heights + 1, rows, cols)``:
    channel ``c × heights + k`` is feature ``c`` read at height ``k``; the last channel is
    the visibility (at the ground)."""

    def __init__(self, geometry: Geometry, grid: GridConfig, heights: Sequence[float]) -> None:
        super().__init__()
        coords, visible = camera_sampling_grid(
            np.array(geometry.camera_K),
            np.array(geometry.camera_T),
            geometry.image_hw,
            grid,
            heights,
        )
        n, rows, cols, _ = coords.shape
        self.heights, self.rows, self.cols = n, rows, cols
        # rebuilt from the geometry, so not part of the state_dict
        self.register_buffer(
            "coords", torch.from_numpy(coords).reshape(1, n * rows, cols, 2), persistent=False
        )
        self.register_buffer(
            "visible", torch.from_numpy(visible[:1]).float()[None], persistent=False
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        b, c = features.shape[:2]
        coords = self.coords.expand(b, -1, -1, -1).to(features.dtype)
        bev = F.grid_sample(
            features, coords, mode="bilinear", padding_mode="zeros", align_corners=False
        )
        bev = bev.reshape(b, c * self.heights, self.rows, self.cols)
        return torch.cat([bev, self.visible.expand(b, -1, -1, -1).to(bev.dtype)], dim=1)


def conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    """3 × 3 convolution, batch norm, ReLU."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class CameraEncoder(nn.Module):
    """Image ``(B, 3, H, W)`` → features at stride 4: three stride-2 stages, the third
    (stride 8) upsampled and added to the second through a 1 × 1 convolution."""

    def __init__(self, widths: Sequence[int], out: int) -> None:
        super().__init__()
        a, b, c = widths
        self.stage1 = nn.Sequential(conv(3, a, 2), conv(a, a))
        self.stage2 = nn.Sequential(conv(a, b, 2), conv(b, b))
        self.stage3 = nn.Sequential(conv(b, c, 2), conv(c, c))
        self.lateral = nn.Conv2d(b, out, 1)
        self.top = nn.Conv2d(c, out, 1)
        self.width = c

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(stride-4 features, stride-8 features)``; the light head reads the latter."""
        s4 = self.stage2(self.stage1(image))
        s8 = self.stage3(s4)
        up = F.interpolate(self.top(s8), size=s4.shape[-2:], mode="bilinear", align_corners=False)
        return F.relu(self.lateral(s4) + up), s8


class FusionNet(nn.Module):
    """The whole network. ``forward(camera, lidar_bev, light_heads)`` takes the dataset's
    arrays as tensors (``camera`` uint8 ``(B, H, W, 3)``, ``lidar_bev`` uint8 ``(B, 2, rows,
    cols)``, ``light_heads`` ``(B, 2, 3)``; an unused one may be None: ``light_heads`` is
    read only with ``light_crop``) and returns the heads' raw outputs (see
    :class:`.heads.Heads`)."""

    def __init__(self, config: FusionConfig, geometry: Geometry) -> None:
        from .heads import Heads

        super().__init__()
        self.config, self.geometry = config, geometry
        c, s = config.channels, config.bev_stride
        self.feature_grid = geometry.feature_grid(s)
        parts = 0
        if config.uses_camera:
            self.camera = CameraEncoder(config.camera_widths, c)
            self.lift = CameraToBEV(geometry, self.feature_grid, config.heights)
            self.camera_bev = nn.Sequential(
                nn.Conv2d(c * len(config.heights) + 1, c, 1), nn.ReLU(inplace=True), conv(c, c)
            )
            parts += c
        if config.uses_lidar:  # down to the feature grid at once: the histogram is sparse
            self.lidar = nn.Sequential(conv(2, c, s), conv(c, c))
            parts += c
        self.fuse = conv(parts, c)
        self.down = nn.Sequential(conv(c, 2 * c, 2), conv(2 * c, 2 * c))
        self.up = nn.Conv2d(2 * c, c, 1)
        self.mix = conv(c, c)
        self.heads = Heads(
            config, c, config.camera_widths[2] if config.uses_camera else 0, geometry
        )
        if config.light_crop:
            from .light_crop import LightCrops

            self.light_crop = LightCrops(geometry, len(geometry.light_states))

    def forward(
        self,
        camera: torch.Tensor | None,
        lidar_bev: torch.Tensor | None,
        light_heads: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        parts, image_features = [], None
        if self.config.uses_camera:
            image = (camera.permute(0, 3, 1, 2).float() * (1 / 255.0) - 0.45) / 0.25
            features, image_features = self.camera(image)
            parts.append(self.camera_bev(self.lift(features)))
        if self.config.uses_lidar:
            parts.append(self.lidar(torch.log1p(lidar_bev.float()) * (1 / 3.0)))
        bev = self.fuse(torch.cat(parts, dim=1))
        wide = self.down(bev)
        up = F.interpolate(self.up(wide), size=bev.shape[-2:], mode="bilinear", align_corners=False)
        bev = self.mix(bev + up)
        out = self.heads(bev, image_features)
        if self.config.light_crop:
            if light_heads is None:
                raise ValueError("a light_crop network needs the light heads' positions")
            out["light"] = self.light_crop(image, light_heads)
        return out


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
