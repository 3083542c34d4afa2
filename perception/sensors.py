"""Sensor geometry for the fusion network: camera intrinsics and extrinsics, lidar points.

A network that lifts camera pixels into the BEV (or projects lidar points into the image)
needs the camera's pinhole matrix and its pose on the car; both follow from the driving
world's :class:`~pilot.envs.driving.world.PinholeCamera`, whose square pixels share one
focal length. Conventions: OpenCV's camera frame (x right, y down, z along the optical
axis) and pixel coordinates (the centre of pixel ``(row i, column j)`` at ``u = j``,
``v = i``); extrinsics map camera (or lidar) coordinates into the ego frame (x forward,
y left, z up from the ground).
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np

from pilot.envs.driving.env import CameraConfig
from pilot.envs.driving.sensors import Lidar, LidarConfig
from pilot.envs.driving.world import PinholeCamera


def pinhole(cam: CameraConfig) -> PinholeCamera:
    """The world's camera for a :class:`CameraConfig` (as the env builds it)."""
    return PinholeCamera(cam.width, cam.height, cam.fov, cam.mount, cam.pitch, far=cam.far)


def calibration(cam: CameraConfig, lidar: LidarConfig) -> dict[str, list]:
    """Intrinsics and extrinsics as JSON-ready lists, for a dataset's manifest."""
    spec = pinhole(cam)
    return {
        "camera_K": camera_intrinsics(spec).tolist(),
        "camera_T": camera_extrinsics(spec).tolist(),
        "lidar_T": lidar_extrinsics(lidar).tolist(),
    }


def camera_intrinsics(cam: PinholeCamera) -> np.ndarray:
    """The 3 × 3 pinhole matrix ``K``: ``f = (height / 2) / tan(fov / 2)`` on both axes
    (``fov`` is vertical), principal point at the image centre."""
    f = 0.5 * cam.height / math.tan(math.radians(cam.fov) / 2)
    return np.array(
        [[f, 0.0, 0.5 * cam.width - 0.5], [0.0, f, 0.5 * cam.height - 0.5], [0.0, 0.0, 1.0]]
    )


def camera_extrinsics(cam: PinholeCamera) -> np.ndarray:
    """The 4 × 4 camera-to-ego transform: the camera sits at ``mount`` and looks ahead,
    pitched down by ``pitch`` degrees."""
    p = math.radians(cam.pitch)
    right = np.array([0.0, -1.0, 0.0])
    forward = np.array([math.cos(p), 0.0, -math.sin(p)])
    down = np.cross(forward, right)
    out = np.eye(4)
    out[:3, 0], out[:3, 1], out[:3, 2] = right, down, forward
    out[:3, 3] = cam.mount
    return out


def lidar_extrinsics(spec: LidarConfig) -> np.ndarray:
    """The 4 × 4 lidar-to-ego transform: axes along the ego's, ``mount_height`` up."""
    out = np.eye(4)
    out[2, 3] = spec.mount_height
    return out


def project(points: np.ndarray, intrinsics: np.ndarray, extrinsics: np.ndarray) -> np.ndarray:
    """Pixel coordinates ``(u, v)`` of ego-frame points ``(n, 3)``; NaN behind the camera."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    rot, t = extrinsics[:3, :3], extrinsics[:3, 3]
    cam = (pts - t) @ rot  # ego → camera: the inverse of a rotation is its transpose
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = (cam @ intrinsics.T)[:, :2] / cam[:, 2:3]
    uv[cam[:, 2] <= 1e-9] = np.nan
    return uv


def lidar_points(lidar: Lidar, ranges: np.ndarray) -> np.ndarray:
    """Ego-frame points ``(n, 3)`` (z above the ground) of a sweep's ``ranges``."""
    pts = lidar.dirs * np.asarray(ranges, dtype=np.float64)[:, None]
    pts[:, 2] += lidar.spec.mount_height
    return pts


def sweep(
    lidar: Lidar,
    world,
    pose: tuple[float, float, float],
    rng: np.random.Generator,
    weather=None,
    step: int = 0,
):
    """``(ranges, hit ids)`` of one sweep from ``pose`` under ``weather`` (None: clear) at
    control step ``step``. The lidar reads only the ego's pose, the world, the weather and
    a generator for its noise; giving it a generator of our own keeps the env's random
    stream, and so the episode, the same whether or not we record."""
    ego = SimpleNamespace(x=pose[0], y=pose[1], yaw=pose[2])
    frame = SimpleNamespace(ego=ego, world=world, rng=rng, cache={}, weather=weather, step=step)
    return lidar.sweep(frame)
