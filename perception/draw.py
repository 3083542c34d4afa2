"""Pictures of a recorded frame, for people: the camera image, the lidar histogram and the
labels side by side (:func:`frame_figure`), and with a network's predictions and saliency
maps beside them (:func:`watch_figure`). Only the CLI calls this; nothing in training or
scoring draws.

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
_PREDICTED_RGB = (255, 60, 255)


def class_image(bev: np.ndarray, scale: int = 2) -> np.ndarray:
    """A semantic grid ``(classes, rows, cols)`` (0/1, the label channels of
    :data:`.labels.GRID_CLASSES`) in the world's palette: objects over markings over road
    over grass, each cell ``scale`` × ``scale`` pixels."""
    img = np.empty(bev.shape[1:] + (3,), dtype=np.uint8)
    img[:] = PALETTE[GRASS]
    for k, name in enumerate(GRID_CLASSES):
        img[bev[k] > 0] = PALETTE[CLASS_NAMES.index(name)]
    return np.ascontiguousarray(np.repeat(np.repeat(img, scale, 0), scale, 1))


def _pixels(grid, scale: int):
    """Ego-frame metres ``(x, y)`` → image pixels ``(u, v)`` of a grid image."""
    px_per_m = scale / grid.resolution

    def to_px(x, y):
        return (grid.side - y) * px_per_m, (grid.ahead - x) * px_per_m

    return to_px


def draw_boxes(img: np.ndarray, boxes, grid, scale: int, colour, thickness: int = 1) -> None:
    """Object boxes (rows ``x, y, yaw, length, width, vx, vy``) as outlines with a tick to
    where each will be in 0.5 s, in place."""
    import cv2

    to_px = _pixels(grid, scale)
    for x, y, yaw, length, width, vx, vy in np.reshape(boxes, (-1, 7)).astype(np.float64):
        c, s = math.cos(yaw), math.sin(yaw)
        corners = [(length / 2, width / 2), (length / 2, -width / 2)]
        corners += [(-length / 2, -width / 2), (-length / 2, width / 2)]
        pts = [to_px(x + c * a - s * b, y + s * a + c * b) for a, b in corners]
        cv2.polylines(img, [np.round(pts).astype(np.int32)], True, colour, thickness)
        a, b = to_px(x, y), to_px(x + 0.5 * vx, y + 0.5 * vy)
        cv2.line(
            img, tuple(np.round(a).astype(int)), tuple(np.round(b).astype(int)), colour, thickness
        )


def draw_waypoints(img: np.ndarray, waypoints, grid, scale: int, colour) -> None:
    """Route points ``(k, 2)`` (ego frame) as dots, in place."""
    import cv2

    to_px = _pixels(grid, scale)
    for x, y in np.reshape(waypoints, (-1, 2)).astype(np.float64):
        u, v = to_px(x, y)
        cv2.circle(img, (round(u), round(v)), max(2, scale), colour, -1)


def _light_square(img: np.ndarray, light: int, scale: int) -> None:
    import cv2

    state = LIGHT_STATES[int(light)]
    cv2.rectangle(img, (2, 2), (6 + 4 * scale, 6 + 4 * scale), _LIGHT_RGB[state], -1)


def label_image(frame: dict[str, Any], grid, scale: int = 2) -> np.ndarray:
    """The label grid in the world's palette (objects over markings over road over grass),
    the object list as cyan outlines with velocity ticks, the waypoints as green dots and
    the light state as a square in the top-left corner."""
    img = class_image(frame["bev"], scale)
    draw_boxes(img, frame["boxes"], grid, scale, _BOX_RGB)
    draw_waypoints(img, frame["waypoints"], grid, scale, _WAYPOINT_RGB)
    _light_square(img, frame["light"], scale)
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


def legend(width: int) -> np.ndarray:
    """A strip naming the colours of the BEV panels: the label classes, true and predicted
    boxes and route points, the lidar's two height bands."""
    import cv2

    strip = np.full((26, width, 3), 30, np.uint8)
    items = [
        (name, tuple(int(v) for v in PALETTE[CLASS_NAMES.index(name)]), "cell")
        for name in GRID_CLASSES
    ]
    items += [
        ("true box", _BOX_RGB, "box"),
        ("predicted box", _PREDICTED_RGB, "box"),
        ("true route", _WAYPOINT_RGB, "dot"),
        ("predicted route", _PREDICTED_RGB, "dot"),
        ("lidar < 0.2 m", (40, 90, 200), "cell"),
        ("lidar >= 0.2 m", (235, 150, 30), "cell"),
    ]
    u = 6
    for name, colour, kind in items:
        if kind == "cell":
            cv2.rectangle(strip, (u, 7), (u + 12, 19), colour, -1)
        elif kind == "box":
            cv2.rectangle(strip, (u, 7), (u + 12, 19), colour, 1)
        else:
            cv2.circle(strip, (u + 6, 13), 3, colour, -1)
        cv2.putText(
            strip,
            name,
            (u + 17, 18),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.42,
            (230, 230, 230),
            1,
            cv2.LINE_AA,
        )
        u += 17 + cv2.getTextSize(name, cv2.FONT_HERSHEY_SIMPLEX, 0.42, 1)[0][0] + 14
    return strip


