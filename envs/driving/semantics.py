"""Semantic classes of the driving world: the camera's segmentation, the BEV drawings
and the perception labels all use these ids, names and colours."""

from __future__ import annotations

import numpy as np

SKY, GRASS, ROAD, MARKING, EGO, VEHICLE, PEDESTRIAN, STATIC, LIGHT = range(9)
CLASS_NAMES = ("sky", "grass", "road", "marking", "ego", "vehicle", "pedestrian", "static", "light")
PALETTE = np.array(
    [
        (150, 190, 230),  # sky
        (74, 125, 62),  # grass
        (82, 82, 88),  # road
        (235, 235, 235),  # marking
        (220, 40, 40),  # ego
        (40, 90, 200),  # vehicle
        (240, 200, 40),  # pedestrian
        (240, 130, 20),  # static
        (30, 30, 30),  # light
    ],
    dtype=np.uint8,
)
