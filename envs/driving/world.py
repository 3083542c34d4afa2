"""The pybullet side of the driving world: bodies, contacts, rays and camera images.

Each env owns one :class:`World` with its own physics server (:class:`Client`; DIRECT by
default, the GUI only when asked), so envs never share simulator state. Every body is kinematic: the
Python models in :mod:`.traffic` decide where things are and the world puts the bodies
there, then asks pybullet for contacts, ray hits and pictures. Bodies come from a pool made
once per env (ego, vehicles, pedestrians, obstacles, light heads); a reset re-poses and
parks them, so nothing is created per episode and nothing leaks.

The ground is flat, so it is not a pybullet body: camera pixels that see no body are
coloured from a raster of the road network (grass / road / markings) at the point where
their viewing ray meets the ground, and lidar rays that hit nothing are cut at the ground
plane analytically. This keeps the camera's cost to the few boxes in view: pybullet's
TINY renderer spends about 1 µs per road triangle per frame, and a textured road
network has thousands of them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import operator

import numpy as np

from . import import_pybullet_quietly
from .roads import GREEN, RED, YELLOW, RoadNetwork, arc_length
from .traffic import VEHICLE_LENGTH, VEHICLE_WIDTH

p = import_pybullet_quietly()

# semantic classes (camera segmentation, BEV drawing)
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

EGO_HALF = (0.5 * VEHICLE_LENGTH, 0.5 * VEHICLE_WIDTH, 0.75)
EGO_Z = 0.2 + EGO_HALF[2]  # the body floats 0.2 m above the ground (ground clearance)
PED_HALF = (0.25, 0.3, 0.9)
OBSTACLE_HALF = (0.5, 1.1, 0.6)
PARK_Z = -100.0

# collision groups: rays carry group 1, so a body is hit by rays when its mask has bit 1
_RAY, _EGO, _OTHER = 1, 4, 8

_VEHICLE_COLOURS = [
    (0.16, 0.35, 0.78, 1),
    (0.2, 0.6, 0.3, 1),
    (0.55, 0.55, 0.6, 1),
    (0.9, 0.9, 0.92, 1),
    (0.15, 0.15, 0.18, 1),
    (0.5, 0.25, 0.6, 1),
]
_LIGHT_COLOURS = {
    GREEN: (0.1, 0.9, 0.2, 1),
    YELLOW: (1.0, 0.8, 0.0, 1),
    RED: (0.95, 0.1, 0.1, 1),
}


_first, _third = operator.itemgetter(0), operator.itemgetter(2)


class Client:
    """One pybullet physics server of its own; every pybullet function called on this
    object goes to that server. The same idea as ``pybullet_utils.bullet_client``, whose
    connect prints ``argv[0]=`` to stdout for every env, and which resolves the server
    on every call instead of once per function."""

    def __init__(self, mode: int) -> None:
        self.id = p.connect(mode)
        if self.id < 0:
            raise RuntimeError("could not start a pybullet physics server")

    def __getattr__(self, name: str):
        fn = getattr(p, name)
        if callable(fn):
            fn = functools.partial(fn, physicsClientId=self.id)
        self.__dict__[name] = fn
        return fn

    def disconnect(self) -> None:
        if self.__dict__.get("id", -1) >= 0:
            with contextlib.suppress(p.error):
                p.disconnect(physicsClientId=self.id)
            self.id = -1

    def __del__(self) -> None:
        self.disconnect()


def _quat(yaw: float) -> tuple[float, float, float, float]:
    return (0.0, 0.0, math.sin(0.5 * yaw), math.cos(0.5 * yaw))


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


class _CameraRig:
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


#: Fractional bits of the fixed-point pixel coordinates given to cv2's drawing functions.
SHIFT = 2


class GroundShapes:
    """What is painted on the ground of a road network, as world-frame shapes: lane
    surfaces (one quad per centre-line segment), lane lines (solid polylines at the road's
    edges, 3 m dashes every 9 m between lanes of one direction), stop lines and crosswalk
    stripes. Built once per network, so the world raster (camera ground, BEV drawings) and
    the perception labels paint the same road from the same shapes."""

    def __init__(self, net: RoadNetwork) -> None:
        quads = []
        for ln in net.lanes:
            lb, rb = ln.left_boundary, ln.right_boundary
            quads.append(np.stack([lb[:-1], lb[1:], rb[1:], rb[:-1]], axis=1))
        self.quads = np.concatenate(quads)  # (n, 4, 2)
        self.solid: list[np.ndarray] = []  # polylines (k, 2)
        dashes = []
        for ln in net.lanes:
            if ln.kind != "road":
                continue
            for boundary, neighbour in ((ln.left_boundary, ln.left), (ln.right_boundary, ln.right)):
                if neighbour is None:
                    self.solid.append(boundary)
                else:
                    dashes.extend(_dashes(boundary, 3.0, 6.0))
        self.dashes = np.array(dashes, dtype=np.float64).reshape(-1, 3, 2)
        self.stop_lines = np.array(
            [light.stop_line for light in net.lights], dtype=np.float64
        ).reshape(-1, 2, 2)
        stripes = []
        for a, b in net.crosswalks:  # zebra stripes across the walking direction
            d = (b - a) / np.linalg.norm(b - a)
            n = np.array([-d[1], d[0]])
            length = float(np.linalg.norm(b - a))
            for u in np.arange(0.5, length, 1.0):
                c = a + d * u
                corners = ((-0.25, -1.5), (0.25, -1.5), (0.25, 1.5), (-0.25, 1.5))
                stripes.append([c + along * d + across * n for along, across in corners])
        self.stripes = np.array(stripes, dtype=np.float64).reshape(-1, 4, 2)

    def paint(
        self,
        road: np.ndarray,
        marking: np.ndarray,
        px,
        thick: int,
        values: tuple[int, int] = (ROAD, MARKING),
    ) -> None:
        """Fill the lane surfaces into ``road`` and draw the markings into ``marking`` (the
        same image or two), with ``values`` (road, marking). ``px`` maps world points
        ``(..., 2)`` to cv2 pixel coordinates in fixed point with :data:`SHIFT` fractional
        bits (int32); lines are ``thick`` pixels wide, stop lines three times that."""
        import cv2

        road_value, marking_value = values
        if len(self.quads):
            cv2.fillPoly(road, list(px(self.quads)), road_value, cv2.LINE_8, SHIFT)
        lines = [px(line) for line in self.solid] + list(px(self.dashes))
        if lines:
            cv2.polylines(marking, lines, False, marking_value, thick, cv2.LINE_8, SHIFT)
        for a, b in px(self.stop_lines).tolist():
            cv2.line(marking, tuple(a), tuple(b), marking_value, 3 * thick, cv2.LINE_8, SHIFT)
        if len(self.stripes):
            for stripe in px(self.stripes):
                cv2.fillPoly(marking, [stripe], marking_value, cv2.LINE_8, SHIFT)


class GroundRaster:
    """The road network painted into a top-down class image (grass / road / markings) at
    ``resolution`` metres per pixel, for camera pixels that see the ground and for BEV
    drawings."""

    def __init__(self, net: RoadNetwork, resolution: float = 0.1) -> None:
        self.resolution = resolution
        x0, y0, x1, y1 = net.bounds
        self.origin = np.array([x0, y0])
        w = int(math.ceil((x1 - x0) / resolution))
        h = int(math.ceil((y1 - y0) / resolution))
        img = np.full((h, w), GRASS, dtype=np.uint8)
        scale = (1 << SHIFT) / resolution

        def px(points: np.ndarray) -> np.ndarray:
            return np.round((np.asarray(points) - self.origin) * scale).astype(np.int32)

        self.shapes = GroundShapes(net)
        self.shapes.paint(img, img, px, max(1, round(0.15 / resolution)))
        self.image = img

    def lookup(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Class of the world points ``(x, y)``; outside the raster is grass."""
        col = ((x - self.origin[0]) / self.resolution).astype(np.int64)
        row = ((y - self.origin[1]) / self.resolution).astype(np.int64)
        h, w = self.image.shape
        ok = (col >= 0) & (col < w) & (row >= 0) & (row < h)
        out = np.full(x.shape, GRASS, dtype=np.uint8)
        out[ok] = self.image[row[ok], col[ok]]
        return out


