"""The driving world's bodies: the boxes that rays and contacts meet, and the pybullet
scene that camera images are taken of.

Each env owns one :class:`World` with its own physics server (:class:`Client`; DIRECT by
default, the GUI only when asked), so envs never share simulator state. Nothing moves by
physics: the Python models in :mod:`.traffic` decide where things are and the world
keeps every vehicle, pedestrian, obstacle and roadside box as an upright box, which rays
(the lidar) and the car's contacts meet outside pybullet (:mod:`.boxcast`). pybullet is
the renderer: its bodies, visual only, come from a pool made once per env (ego, vehicles,
pedestrians, obstacles, light heads, clutter) and are stood where their boxes are only
when a picture is taken, so nothing is created per episode, nothing leaks, and a rollout
without a camera never poses one.

The ground is flat, so it is not a pybullet body: camera pixels that see no body are
coloured from a raster of the road network (grass / road / markings) at the point where
their viewing ray meets the ground, and lidar rays that hit nothing are cut at the ground
plane analytically. This keeps the camera's cost to the few boxes in view: pybullet's
TINY renderer spends about 1 µs per road triangle per frame, and a textured road
network has thousands of them.
"""

from __future__ import annotations

import contextlib
import functools
import math
from typing import Any

import numpy as np

from . import import_pybullet_quietly
from .boxcast import cast_boxes, sweep_boxes
from .camera import CameraRig, PinholeCamera
from .clutter import KINDS, Clutter, ClutterBodies
from .ground import GroundRaster
from .movers import MovingBoxes, quat
from .roads import GREEN, RED, YELLOW, RoadNetwork
from .semantics import (  # noqa: F401 - the classes are the world's, for its users too
    CLASS_NAMES,
    EGO,
    GRASS,
    LIGHT,
    MARKING,
    PALETTE,
    PEDESTRIAN,
    ROAD,
    SKY,
    STATIC,
    VEHICLE,
)
from .signals import HOUSING_HALF, LAMP_HALF, NEAR_HALF, head_poses
from .traffic import VEHICLE_LENGTH, VEHICLE_WIDTH

p = import_pybullet_quietly()


EGO_HALF = (0.5 * VEHICLE_LENGTH, 0.5 * VEHICLE_WIDTH, 0.75)
EGO_Z = 0.2 + EGO_HALF[2]  # the body floats 0.2 m above the ground (ground clearance)
PED_HALF = (0.25, 0.3, 0.9)
OBSTACLE_HALF = (0.5, 1.1, 0.6)
PARK_Z = -100.0
#: Rays and contacts name roadside clutter box ``i`` with the id ``CLUTTER_IDS + i``: an id
#: of its own, above those of pybullet's bodies (see .clutter).
CLUTTER_IDS = 1 << 16

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


