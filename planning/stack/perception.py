"""Perception input of the stack. ``privileged``: the simulator's ground truth, read
through the same label code the perception dataset is made with
(:func:`pilot.perception.labels.scene` and :func:`~pilot.perception.labels.light_label`),
so a learned perception run can later stand in for it with the same fields."""

from __future__ import annotations

import dataclasses

import numpy as np

from pilot.envs.driving.roads import GREEN, RED, YELLOW
from pilot.perception.labels import light_label, scene

#: Light states as the stack uses them (the world's GREEN/YELLOW/RED, -1: none).
NO_LIGHT = -1


@dataclasses.dataclass(frozen=True)
class Percept:
    """What the stack knows of one moment, in the world frame (shapes: n objects).

    ``boxes`` rows are ``x, y, yaw, length, width, vx, vy`` (the labels' ``BOX_FIELDS``),
    ``classes`` the world's ``CLASS_NAMES`` ids; ``light`` the state of the light governing
    the ego's lane (GREEN, YELLOW, RED or ``NO_LIGHT``) and ``light_distance`` the metres
    to its stop line along the lane."""

    pose: tuple[float, float, float]
    speed: float
    t: float
    route_s: float
    classes: np.ndarray  # (n,) uint8
    boxes: np.ndarray  # (n, 7) float
    light: int
    light_distance: float


def privileged(env, light_range: float = 60.0) -> Percept:
    """The ground-truth percept of a live driving env."""
    now = scene(env)
    label, distance = light_label(env, now.pose, now.t, light_range)
    light = {0: NO_LIGHT, 1: GREEN, 2: YELLOW, 3: RED}[label]
    return Percept(
        now.pose, now.speed, now.t, now.route_s, now.box_class, now.boxes, light, distance
    )
