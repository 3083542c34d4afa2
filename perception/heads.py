"""The fusion network's heads, their training targets, the loss and the box decoder.

* **segmentation**: one logit per class of the semantic grid and label cell. The label
  channels overlap (a marking lies on the road, a car on both; see :mod:`.labels`), so
  each class is its own sigmoid (multi-label), trained with binary cross-entropy plus a
  soft Dice term that keeps the thin and rare classes from being drowned by the road;
* **objects**, CenterNet's way (Zhou et al. 2019, "Objects as Points"; in BEV as in
  CenterPoint, Yin et al. 2021): a heatmap per object class whose peaks are the centres,
  and at every feature cell 8 regressions: the centre's offset inside the cell (2), log
  length and log width (2), the yaw as sin / cos (2) and the velocity (2). Targets are
  Gaussian peaks; the heatmap is trained with CenterNet's penalty-reduced focal loss, the
  regressions with L1 at the true centres only. :func:`decode` turns a heatmap into boxes
  (3 × 3 max-pool as NMS, top-k, score threshold) in the rows of :data:`.labels.BOX_FIELDS`;
* **light**: the state of the light ahead (none / green / yellow / red), from the camera's
  stride-8 features reduced by a 1 × 1 convolution and pooled to a small grid
  (:attr:`~.config.FusionConfig.light_grid`, average and max per cell: a light is a few
  pixels), flattened: the camera also sees the crossing road's heads, so *where* a colour
  is tells whose light it is. The cross-entropy can weigh each state
  (:func:`light_class_weights`: the expert waits at red, so red frames pile up and green
  ones are rare). Lidar sees no colour, so a lidar-only network reads the pooled BEV and
  can at best tell whether a junction is ahead. With ``light_crop`` the network reads
  the light from crops at its heads' known places instead (:mod:`.light_crop`);
* **waypoints** (optional): the route points, from the fused BEV pooled to 8 × 8.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from .model import FusionConfig, Geometry

REG = 8  # offset (2), log size (2), sin/cos yaw (2), velocity (2)
PRIOR = 0.1  # initial heatmap probability (CenterNet's bias init −2.19)


class Heads(nn.Module):
    """BEV features ``(B, C, h, w)`` (+ the camera's stride-8 features or None) → a dict of
    ``seg`` ``(B, classes, rows, cols)`` logits at label resolution, ``heatmap``
    ``(B, box classes, h, w)`` logits, ``reg`` ``(B, 8, h, w)``, ``light`` ``(B, 4)`` logits
    and, when configured, ``waypoints`` ``(B, k, 2)`` metres."""

    def __init__(
        self, config: FusionConfig, channels: int, camera_width: int, geometry: Geometry
    ) -> None:
        super().__init__()
        hc = config.head_channels
        self.grid_shape = geometry.grid.shape

        # one shared 3 × 3 layer, then a 1 × 1 convolution per output: on a CPU the
        # convolutions at full feature resolution are most of the cost
        self.trunk = nn.Sequential(nn.Conv2d(channels, hc, 3, padding=1), nn.ReLU(inplace=True))
        self.seg = nn.Conv2d(hc, len(geometry.grid_classes), 1)
        self.heatmap = nn.Conv2d(hc, len(geometry.box_classes), 1)
        nn.init.constant_(self.heatmap.bias, math.log(PRIOR / (1 - PRIOR)))
        self.reg = nn.Conv2d(hc, REG, 1)
        rows, cols = config.light_grid
        lc = config.light_channels
        self.light_grid = (rows, cols)
        self.light = None  # with light_crop, the network reads the light (.light_crop)
        if not config.light_crop:
            self.light_reduce = nn.Sequential(
                nn.Conv2d(camera_width or channels, lc, 1), nn.ReLU(inplace=True)
            )
            self.light = nn.Sequential(
                nn.Linear(2 * lc * rows * cols, 64),
                nn.ReLU(inplace=True),
                nn.Linear(64, len(geometry.light_states)),
            )
        self.k = geometry.waypoints
        self.waypoints = None
        if config.waypoints:
            self.waypoints = nn.Sequential(
                nn.Conv2d(channels, 8, 1),
                nn.ReLU(inplace=True),
                nn.AdaptiveAvgPool2d(8),
                nn.Flatten(),
                nn.Linear(8 * 64, 128),
                nn.ReLU(inplace=True),
                nn.Linear(128, 2 * self.k),
            )

    def forward(self, bev: torch.Tensor, camera: torch.Tensor | None) -> dict[str, torch.Tensor]:
        x = self.trunk(bev)
        seg = self.seg(x)
        if seg.shape[-2:] != self.grid_shape:
            seg = F.interpolate(seg, size=self.grid_shape, mode="bilinear", align_corners=False)
        out = {"seg": seg, "heatmap": self.heatmap(x), "reg": self.reg(x)}
        if self.light is not None:
            source = self.light_reduce(camera if camera is not None else bev)
            pooled = torch.cat(
                [
                    F.adaptive_avg_pool2d(source, self.light_grid).flatten(1),
                    F.adaptive_max_pool2d(source, self.light_grid).flatten(1),
                ],
                dim=1,
            )
            out["light"] = self.light(pooled)
        if self.waypoints is not None:
            out["waypoints"] = self.waypoints(bev).reshape(-1, self.k, 2)
        return out


# ------------------------------------------------------------------------- targets
def object_targets(
    boxes: Sequence[np.ndarray],
    box_class: Sequence[np.ndarray],
    geometry: Geometry,
    config: FusionConfig,
) -> dict[str, np.ndarray]:
    """CenterNet targets of a batch of frames (each frame's ``boxes`` ``(n, 7)`` and
    ``box_class`` ``(n,)`` world class ids) on the feature grid: ``heatmap`` ``(B, classes,
    h, w)`` Gaussian peaks (1 at each centre's cell), and per frame up to ``max_objects``
    objects' flat cell ``index`` ``(B, M)``, ``mask`` ``(B, M)``, regression ``reg``
    ``(B, M, 8)`` and ``cls`` ``(B, M)`` (head channel)."""
    fg = geometry.feature_grid(config.bev_stride)
    rows, cols = fg.shape
    cell = fg.resolution
    n_cls, m = len(geometry.box_ids), config.max_objects
    channel = {cid: k for k, cid in enumerate(geometry.box_ids)}
    heat = np.zeros((len(boxes), n_cls, rows, cols), dtype=np.float32)
    index = np.zeros((len(boxes), m), dtype=np.int64)
    mask = np.zeros((len(boxes), m), dtype=np.float32)
    reg = np.zeros((len(boxes), m, REG), dtype=np.float32)
    cls = np.zeros((len(boxes), m), dtype=np.int64)
    rr, cc = np.arange(rows)[:, None], np.arange(cols)[None, :]
    for b, (frame_boxes, frame_cls) in enumerate(zip(boxes, box_class, strict=True)):
        j = 0
        for (x, y, yaw, length, width, vx, vy), cid in zip(frame_boxes, frame_cls, strict=True):
            if int(cid) not in channel:
                continue
            fr, fc = (fg.ahead - x) / cell, (fg.side - y) / cell
            r, c = int(math.floor(fr)), int(math.floor(fc))
            if not (0 <= r < rows and 0 <= c < cols):
                continue
            k = channel[int(cid)]
            sigma = max(config.min_sigma, math.sqrt(length * width) / cell / 4)
            peak = np.exp(-((rr - r) ** 2 + (cc - c) ** 2) / (2 * sigma**2))
            np.maximum(heat[b, k], peak, out=heat[b, k])
            if j < m:
                index[b, j], mask[b, j], cls[b, j] = r * cols + c, 1.0, k
                reg[b, j] = (
                    fr - r,
                    fc - c,
                    math.log(length),
                    math.log(width),
                    math.sin(yaw),
                    math.cos(yaw),
                    vx,
                    vy,
                )
                j += 1
    return {"heatmap": heat, "index": index, "mask": mask, "reg": reg, "cls": cls}


# ------------------------------------------------------------------------- loss
def focal_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss (α = 2, β = 4), summed and divided by the
    number of peaks (at least 1)."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    peak = target.eq(1).float()
    pos = -torch.log(p) * (1 - p) ** 2 * peak
    neg = -torch.log(1 - p) * p**2 * (1 - target) ** 4 * (1 - peak)
    return (pos.sum() + neg.sum()) / peak.sum().clamp(min=1)


def dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 − soft Dice per class over the batch, averaged over classes."""
    p = torch.sigmoid(logits)
    dims = (0, 2, 3)
    inter = (p * target).sum(dims)
    return (1 - (2 * inter + 1) / (p.sum(dims) + target.sum(dims) + 1)).mean()


def gather(features: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``(B, C, h, w)`` read at flat cells ``(B, M)`` → ``(B, M, C)``."""
    b, c = features.shape[:2]
    flat = features.reshape(b, c, -1)
    return flat.gather(2, index[:, None, :].expand(-1, c, -1)).transpose(1, 2)


#: what each regression column weighs: metres of offset matter, velocity is a guess
REG_WEIGHTS = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.1, 0.1)


def light_class_weights(labels: np.ndarray, states: int, clip: float) -> np.ndarray:
    """Inverse-frequency weights of the light states in ``labels`` (the training frames'
    light ids), ``total / (present states × count)`` so that a balanced set weighs 1 each,
    clipped to at most ``clip``; a state with no training frame weighs 0 (it is never a
    target, so its weight only shows in the logs)."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64).ravel(), minlength=states)
    present = counts > 0
    weights = np.zeros(states, dtype=np.float32)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return np.minimum(weights, clip)


def losses(
    out: Mapping[str, torch.Tensor],
    batch: Mapping[str, torch.Tensor],
    weights: Mapping[str, float],
    light_classes: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Every loss term and their weighted sum ``total``. ``batch`` holds the labels as
    tensors: ``bev`` (0/1), ``light``, ``waypoints`` and the :func:`object_targets`;
    ``light_classes`` (one weight per light state, see :func:`light_class_weights`) weighs
    the light cross-entropy, None weighs every state alike."""
    terms = {}
    bev = batch["bev"].float()
    terms["seg"] = F.binary_cross_entropy_with_logits(out["seg"], bev) + dice_loss(out["seg"], bev)
    terms["heatmap"] = focal_loss(out["heatmap"], batch["heatmap"])
    pred = gather(out["reg"], batch["index"])
    mask = batch["mask"][..., None]
    scale = pred.new_tensor(REG_WEIGHTS)
    terms["box"] = (torch.abs(pred - batch["reg"]) * mask * scale).sum() / mask.sum().clamp(min=1)
    terms["light"] = F.cross_entropy(out["light"], batch["light"].long(), weight=light_classes)
    if "waypoints" in out:
        terms["waypoints"] = F.smooth_l1_loss(out["waypoints"], batch["waypoints"].float())
    terms["total"] = sum(weights.get(name, 1.0) * value for name, value in terms.items())
    return terms


# ------------------------------------------------------------------------- decoding
def decode(
    heatmap: torch.Tensor,
    reg: torch.Tensor,
    geometry: Geometry,
    stride: int,
    top_k: int = 64,
    threshold: float = 0.1,
) -> list[dict[str, np.ndarray]]:
    """Boxes from a heatmap's peaks: per frame a dict of ``boxes`` ``(n, 7)`` (``x, y, yaw,
    length, width, vx, vy``, ego frame), ``box_class`` ``(n,)`` world class ids and
    ``scores`` ``(n,)``, best first; a peak is a cell no lower than its 3 × 3 neighbours
    (CenterNet's max-pool NMS), the ``top_k`` best over all classes kept when their
    probability is at least ``threshold``. Feeds :class:`.metrics.DetectionMeter`."""
    fg = geometry.feature_grid(stride)
    cell = fg.resolution
    heat = torch.sigmoid(heatmap)
    peaks = heat * (F.max_pool2d(heat, 3, stride=1, padding=1) == heat)
    b, n_cls, h, w = peaks.shape
    scores, flat = peaks.reshape(b, -1).topk(min(top_k, n_cls * h * w), dim=1)
    cls, cells = flat // (h * w), flat % (h * w)
    values = gather(reg, cells)  # (B, K, 8)
    ids = torch.as_tensor(geometry.box_ids, device=heatmap.device)[cls]
    rows, cols = (cells // w).float(), (cells % w).float()
    x = fg.ahead - (rows + values[..., 0]) * cell
    y = fg.side - (cols + values[..., 1]) * cell
    yaw = torch.atan2(values[..., 4], values[..., 5])
    size = torch.exp(values[..., 2:4].clamp(max=5))
    boxes = torch.stack([x, y, yaw, size[..., 0], size[..., 1], values[..., 6], values[..., 7]], -1)
    out = []
    for i in range(b):
        keep = scores[i] >= threshold
        out.append(
            {
                "boxes": boxes[i][keep].detach().cpu().numpy().astype(np.float64),
                "box_class": ids[i][keep].cpu().numpy(),
                "scores": scores[i][keep].detach().cpu().numpy().astype(np.float64),
            }
        )
    return out
