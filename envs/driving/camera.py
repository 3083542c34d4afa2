"""The pinhole cameras on the car: their settings (:class:`PinholeCamera`) and, per
camera, the matrices pybullet renders with and each pixel's viewing ray, from which the
world colours the flat ground (:class:`CameraRig`)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np


@dataclasses.dataclass(frozen=True)
class PinholeCamera:
    """A camera fixed to the ego: mount ``(x forward, y left, z up)`` in metres, pitched
    down by ``pitch`` degrees, vertical field of view ``fov`` degrees."""

    width: int
    height: int
    fov: float
    mount: tuple[float, float, float]
    pitch: float
    near: float = 0.1
    far: float = 100.0


class CameraRig:
    """Matrices and the per-pixel ground geometry of one :class:`PinholeCamera`, computed
    once: the camera is rigid on the ego and the ground is flat, so the ego-frame point
    each pixel sees on the ground never changes."""

    def __init__(self, cam: PinholeCamera) -> None:
        self.cam = cam
        pitch = math.radians(cam.pitch)
        self.forward = np.array([math.cos(pitch), 0.0, -math.sin(pitch)])
        self.right = np.array([0.0, -1.0, 0.0])
        self.up = np.cross(self.right, self.forward)
        aspect = cam.width / cam.height
        f = 1.0 / math.tan(math.radians(cam.fov) / 2)
        n, fa = cam.near, cam.far
        proj = np.array(
            [
                [f / aspect, 0, 0, 0],
                [0, f, 0, 0],
                [0, 0, (fa + n) / (n - fa), 2 * fa * n / (n - fa)],
                [0, 0, -1, 0],
            ]
        )
        self.projection = proj.T.reshape(-1).tolist()
        tan_v = math.tan(math.radians(cam.fov) / 2)
        xs = (2 * (np.arange(cam.width) + 0.5) / cam.width - 1) * tan_v * aspect
        ys = (1 - 2 * (np.arange(cam.height) + 0.5) / cam.height) * tan_v
        gx, gy = np.meshgrid(xs, ys)
        dirs = (
            self.forward[None, None, :]
            + gx[..., None] * self.right[None, None, :]
            + gy[..., None] * self.up[None, None, :]
        )  # optical-axis component 1: the ray parameter is the z-depth
        # ego-frame ray of every pixel, one plane per axis (weather effects light the points)
        self.rays = np.ascontiguousarray(dirs.transpose(2, 0, 1), dtype=np.float32)
        self.ray_length = np.linalg.norm(self.rays, axis=0)  # metres per metre of z-depth
        mz = cam.mount[2]
        with np.errstate(divide="ignore"):
            t = np.where(dirs[..., 2] < -1e-9, -mz / dirs[..., 2], np.inf)
        self.ground = t < cam.far
        self.ground_depth = t[self.ground]
        self.ground_xy = np.stack(
            [
                cam.mount[0] + t[self.ground] * dirs[..., 0][self.ground],
                cam.mount[1] + t[self.ground] * dirs[..., 1][self.ground],
            ],
            axis=1,
        )

    def view(self, x: float, y: float, yaw: float) -> list[float]:
        """The OpenGL view matrix (column-major, as pybullet takes it) for the ego pose."""
        c, s = math.cos(yaw), math.sin(yaw)
        rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
        mx, my, mz = self.cam.mount
        eye = np.array([x + c * mx - s * my, y + s * mx + c * my, mz])
        f, r, u = rot @ self.forward, rot @ self.right, rot @ self.up
        m = np.eye(4)
        m[0, :3], m[1, :3], m[2, :3] = r, u, -f
        m[:3, 3] = [-r @ eye, -u @ eye, f @ eye]
        return m.T.reshape(-1).tolist()