def prediction_image(frame: dict[str, Any], pred: dict[str, Any], grid, scale: int = 2):
    """The predicted grid (``pred["seg"]``, classes × rows × cols, 0/1) in the world's
    palette, the true boxes in cyan under the predicted ones in magenta, the predicted route
    and the predicted light as a square in the top-left corner."""
    img = class_image(pred["seg"], scale)
    draw_boxes(img, frame["boxes"], grid, scale, _BOX_RGB)
    draw_boxes(img, pred["boxes"], grid, scale, _PREDICTED_RGB, 2)
    if pred.get("waypoints") is not None:
        draw_waypoints(img, pred["waypoints"], grid, scale, _PREDICTED_RGB)
    _light_square(img, pred["light"], scale)
    return img


def watch_figure(
    frame: dict[str, Any],
    pred: dict[str, Any],
    grid,
    lines: list[str],
    saliency: dict[str, np.ndarray] | None = None,
    method: str = "",
    height: int = 256,
) -> np.ndarray:
    """One video frame: a caption band (``lines``) over camera | lidar histogram |
    predicted BEV | true BEV, then, when ``saliency`` maps are given (``{"camera": (H, W),
    "lidar_bev": (rows, cols)}`` in [0, 1], either may be missing), a row of them laid over
    the camera image and the lidar histogram, then the colour legend. Even width and
    height, as H.264 wants."""
    from pilot import video

    hist = histogram_image(frame["lidar_bev"])
    top = video.panel_row(
        [
            ("camera", frame["camera"]),
            ("lidar histogram", hist),
            ("predicted BEV", prediction_image(frame, pred, grid)),
            ("ground truth BEV", label_image(frame, grid)),
        ],
        height,
    )
    rows = [top]
    if saliency:
        pictures = {"camera": ("camera", frame["camera"]), "lidar_bev": ("lidar", hist)}
        panels = [
            (f"{method}: {pictures[k][0]}", video.heat_overlay(pictures[k][1], heat, height))
            for k, heat in saliency.items()
        ]
        row = video.panel_row(panels, height)
        pad = np.full((row.shape[0], top.shape[1] - row.shape[1], 3), 12, np.uint8)
        rows += [np.full((4, top.shape[1], 3), 12, np.uint8), np.concatenate([row, pad], 1)]
    rows.append(legend(top.shape[1]))
    out = video.caption(np.concatenate(rows, axis=0), lines)
    return out[: out.shape[0] - out.shape[0] % 2, : out.shape[1] - out.shape[1] % 2]