def _dashes(line: np.ndarray, on: float, off: float) -> list[np.ndarray]:
    """Dashes ``on`` metres long every ``on + off`` metres along a polyline, 3 points each."""
    s = arc_length(line)
    out = []
    for start in np.arange(0.0, s[-1] - on, on + off):
        u = np.linspace(start, start + on, 3)
        out.append(np.stack([np.interp(u, s, line[:, 0]), np.interp(u, s, line[:, 1])], axis=1))
    return out


class World:
    """A pybullet client with the pooled bodies of one env."""

    def __init__(self, n_vehicles: int, n_pedestrians: int, n_obstacles: int, gui: bool) -> None:
        self.client = Client(p.GUI if gui else p.DIRECT)
        self.gui = gui
        c = self.client
        if gui:
            c.configureDebugVisualizer(p.COV_ENABLE_GUI, 0)
        car_col = c.createCollisionShape(p.GEOM_BOX, halfExtents=EGO_HALF)
        ped_col = c.createCollisionShape(p.GEOM_BOX, halfExtents=PED_HALF)
        obs_col = c.createCollisionShape(p.GEOM_BOX, halfExtents=OBSTACLE_HALF)
        classes: dict[int, int] = {}

        def body(col: int, half, rgba, cls: int, group: int, mask: int) -> int:
            vis = c.createVisualShape(p.GEOM_BOX, halfExtents=half, rgbaColor=rgba)
            b = c.createMultiBody(0, col, vis, [0, 0, PARK_Z])
            c.setCollisionFilterGroupMask(b, -1, group, mask)
            classes[b] = cls
            return b

        self.ego = body(car_col, EGO_HALF, (0.86, 0.16, 0.16, 1), EGO, _EGO, _OTHER)
        other = _RAY | _EGO
        self.vehicles = [
            body(
                car_col,
                EGO_HALF,
                _VEHICLE_COLOURS[i % len(_VEHICLE_COLOURS)],
                VEHICLE,
                _OTHER,
                other,
            )
            for i in range(n_vehicles)
        ]
        self.pedestrians = [
            body(ped_col, PED_HALF, (0.95, 0.8, 0.2, 1), PEDESTRIAN, _OTHER, other)
            for _ in range(n_pedestrians)
        ]
        self.obstacles = [
            body(obs_col, OBSTACLE_HALF, (0.95, 0.5, 0.1, 1), STATIC, _OTHER, other)
            for _ in range(n_obstacles)
        ]
        self.light_heads = []
        for _ in range(4):  # visual only: lidar and contacts ignore them
            vis = c.createVisualShape(
                p.GEOM_BOX, halfExtents=(0.3, 0.3, 0.5), rgbaColor=(0, 0, 0, 1)
            )
            b = c.createMultiBody(0, -1, vis, [0, 0, PARK_Z])
            classes[b] = LIGHT
            self.light_heads.append(b)
        self._light_shown = [-1] * 4
        self.body_class = np.zeros(max(classes) + 2, dtype=np.uint8)
        for b, cls in classes.items():
            self.body_class[b] = cls
        self._road_bodies: list[int] = []
        self._rigs: dict[PinholeCamera, _CameraRig] = {}
        self.raster: GroundRaster | None = None

    # --- episode set-up ---------------------------------------------------------------------
    def set_road(self, net: RoadNetwork, raster_resolution: float) -> None:
        """Paint the ground raster (and, with the GUI, road meshes) for a new network."""
        self.raster = GroundRaster(net, raster_resolution)
        c = self.client
        for b in self._road_bodies:
            c.removeBody(b)
        self._road_bodies = []
        for i, light in enumerate(net.lights[:4]):
            a, b = np.array(light.stop_line[0]), np.array(light.stop_line[1])
            pos = b + (b - a) / np.linalg.norm(b - a) * 1.5
            c.resetBasePositionAndOrientation(self.light_heads[i], [pos[0], pos[1], 3.5], _quat(0))
        for i in range(len(net.lights), 4):
            c.resetBasePositionAndOrientation(self.light_heads[i], [0, 0, PARK_Z], _quat(0))
        self._light_shown = [-1] * 4
        if self.gui:
            self._road_bodies = _road_meshes(c, net)

    def show_lights(self, states: list[int]) -> None:
        for i, st in enumerate(states[:4]):
            if self._light_shown[i] != st:
                self.client.changeVisualShape(self.light_heads[i], -1, rgbaColor=_LIGHT_COLOURS[st])
                self._light_shown[i] = st

    # --- poses ------------------------------------------------------------------------------
    def place_ego(self, x: float, y: float, yaw: float) -> None:
        self.client.resetBasePositionAndOrientation(self.ego, (x, y, EGO_Z), _quat(yaw))

    def place(self, bodies: list[int], x, y, yaw, active, z: float) -> None:
        """Pose pooled bodies; inactive ones are parked far below the ground."""
        reset = self.client.resetBasePositionAndOrientation
        for i, b in enumerate(bodies):
            if active[i]:
                reset(b, (float(x[i]), float(y[i]), z), _quat(float(yaw[i])))
            else:
                reset(b, (0.0, 0.0, PARK_Z - 10.0 * i), _quat(0.0))

    # --- queries ----------------------------------------------------------------------------
    def ego_contacts(self) -> list[int]:
        """Bodies touching the ego (penetrating or within 1 cm)."""
        c = self.client
        c.performCollisionDetection()
        hits = {pt[2] for pt in c.getContactPoints(bodyA=self.ego) if pt[8] < 0.01}
        return sorted(hits)

    def cast(self, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Hit fractions (1 = nothing within range) and hit body ids (-1 = none) of the rays
        ``starts[i] → ends[i]`` (``n × 3`` arrays); the ego is invisible to its own rays."""
        res = self.client.rayTestBatch(starts, ends, numThreads=1, collisionFilterMask=_OTHER)
        frac = np.fromiter(map(_third, res), dtype=np.float64, count=len(res))
        ids = np.fromiter(map(_first, res), dtype=np.int64, count=len(res))
        return frac, ids

    def rig(self, cam: PinholeCamera) -> _CameraRig:
        if cam not in self._rigs:
            self._rigs[cam] = _CameraRig(cam)
        return self._rigs[cam]

    def camera(
        self, cam: PinholeCamera, x: float, y: float, yaw: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(rgb uint8 HxWx3, z-depth metres float32 HxW, class uint8 HxW)`` from a camera
        on the ego at pose ``(x, y, yaw)``."""
        rig = self.rig(cam)
        w, h = cam.width, cam.height
        _, _, rgba, depth_buf, seg = self.client.getCameraImage(
            w,
            h,
            rig.view(x, y, yaw),
            rig.projection,
            renderer=p.ER_TINY_RENDERER,
            shadow=0,
        )
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(h, w, 4)[..., :3].copy()
        zbuf = np.asarray(depth_buf, dtype=np.float64).reshape(h, w)
        seg = np.asarray(seg, dtype=np.int64).reshape(h, w)
        n, f = cam.near, cam.far
        depth = f * n / (f - (f - n) * zbuf)
        background = zbuf >= 0.99999
        cls = np.where(seg >= 0, self.body_class[np.clip(seg, 0, len(self.body_class) - 1)], SKY)
        cls = cls.astype(np.uint8)
        # paint the ground where the camera sees no body
        c_, s_ = math.cos(yaw), math.sin(yaw)
        gx = x + c_ * rig.ground_xy[:, 0] - s_ * rig.ground_xy[:, 1]
        gy = y + s_ * rig.ground_xy[:, 0] + c_ * rig.ground_xy[:, 1]
        ground_cls = np.full((h, w), SKY, dtype=np.uint8)
        ground_cls[rig.ground] = self.raster.lookup(gx, gy)
        ground_depth = np.full((h, w), f)
        ground_depth[rig.ground] = rig.ground_depth
        cls = np.where(background, ground_cls, cls)
        rgb = np.where(background[..., None], PALETTE[ground_cls], rgb)
        depth = np.where(background, ground_depth, depth)
        return rgb, depth.astype(np.float32), cls

    def close(self) -> None:
        self.client.disconnect()


def _road_meshes(c, net: RoadNetwork) -> list[int]:
    """Flat road surfaces as pybullet meshes, for the GUI window only."""
    bodies = []
    ground = c.createVisualShape(
        p.GEOM_BOX, halfExtents=(2000, 2000, 0.01), rgbaColor=(0.29, 0.49, 0.24, 1)
    )
    bodies.append(c.createMultiBody(0, -1, ground, [0, 0, -0.02]))
    for ln in net.lanes:
        lb, rb = ln.left_boundary, ln.right_boundary
        verts = np.empty((2 * len(lb), 3))
        verts[0::2, :2], verts[1::2, :2] = lb, rb
        verts[:, 2] = 0.01
        idx = []
        for i in range(len(lb) - 1):
            a, b, cc, d = 2 * i, 2 * i + 1, 2 * i + 2, 2 * i + 3
            idx += [a, b, cc, b, d, cc, a, cc, b, b, cc, d]  # both faces
        vis = c.createVisualShape(
            p.GEOM_MESH, vertices=verts.tolist(), indices=idx, rgbaColor=(0.32, 0.32, 0.35, 1)
        )
        bodies.append(c.createMultiBody(0, -1, vis, [0, 0, 0]))
    return bodies
