"""Plans for pulling away at an angle: the path the car itself would drive, tracking a
lane from where it stands under its steering limit, as candidates for the same check.

A Frenet candidate starts along the car's heading with no curvature and bends back to its
lane over metres. Stopped mid-turn (for pedestrians on the exit crosswalk) with its nose
still angled across, every such plan runs first towards whatever stands beside the exit,
often a car waiting at that road's stop line, and is (rightly) found to touch it, so the
car stands until the world ends the route. The car can turn back towards its lane within
a few metres: pure pursuit, rolled forward on the car's kinematics from its pose with its
curvature within the steering limit, finds such a path, and the checked plan is one the
car can drive. The same holds for a car still rolling out of the turn at a few m/s: there
even braking where it is touches the waiting car, as it starts along the nose too."""

from __future__ import annotations

import math

import numpy as np

from pilot.planning.trackers import PurePursuit, Reference

from .config import ModularConfig
from .frenet import Candidate, RouteFrame, idm_profile

#: Arc-length step of the roll-out (m).
STEP = 0.25


def rear_axle(pose: tuple[float, float, float], wheelbase: float) -> np.ndarray:
    """``(x, y, yaw)`` of the rear axle of a car whose centre is at ``pose`` (the trackers
    steer about the rear axle)."""
    x, y, yaw = pose
    half = 0.5 * wheelbase
    return np.array([x - half * math.cos(yaw), y - half * math.sin(yaw), yaw])


def tracked_path(
    frame: RouteFrame,
    pose: tuple[float, float, float],
    s0: float,
    d1: float,
    wheelbase: float,
    max_curvature: float,
    cfg: ModularConfig,
    length: float = 25.0,
) -> np.ndarray:
    """Rear-axle poses ``(N, 3)``, ``STEP`` apart, of a car at ``pose`` (its centre) that
    tracks the route's line ``d1`` to its left by pure pursuit at walking speed, its
    curvature held within ``max_curvature``."""
    rear = rear_axle(pose, wheelbase)
    ref_s = s0 + np.arange(-2.0, length + 10.0, 0.5)
    reference = Reference.from_points(frame.xy(ref_s, np.full(len(ref_s), d1)))
    tracker = PurePursuit(cfg.lookahead, lookahead_gain=cfg.lookahead_gain)
    out = np.empty((int(length / STEP) + 1, 3))
    out[0] = rear
    for k in range(1, len(out)):
        kappa = tracker.control(rear, reference).curvature
        kappa = min(max(kappa, -max_curvature), max_curvature)
        mid = rear[2] + 0.5 * kappa * STEP
        rear = rear + (STEP * math.cos(mid), STEP * math.sin(mid), kappa * STEP)
        out[k] = rear
    return out


def candidates(
    frame: RouteFrame,
    pose: tuple[float, float, float],
    s0: float,
    v0: float,
    targets: list[tuple[float, float, list[tuple[float, float, float]]]],
    wheelbase: float,
    max_curvature: float,
    cfg: ModularConfig,
) -> list[Candidate]:
    """A candidate per ``(lateral target, desired speed, leads)`` whose path is
    :func:`tracked_path` towards that target and whose speed is the IDM profile behind
    the leads (distance along the path taken as route progress: the car is nearly along
    its lane at walking speed)."""
    n = int(round(cfg.horizon / cfg.plan_dt))
    half = 0.5 * wheelbase
    paths: dict[float, tuple[np.ndarray, np.ndarray]] = {}
    out = []
    for d1, v_des, leads in targets:
        if d1 not in paths:
            rear = tracked_path(frame, pose, s0, d1, wheelbase, max_curvature, cfg)
            centre = rear[:, :2] + half * np.stack([np.cos(rear[:, 2]), np.sin(rear[:, 2])], 1)
            paths[d1] = (rear, centre)
        rear, centre = paths[d1]
        s, v, a = idm_profile(v0, v_des, leads, cfg, n)
        along = STEP * np.arange(len(rear))
        xy = np.stack([np.interp(s, along, centre[:, 0]), np.interp(s, along, centre[:, 1])], 1)
        yaw = np.interp(s, along, rear[:, 2])
        # the tracker follows the rear axle's path, then the lane beyond it
        beyond = s0 + along[-1] + np.arange(1.0, 15.0, 1.0)
        path = np.vstack([rear[:, :2], frame.xy(beyond, np.full(len(beyond), d1))])
        out.append(Candidate(d1, v_des, s0 + s, v, a, xy, yaw, path))
    return out
