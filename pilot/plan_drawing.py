"""Drawing a modular-stack plan on the driving world's BEV picture, for ``pilot watch``.

The stack returns its plan as data (:class:`pilot.planning.stack.stack.Plan`): the chosen
trajectory, every lattice candidate and the predicted occupancy of other road users. Here,
at the edge, those become pixels on the BEV panel: the predicted footprints first (violet
discs, fading with time over the horizon), then the candidates (pale lines, the rejected
ones, which a prediction says would touch something, faint red), the chosen trajectory on
top (cyan, a dot per planning step) and a small legend.

The BEV geometry is the env's :meth:`~pilot.envs.driving.env.DrivingEnv.bev_image`:
``extent`` metres across ``size`` pixels, the car at column ``size/2`` and row
``0.65 size``, heading up (ego frame x forward, y left)."""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

#: Fraction of the picture's height above the car (the env's BEV keeps more road ahead).
EGO_ROW = 0.65
#: Metres across the BEV picture (the env's default ``extent``).
EXTENT = 60.0

PLAN = (0, 235, 255)  # cyan: no class of the palette, nor the lidar's magenta
CANDIDATE = (215, 215, 215)
REJECTED = (255, 70, 70)
OCCUPANCY = (170, 110, 255)
EGO = (220, 40, 40)  # the palette's ego colour


def to_pixels(
    points: np.ndarray, pose: tuple[float, float, float], size: int, extent: float = EXTENT
) -> np.ndarray:
    """World points ``(n, 2)`` as float ``(column, row)`` pixels of the BEV around ``pose``."""
    x, y, yaw = pose
    c, s = math.cos(yaw), math.sin(yaw)
    m_per_px = extent / size
    dx, dy = points[:, 0] - x, points[:, 1] - y
    fwd, left = c * dx + s * dy, -s * dx + c * dy
    return np.stack([size * 0.5 - left / m_per_px, size * EGO_ROW - fwd / m_per_px], axis=1)


def _blend(img: np.ndarray, layer: np.ndarray, mask: np.ndarray, alpha: float) -> None:
    """Mix ``layer`` into ``img`` where ``mask`` is set, with opacity ``alpha`` (in place)."""
    if mask.any():
        mixed = img[mask].astype(np.float32) * (1.0 - alpha) + layer[mask] * alpha
        img[mask] = np.round(mixed).astype(np.uint8)


def _poly(img: np.ndarray, px: np.ndarray, colour, width: int) -> None:
    pts = np.round(px).astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(img, [pts], False, colour, width, cv2.LINE_AA)


def draw_plan(
    bev: np.ndarray, plan: Any, pose: tuple[float, float, float], extent: float = EXTENT
) -> np.ndarray:
    """A copy of the ``size × size`` picture ``bev`` with ``plan`` drawn on it."""
    img = np.ascontiguousarray(bev[..., :3]).copy()
    size = img.shape[0]
    m_per_px = extent / size
    occ = plan.occupancy
    steps = len(occ.times)
    # predicted footprints: each pixel takes the earliest time a footprint covers it, and
    # fades with that time (one mix, so overlapping discs do not pile up into a blot)
    first = np.full(img.shape[:2], 255, np.uint8)
    for k in range(steps - 1, -1, -1):
        centres = occ.centres[k].reshape(-1, 2)
        radii = np.repeat(occ.radius[k], occ.centres.shape[2])
        for (u, v), r in zip(to_pixels(centres, pose, size, extent), radii, strict=True):
            if -50 < u < size + 50 and -50 < v < size + 50:
                cv2.circle(first, (round(u), round(v)), max(1, round(r / m_per_px)), k, -1)
    covered = first < 255
    if covered.any():
        alpha = 0.6 - 0.48 * first[covered].astype(np.float32) / max(steps - 1, 1)
        mixed = img[covered] * (1.0 - alpha[:, None]) + np.array(OCCUPANCY) * alpha[:, None]
        img[covered] = np.round(mixed).astype(np.uint8)
    _ego_outline(img, pose, size, extent)
    # candidates: rejected ones faint, the free ones pale, on a layer mixed in once
    for colour, alpha, pick in (
        (REJECTED, 0.45, lambda c: math.isfinite(c.collides_at)),
        (CANDIDATE, 0.7, lambda c: not math.isfinite(c.collides_at)),
    ):
        layer = np.zeros_like(img)
        for cand in plan.candidates:
            if cand is not plan.chosen and pick(cand) and len(cand.xy) > 1:
                _poly(layer, to_pixels(cand.xy, pose, size, extent), colour, 1)
        _blend(img, layer, layer.any(axis=2), alpha)
    # the chosen trajectory, a dot per planning step
    px = to_pixels(plan.chosen.xy, pose, size, extent)
    _poly(img, px, PLAN, 3)
    for u, v in np.round(px[1:]).astype(int).tolist():
        cv2.circle(img, (u, v), 3, PLAN, -1, cv2.LINE_AA)
    _legend(img)
    return img


def _ego_outline(img: np.ndarray, pose: tuple[float, float, float], size: int, extent: float):
    """The car's outline again, over any footprint predicted onto it."""
    x, y, yaw = pose
    c, s = math.cos(yaw), math.sin(yaw)
    corners = np.array([(2.25, 0.95), (2.25, -0.95), (-2.25, -0.95), (-2.25, 0.95)])
    world = np.stack(
        [x + c * corners[:, 0] - s * corners[:, 1], y + s * corners[:, 0] + c * corners[:, 1]], 1
    )
    pts = np.round(to_pixels(world, pose, size, extent)).astype(np.int32)
    cv2.polylines(img, [pts.reshape(-1, 1, 2)], True, EGO, 2, cv2.LINE_AA)


def _legend(img: np.ndarray) -> None:
    """Four short labelled swatches in the picture's bottom-left corner."""
    rows = (
        ("plan", PLAN),
        ("candidates", CANDIDATE),
        ("rejected", REJECTED),
        ("predicted", OCCUPANCY),
    )
    h = img.shape[0]
    top = h - 8 - 14 * len(rows)
    cv2.rectangle(img, (2, top - 4), (104, h - 3), (24, 24, 24), -1)
    for i, (text, colour) in enumerate(rows):
        y = top + 14 * i + 6
        cv2.line(img, (7, y), (21, y), colour, 3)
        cv2.putText(
            img, text, (26, y + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (230, 230, 230), 1, cv2.LINE_AA
        )


def with_plan(panels: list[tuple[str, np.ndarray]], agent: Any, env: Any):
    """``panels`` with the plan of ``agent`` (a built-in stack that keeps ``last_plans``)
    drawn on the BEV panel; unchanged for any other agent or a plan-free step."""
    plans = getattr(agent, "last_plans", None)
    if not plans or plans[0] is None:
        return panels
    pose = env.unwrapped.get_state().sim.ego
    out = []
    for title, image in panels:
        if title == "BEV":
            title, image = "BEV + plan", draw_plan(image, plans[0], (pose.x, pose.y, pose.yaw))
        out.append((title, image))
    return out
