"""Prediction: every object rolled forward at constant velocity, its footprint covered by
discs that spread along its motion as time goes on (uncertainty in its speed)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

#: Discs covering each footprint, spaced along the object's long axis (or its motion).
DISCS = 3
#: An object faster than this (m/s) is moving; one slower stands (its footprint kept).
MOVING = 0.2


@dataclasses.dataclass(frozen=True)
class Occupancy:
    """Predicted occupancy: at ``times[k]`` object ``i`` covers the discs centred at
    ``centres[k, i]`` (``DISCS`` × 2) with radius ``radius[k, i]``."""

    times: np.ndarray  # (T,)
    centres: np.ndarray  # (T, n, DISCS, 2)
    radius: np.ndarray  # (T, n)
    classes: np.ndarray  # (n,)

    def __len__(self) -> int:
        return self.centres.shape[1]

    def subset(self, keep: np.ndarray) -> Occupancy:
        """The occupancy of the objects ``keep`` (a mask over them) picks."""
        return Occupancy(
            self.times, self.centres[:, keep], self.radius[:, keep], self.classes[keep]
        )


def predict(boxes: np.ndarray, classes: np.ndarray, times: np.ndarray, growth: float) -> Occupancy:
    """Constant-velocity occupancy of world-frame ``boxes`` (rows ``x, y, yaw, length,
    width, vx, vy``) at ``times``. A moving object's discs spread along its velocity by
    ``growth × t`` each way; a standing one keeps its footprint."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
    n, t = len(b), np.asarray(times, dtype=np.float64)
    speed = np.hypot(b[:, 5], b[:, 6])
    moving = speed > MOVING
    # the long axis: the heading for boxes longer than wide, across it otherwise
    axis = np.where(b[:, 3] >= b[:, 4], b[:, 2], b[:, 2] + 0.5 * math.pi)
    axis = np.where(moving, np.arctan2(b[:, 6], b[:, 5]), axis)
    along = np.where(moving | (b[:, 3] >= b[:, 4]), b[:, 3], b[:, 4])
    across = np.where(moving | (b[:, 3] >= b[:, 4]), b[:, 4], b[:, 3])
    spread = growth * t[:, None] * moving[None, :]  # (T, n)
    long = along[None, :] + 2.0 * spread
    frac = (np.arange(DISCS) - (DISCS - 1) / 2) / DISCS
    offsets = long[..., None] * frac  # (T, n, DISCS)
    radius = np.hypot(0.5 * across[None, :] + 0.1 * spread, long / (2 * DISCS))
    cx = b[None, :, 0] + b[None, :, 5] * t[:, None]
    cy = b[None, :, 1] + b[None, :, 6] * t[:, None]
    ux, uy = np.cos(axis), np.sin(axis)
    centres = np.stack(
        [cx[..., None] + offsets * ux[None, :, None], cy[..., None] + offsets * uy[None, :, None]],
        axis=-1,
    )
    return Occupancy(t, centres.reshape(len(t), n, DISCS, 2), radius, np.asarray(classes))