class World:
    """A pybullet client with the pooled bodies of one env."""

    def __init__(
        self,
        n_vehicles: int,
        n_pedestrians: int,
        n_obstacles: int,
        gui: bool,
        reach: float = 100.0,
    ) -> None:
        """Pooled bodies for that many vehicles, pedestrians and obstacles; roadside
        clutter (:meth:`set_clutter`) is placed within ``reach`` metres of the car and
        beyond, enough for every sensor."""
        self.client = Client(p.GUI if gui else p.DIRECT)
        self.gui = gui
        c = self.client
        if gui:
            c.configureDebugVisualizer(p.COV_ENABLE_GUI, 0)
        classes: dict[int, int] = {}

        def body(half, rgba, cls: int) -> int:  # visual only: rays and contacts meet boxes
            vis = c.createVisualShape(p.GEOM_BOX, halfExtents=half, rgbaColor=rgba)
            b = c.createMultiBody(0, -1, vis, [0, 0, PARK_Z])
            classes[b] = cls
            return b

        self.ego = body(EGO_HALF, (0.86, 0.16, 0.16, 1), EGO)
        self.vehicles = [
            body(EGO_HALF, _VEHICLE_COLOURS[i % len(_VEHICLE_COLOURS)], VEHICLE)
            for i in range(n_vehicles)
        ]
        self.pedestrians = [
            body(PED_HALF, (0.95, 0.8, 0.2, 1), PEDESTRIAN) for _ in range(n_pedestrians)
        ]
        self.obstacles = [
            body(OBSTACLE_HALF, (0.95, 0.5, 0.1, 1), STATIC) for _ in range(n_obstacles)
        ]
        #: per light, its near head, its far head's housing and its far head's lamp (.signals)
        self.light_heads: list[tuple[int, int, int]] = []
        self._light_shown: list[int] = []
        self._lights_of: RoadNetwork | None = None  # the network whose heads to pose
        self._heads_posed = True
        self._light_clock: tuple[RoadNetwork, float] | None = None
        self.body_class = np.zeros(max(classes) + 2, dtype=np.uint8)
        for b, cls in classes.items():
            self.body_class[b] = cls
        self._add_light_heads(4)
        self._clutter_shapes: dict[int, int] = {}
        #: roadside clutter (buildings, trees, ...), pooled and placed around the car
        self.clutter = ClutterBodies(c, self._make_clutter, CLUTTER_IDS, radius=reach + 20.0)
        #: the vehicles, pedestrians and obstacles as boxes (shown as near as the clutter)
        self.movers = MovingBoxes(
            c,
            self.vehicles + self.pedestrians + self.obstacles,
            [EGO_HALF] * n_vehicles + [PED_HALF] * n_pedestrians + [OBSTACLE_HALF] * n_obstacles,
            PARK_Z,
            reach + 20.0,
        )
        self._ego_pose = (0.0, 0.0, 0.0)
        self._still: np.ndarray | None = None  # the clutter rows in the ray table (_boxes)
        self._road_bodies: list[int] = []
        self._rigs: dict[PinholeCamera, CameraRig] = {}
        self.raster: GroundRaster | None = None

    def _classify(self, body: int, cls: int, count: int = 1) -> None:
        """``body_class`` of ids ``body ... body + count - 1``."""
        end = body + count
        if end > len(self.body_class):
            grown = np.zeros(end + 64, dtype=np.uint8)
            grown[: len(self.body_class)] = self.body_class
            self.body_class = grown
        self.body_class[body:end] = cls

    def _add_light_heads(self, n: int) -> None:
        """The heads of up to ``n`` lights (visual only: lidar and contacts ignore them)."""
        c = self.client

        def box(half: tuple[float, float, float]) -> int:
            vis = c.createVisualShape(p.GEOM_BOX, halfExtents=half, rgbaColor=(0, 0, 0, 1))
            b = c.createMultiBody(0, -1, vis, [0, 0, PARK_Z])
            self._classify(b, LIGHT)
            return b

        while len(self.light_heads) < n:
            self.light_heads.append((box(NEAR_HALF), box(HOUSING_HALF), box(LAMP_HALF)))
            self._light_shown.append(-1)

    def _make_clutter(self, kind: int) -> int:
        """A clutter body of ``kind``: a STATIC box, visual only (rays and contacts with
        clutter are worked out in numpy, see :mod:`.clutter`)."""
        c = self.client
        if kind not in self._clutter_shapes:
            k = KINDS[kind]
            vis = c.createVisualShape(p.GEOM_BOX, halfExtents=k.half, rgbaColor=k.rgba)
            self._clutter_shapes[kind] = vis
        b = c.createMultiBody(0, -1, self._clutter_shapes[kind], [0, 0, self.clutter.park_z])
        if b >= CLUTTER_IDS:
            raise RuntimeError(f"over {CLUTTER_IDS} pybullet bodies: they would take clutter ids")
        self._classify(b, STATIC)
        return b

    # --- episode set-up ---------------------------------------------------------------------
    def set_road(self, net: RoadNetwork, raster_resolution: float) -> None:
        """Paint the ground raster (and, with the GUI, road meshes) for a new network."""
        self.raster = GroundRaster(net, raster_resolution)
        c = self.client
        for b in self._road_bodies:
            c.removeBody(b)
        self._road_bodies = []
        self._lights_of = net  # their heads are posed when a picture first needs them
        for i, heads in enumerate(self.light_heads):  # parked apart (see ClutterBodies.show)
            for j, head in enumerate(heads):
                c.resetBasePositionAndOrientation(head, [10.0 * i, j, PARK_Z], quat(0))
        self._heads_posed = False
        self._light_clock = None
        self._light_shown = [-1] * len(self.light_heads)
        if self.gui:
            self._road_bodies = _road_meshes(c, net)
            self._show_props()

    def _show_props(self) -> None:
        """Pose the ego, the vehicles, pedestrians and obstacles, the light heads and the
        clutter near the car, which only pictures show (rays and contacts ignore the heads
        and meet the boxes in numpy), so that a rollout without a camera never poses or
        recolours them."""
        x, y, yaw = self._ego_pose
        self.client.resetBasePositionAndOrientation(self.ego, (x, y, EGO_Z), quat(yaw))
        self.movers.show(x, y, everything=self.gui)
        if not self._heads_posed:
            poses = head_poses(self._lights_of)
            self._add_light_heads(len(poses))
            for heads, light in zip(self.light_heads, poses, strict=False):
                for head, (hx, hy, hz, hyaw) in zip(heads, light, strict=True):
                    self.client.resetBasePositionAndOrientation(head, (hx, hy, hz), quat(hyaw))
            self._heads_posed = True
            if self._light_clock is not None:
                net, t = self._light_clock
                self.show_lights(net.light_states(t))
        self.clutter.show()

    def set_clutter(self, layout: Clutter) -> None:
        """Roadside clutter for a new episode (empty: none); it follows the car. Its boxes
        answer rays and contacts with the ids ``CLUTTER_IDS + index``, of class STATIC."""
        self.clutter.set_layout(layout)
        self._classify(CLUTTER_IDS, STATIC, len(layout))

    def set_light_clock(self, net: RoadNetwork, t: float) -> None:
        """The lights' time: their heads show their colours then, once a picture needs
        them (until then, working out every light's state each step is not needed)."""
        self._light_clock = (net, t)
        if self._heads_posed:
            self.show_lights(net.light_states(t))

    def show_lights(self, states: list[int]) -> None:
        for i, st in enumerate(states):
            if self._light_shown[i] != st:
                near, _, lamp = self.light_heads[i]
                for head in (near, lamp):
                    self.client.changeVisualShape(head, -1, rgbaColor=_LIGHT_COLOURS[st])
                self._light_shown[i] = st

    # --- poses ------------------------------------------------------------------------------
    def place_ego(self, x: float, y: float, yaw: float) -> None:
        self._ego_pose = (x, y, yaw)
        self.clutter.follow(x, y)
        if self.gui:
            self._show_props()

    def place(self, bodies: list[int], x, y, yaw, active, z: float) -> None:
        """Pose pooled bodies (after :meth:`place_ego`; arrays over the pool ``bodies``):
        the ``active`` ones answer rays and contacts from there, and stand there in the
        pictures (:class:`.movers.MovingBoxes`); the others are out of every ray's, contact's
        and camera's way."""
        self.movers.place(bodies, x, y, yaw, active, z)
        if self.gui:
            self.movers.show(*self._ego_pose[:2], everything=True)

    # --- queries ----------------------------------------------------------------------------
    def ego_contacts(self) -> list[int]:
        """Bodies touching the ego (penetrating or within 1 cm)."""
        z = (EGO_Z - EGO_HALF[2], EGO_Z + EGO_HALF[2])
        pose, half = self._ego_pose, EGO_HALF[:2]
        hits = self.movers.touching(*pose, half, z, 0.01)
        return sorted(hits + self.clutter.touching(*pose, half, z, 0.01))

    def cast(self, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Hit fractions (1 = nothing within range) and hit body ids (-1 = none) of the rays
        ``starts[i] → ends[i]`` (``n × 3`` arrays) against the vehicles, pedestrians,
        obstacles and clutter (:mod:`.boxcast`); the ego is not among them."""
        frac, ids = np.ones(len(starts)), np.full(len(starts), -1, dtype=np.int64)
        box, box_ids = self._boxes()
        if not len(box) or not len(starts):
            return frac, ids
        frac, which = cast_boxes(starts, ends, box, frac)
        hit = which >= 0
        ids[hit] = box_ids[which[hit]]
        return frac, ids

    def sweep(self, x: float, y: float, yaw_cs: tuple[float, float], rays, mount: float, ground):
        """A lidar sweep from ``(x, y, mount)`` with the car's heading's cosine and sine
        ``yaw_cs``: :func:`.boxcast.sweep_boxes` against every box; the ego is not among
        them."""
        box, box_ids = self._boxes()
        return sweep_boxes(x, y, *yaw_cs, rays, mount, box, box_ids, ground)

    def _boxes(self) -> tuple[np.ndarray, np.ndarray]:
        """Every box rays meet, the moving ones first, and their ids: one table, whose
        clutter part is copied in only when the clutter is placed anew."""
        moving, moving_ids = self.movers.table()
        still, still_ids = self.clutter.table()
        if self._still is not still:
            self._still = still
            self._all_box = np.concatenate([moving, still])
            self._all_ids = np.concatenate([moving_ids, still_ids])
        else:
            self._all_box[: len(moving)] = moving
        return self._all_box, self._all_ids

    def rig(self, cam: PinholeCamera) -> CameraRig:
        if cam not in self._rigs:
            self._rigs[cam] = CameraRig(cam)
        return self._rigs[cam]

    def camera(
        self, cam: PinholeCamera, x: float, y: float, yaw: float, **light: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(rgb uint8 HxWx3, z-depth metres float32 HxW, class uint8 HxW)`` from a camera
        on the ego at pose ``(x, y, yaw)``; ``light`` are getCameraImage's light keywords
        (``lightDirection``, ...: the weather's sun), none for the renderer's own light."""
        rig = self.rig(cam)
        self._show_props()
        w, h = cam.width, cam.height
        _, _, rgba, depth_buf, seg = self.client.getCameraImage(
            w,
            h,
            rig.view(x, y, yaw),
            rig.projection,
            renderer=p.ER_TINY_RENDERER,
            shadow=0,
            **light,
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
