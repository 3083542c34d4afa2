"""Pictures of a recorded frame, for people: the camera image, the lidar histogram and the
labels side by side. Only the CLI calls this; nothing in training or scoring draws.

Grid images keep the BEV convention (row 0 ahead, column 0 left), so the car drives up
the page, as in the env's own ``bev_image()``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from pilot.envs.driving.world import CLASS_NAMES, GRASS, PALETTE

from .labels import GRID_CLASSES, LIGHT_STATES

_LIGHT_RGB = {
    "none": (90, 90, 90),
    "green": (40, 220, 60),
    "yellow": (250, 200, 0),
    "red": (230, 30, 30),
}
_BOX_RGB = (0, 255, 255)
_WAYPOINT_RGB = (60, 200, 90)


def label_image(frame: dict[str, Any], grid, scale: int = 2) -> np.ndarray:
    """The label grid in the world's palette (objects over markings over road over grass),
    the object list as cyan outlines with velocity ticks, the waypoints as green dots and
    the light state as a square in the top-left corner."""
    import cv2

    bev = frame["bev"]
    img = np.empty(bev.shape[1:] + (3,), dtype=np.uint8)
    img[:] = PALETTE[GRASS]
    for k, name in enumerate(GRID_CLASSES):
        img[bev[k] > 0] = PALETTE[CLASS_NAMES.index(name)]
    img = np.ascontiguousarray(np.repeat(np.repeat(img, scale, 0), scale, 1))
    px_per_m = scale / grid.resolution

    def to_px(x, y):
        return (grid.side - y) * px_per_m, (grid.ahead - x) * px_per_m

    for x, y, yaw, length, width, vx, vy in np.asarray(frame["boxes"], dtype=np.float64):
        c, s = math.cos(yaw), math.sin(yaw)
        corners = [(length / 2, width / 2), (length / 2, -width / 2)]
        corners += [(-length / 2, -width / 2), (-length / 2, width / 2)]
        pts = [to_px(x + c * a - s * b, y + s * a + c * b) for a, b in corners]
        cv2.polylines(img, [np.round(pts).astype(np.int32)], True, _BOX_RGB, 1)
        a, b = to_px(x, y), to_px(x + 0.5 * vx, y + 0.5 * vy)  # where it is in 0.5 s
        cv2.line(img, tuple(np.round(a).astype(int)), tuple(np.round(b).astype(int)), _BOX_RGB, 1)
    for x, y in np.asarray(frame["waypoints"], dtype=np.float64):
        u, v = to_px(x, y)
        cv2.circle(img, (round(u), round(v)), max(2, scale), _WAYPOINT_RGB, -1)
    state = LIGHT_STATES[int(frame["light"])]
    cv2.rectangle(img, (2, 2), (6 + 4 * scale, 6 + 4 * scale), _LIGHT_RGB[state], -1)
    return img


def histogram_image(hist: np.ndarray, scale: int = 2) -> np.ndarray:
    """The two-band lidar histogram: returns below the split height in blue, above it in
    orange, brighter with more points (4 or more at full brightness)."""
    below = np.minimum(hist[0].astype(np.float64) / 4.0, 1.0)
    above = np.minimum(hist[1].astype(np.float64) / 4.0, 1.0)
    img = np.full(hist.shape[1:] + (3,), 20.0)
    img += below[..., None] * np.array([40.0, 90.0, 200.0])
    img += above[..., None] * np.array([235.0, 150.0, 30.0])
    img = np.clip(img, 0, 255).astype(np.uint8)
    return np.repeat(np.repeat(img, scale, 0), scale, 1)


def frame_figure(frame: dict[str, Any], grid, height: int = 256) -> np.ndarray:
    """Camera | lidar histogram | labels, each ``height`` pixels tall and titled."""
    import cv2

    panels = [
        ("camera", frame["camera"]),
        ("lidar histogram", histogram_image(frame["lidar_bev"])),
        (f"labels (light: {LIGHT_STATES[int(frame['light'])]})", label_image(frame, grid)),
    ]
    out = []
    for title, img in panels:
        w = round(img.shape[1] * height / img.shape[0])
        img = cv2.resize(img, (w, height), interpolation=cv2.INTER_NEAREST)
        bar = np.full((20, w, 3), 255, dtype=np.uint8)
        cv2.putText(bar, title, (4, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        out.append(np.vstack([bar, img]))
        out.append(np.full((height + 20, 6, 3), 255, dtype=np.uint8))
    return np.hstack(out[:-1])
