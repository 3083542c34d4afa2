"""Learned perception input of the stack: a trained perception run (camera, lidar or
fusion) in place of :func:`.perception.privileged`, giving the same :class:`Percept`.

Per call: the network's inputs are built from the live env by the collection's own code
(:func:`pilot.perception.episodes.sensor_arrays`, with the camera and lidar of the
dataset the network was trained on, not the env's observation sensors), the network runs
at batch 1, its boxes are decoded by :func:`pilot.perception.heads.decode`, one box kept
per object (:func:`apart`), joined, for a network that reads the lidar, by the cars
behind the grid that its raw returns show (:mod:`.rear`), and moved to the world frame.
A single frame has no velocities, so each box takes the displacement of the nearest box
of its class in the previous call's percept over the time between them (road obstacles,
which never move, keep 0); a box of the previous percept that nothing takes is kept for
``hold`` seconds, moved on at its velocity (a detector that flickers should not make a
pedestrian vanish). The light's colour is the network's; the stop line comes from the
known map (the CARLA map track: lane geometry and routes are given), through
:func:`pilot.perception.labels.light_ahead`, and so, for a network that reads the light
from crops (``light_crop``), do its heads' positions
(:func:`pilot.perception.labels.light_heads`). The ego's pose, speed, clock and route
progress are its own state (odometry), as in the privileged percept.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import weakref
from pathlib import Path

import numpy as np
import torch

from pilot.config import from_dict
from pilot.envs.driving.roads import GREEN, RED, YELLOW, wrap_angle
from pilot.errors import UserError
from pilot.perception.episodes import CollectConfig, sensor_arrays
from pilot.perception.grid import in_footprint
from pilot.perception.heads import decode
from pilot.perception.labels import BOX_FIELDS, light_ahead, light_heads
from pilot.perception.sensors import camera_extrinsics, camera_intrinsics, pinhole
from pilot.perception.train import load

from .behaviour import STATIC
from .perception import NO_LIGHT, Percept
from .rear import VEHICLE, rear_boxes

#: the light head's state names → the stack's light values
LIGHTS = {"none": NO_LIGHT, "green": GREEN, "yellow": YELLOW, "red": RED}


def to_world(boxes: np.ndarray, pose: tuple[float, float, float]) -> np.ndarray:
    """Ego-frame box rows (:data:`BOX_FIELDS`) seen from ``pose`` back in the world frame:
    the inverse of :func:`pilot.perception.labels.to_ego`."""
    x0, y0, yaw = pose
    c, s = math.cos(yaw), math.sin(yaw)
    b = np.array(boxes, dtype=np.float64).reshape(-1, len(BOX_FIELDS))
    x, y, vx, vy = b[:, 0].copy(), b[:, 1].copy(), b[:, 5].copy(), b[:, 6].copy()
    b[:, 0], b[:, 1] = x0 + c * x - s * y, y0 + s * x + c * y
    b[:, 2] = [wrap_angle(a + yaw) for a in b[:, 2]]
    b[:, 5], b[:, 6] = c * vx - s * vy, s * vx + c * vy
    return b


def associate(
    centres: np.ndarray,
    classes: np.ndarray,
    prev_centres: np.ndarray,
    prev_classes: np.ndarray,
    gate: float,
) -> np.ndarray:
    """For each of this frame's ``centres`` ``(n, 2)`` the index of its previous-frame box
    (-1: none): pairs of the same class closer than ``gate`` metres, nearest pair first,
    each box used once (greedy matching: at a few metres' gate and a tenth of a second
    apart, objects are rarely close enough for a global assignment to choose otherwise)."""
    match = np.full(len(centres), -1, dtype=np.int64)
    if not len(centres) or not len(prev_centres):
        return match
    d = np.linalg.norm(centres[:, None, :2] - prev_centres[None, :, :2], axis=2)
    d[np.asarray(classes)[:, None] != np.asarray(prev_classes)[None, :]] = np.inf
    d[d > gate] = np.inf
    for flat in np.argsort(d, axis=None):
        i, j = np.unravel_index(flat, d.shape)
        if not np.isfinite(d[i, j]):
            break
        if match[i] < 0 and j not in match:
            match[i] = j
    return match


def apart(boxes: np.ndarray, kept: np.ndarray | None = None) -> np.ndarray:
    """Which of ``boxes`` (rows :data:`BOX_FIELDS`, best first, as :func:`decode` gives
    them) to keep where objects do not overlap: a box is dropped when its centre lies in
    the footprint of a better box kept before it, or that box's centre lies in its own,
    whatever the two classes. The heatmap's max-pool NMS works per class and cell, so one
    object can come out as several boxes: a road obstacle read also as two pedestrians
    inside it, a car as three cars along its length. ``kept``: better boxes already kept,
    before all of ``boxes`` (not tested again)."""
    before = np.asarray([] if kept is None else kept, dtype=np.float64)
    before = before.reshape(-1, len(BOX_FIELDS))
    n0 = len(before)
    b = np.vstack([before, np.asarray(boxes, dtype=np.float64).reshape(-1, len(BOX_FIELDS))])
    keep = np.arange(len(b)) < n0
    for i in range(n0, len(b)):
        box, others = b[i], b[keep]
        covered = in_footprint(others[:, :2], box).any() or any(
            in_footprint(box[:2], k) for k in others
        )
        keep[i] = not covered
    return keep[n0:]


@dataclasses.dataclass(frozen=True)
class Tracks:
    """The objects of one moment as the stack keeps them: world-frame ``boxes`` (rows
    :data:`BOX_FIELDS`, velocities filled in) and ``classes``; ``tracked``, whether each
    box's velocity comes from an earlier match; ``missed``, seconds since the network last
    found it (0: found now)."""

    t: float
    boxes: np.ndarray
    classes: np.ndarray
    tracked: np.ndarray
    missed: np.ndarray


def update_tracks(
    boxes: np.ndarray,
    classes: np.ndarray,
    t: float,
    prev: Tracks | None,
    gate: float,
    smoothing: float,
    hold: float,
    still: tuple[int, ...] = (),
) -> Tracks:
    """This frame's detections (``boxes``, velocities ignored) as :class:`Tracks` against
    the previous ones (None: the first frame): each detection takes the displacement from
    its associated previous box over the time between them (blended with that box's own
    velocity by ``smoothing`` when it was tracked before: centre noise over one control
    period is metres per second of velocity noise); a previous box that no detection
    takes is kept, moved on at its velocity, until it has been missed for more than
    ``hold`` seconds. Boxes of the ``still`` classes (things that never move, such as
    road obstacles) keep velocity 0: what their displacement measures is centre noise."""
    boxes = np.array(boxes, dtype=np.float64).reshape(-1, len(BOX_FIELDS))
    classes = np.asarray(classes, dtype=np.uint8)
    boxes[:, 5:7] = 0.0
    tracked = np.zeros(len(boxes), dtype=bool)
    missed = np.zeros(len(boxes))
    if prev is None or t <= prev.t:
        return Tracks(t, boxes, classes, tracked, missed)
    dt = t - prev.t
    match = associate(boxes[:, :2], classes, prev.boxes[:, :2], prev.classes, gate)
    tracked = match >= 0
    j = match[tracked]
    v = (boxes[tracked, :2] - prev.boxes[j, :2]) / dt
    v[np.isin(classes[tracked], still)] = 0.0
    old = prev.tracked[j, None]
    boxes[tracked, 5:7] = np.where(old, smoothing * prev.boxes[j, 5:7] + (1 - smoothing) * v, v)
    lost = np.setdiff1d(np.arange(len(prev.boxes)), j)
    keep = lost[prev.missed[lost] + dt <= hold + 1e-9]
    carried = prev.boxes[keep].copy()
    carried[:, :2] += carried[:, 5:7] * dt
    return Tracks(
        t,
        np.vstack([boxes, carried]),
        np.concatenate([classes, prev.classes[keep]]),
        np.concatenate([tracked, prev.tracked[keep]]),
        np.concatenate([missed, prev.missed[keep] + dt]),
    )


def _collect_config(ckpt, geometry) -> CollectConfig:
    """The sensors the network was trained on: the collect config of the dataset the run
    records (``run.json``), else the default one; either must give the checkpoint's camera
    calibration, image size and grid."""
    from pilot.perception.shards import read_manifest
    from pilot.runs import run_of_checkpoint

    cfg, source = CollectConfig(), "the default collect config"
    run = run_of_checkpoint(ckpt.path)
    root = ((run.info.get("data") or {}).get("root") if run else None) or None
    if root and (Path(root) / "manifest.json").is_file():
        cfg = from_dict(CollectConfig, read_manifest(Path(root))["config"])
        source = f"the collect config of {root}"
    check_sensors(cfg, geometry, f"{ckpt.path} was trained on other sensors than {source}")
    return cfg


def check_sensors(cfg: CollectConfig, geometry, message: str) -> None:
    """Refuse a collect config whose camera or grid is not the network's."""
    cam = pinhole(cfg.camera)
    same = (
        np.allclose(camera_intrinsics(cam), geometry.camera_K)
        and np.allclose(camera_extrinsics(cam), geometry.camera_T)
        and (cfg.camera.height, cfg.camera.width) == tuple(geometry.image_hw)
        and cfg.labels.grid == geometry.grid
    )
    if not same:
        raise UserError(f"{message} (camera or grid differ); pass the dataset's collect config")


class LearnedPerception:
    """A trained perception run as the stack's percept: ``percept = perception(env)``.

    Loads the network once (a run directory or checkpoint that is not a perception
    network is a one-line :class:`UserError`). One instance may serve several envs: the
    previous percept each velocity is differenced against is kept per env (weakly, by
    its unwrapped env) and forgotten when that env starts a new route, so one instance
    per stack and one shared by several stacks behave alike.

    ``collect`` is the collect config of the network's dataset (default: the one the run
    records, else the default config); ``noise`` the lidar's range noise: a generator is
    one stream for every route it is used on; an int (or None: 0) gives each route a
    stream of its own, seeded from it and from the env's random state when the route is
    first seen (read, not drawn from: the env's stream, and so its episode, stays what it
    would be under privileged perception), so a route plays the same alone as after
    others, and alike in a batch of envs, as collection gives each episode its own;
    ``gate`` the association distance (m); ``light_range``
    how far ahead a stop line counts (m, as :func:`.perception.privileged`);
    ``smoothing`` the weight of a tracked box's previous velocity against its new
    difference (0: the plain difference; 0.6 halved the median error on Intersection);
    ``threshold`` the centre probability a detection needs (0: the run's own
    ``score_threshold``; one above it drops the weaker boxes, e.g. the best-F1 point
    `pilot perception eval` prints); ``hold`` how long (s) a box the network stops
    finding is kept, moved on at its velocity (0: not at all); ``exclusive``, whether
    boxes inside better ones are dropped (:func:`apart`); ``rear``, for a network that
    reads the lidar, how far behind the car (m) its raw returns are watched for vehicles
    the grid does not reach (:func:`.rear.rear_boxes`; 0: not at all)."""

    def __init__(
        self,
        run_dir: str | Path,
        device: str = "cpu",
        collect: CollectConfig | None = None,
        noise: np.random.Generator | int | None = None,
        gate: float = 4.0,
        light_range: float = 60.0,
        smoothing: float = 0.0,
        threshold: float = 0.0,
        hold: float = 0.0,
        exclusive: bool = True,
        rear: float = 0.0,
    ) -> None:
        self.device = torch.device(device)
        self.model, self.config, ckpt = load(run_dir, self.device)
        geometry = self.model.geometry
        if collect is None:
            collect = _collect_config(ckpt, geometry)
        else:
            check_sensors(collect, geometry, f"{ckpt.path} was trained on other sensors")
        self.collect, self.checkpoint = collect, ckpt
        model = self.config.model
        self.camera = pinhole(collect.camera) if model.uses_camera else None
        if model.uses_lidar:
            from pilot.envs.driving.sensors import Lidar

            self.lidar = Lidar(collect.lidar)
        else:
            self.lidar = None
        self.noise = 0 if noise is None else noise
        self._noise: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.lights = [LIGHTS[name] for name in geometry.light_states]
        self.gate, self.light_range, self.smoothing = gate, light_range, smoothing
        self.threshold = threshold or self.config.score_threshold
        self.hold, self.exclusive = hold, exclusive
        self.rear = rear if self.lidar is not None else 0.0
        self._previous: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def inputs(self, env) -> dict[str, np.ndarray]:
        """The network's input arrays for the env's current moment, built as the dataset
        builds a frame's (``camera`` and/or ``lidar`` + ``lidar_bev``; for a ``light_crop``
        network, ``light_heads`` from the known map, within the dataset's light range)."""
        u = env.unwrapped
        sim = u.get_state().sim
        pose = (sim.ego.x, sim.ego.y, sim.ego.yaw)
        noise = self._route_noise(u) if self.lidar is not None else None
        out = sensor_arrays(
            u.world, pose, self.collect, self.camera, self.lidar, noise, u.weather, sim.steps
        )
        if self.config.model.light_crop:
            out["light_heads"] = light_heads(env, pose, self.collect.labels.light_range)
        return out

    def _route_noise(self, u) -> np.random.Generator:
        """The lidar noise generator for the route ``u`` (an unwrapped env) is on."""
        if isinstance(self.noise, np.random.Generator):
            return self.noise
        route, noise = self._noise.get(u, (None, None))
        if route is not u.route:  # a new route: its stream, from the env's state now
            state = repr(u.np_random.bit_generator.state).encode()
            key = int.from_bytes(hashlib.sha256(state).digest()[:8], "little")
            noise = np.random.default_rng([int(self.noise), key])
            self._noise[u] = (u.route, noise)
        return noise

    @torch.no_grad()
    def detect(self, inputs: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], int]:
        """``(decoded ego-frame boxes of :func:`decode`, light head's class index)`` of one
        frame's input arrays."""
        model = self.model.eval()

        def tensor(key: str) -> torch.Tensor | None:
            if key not in inputs:
                return None
            return torch.from_numpy(np.ascontiguousarray(inputs[key][None])).to(self.device)

        out = model(
            tensor("camera") if model.config.uses_camera else None,
            tensor("lidar_bev") if model.config.uses_lidar else None,
            tensor("light_heads"),
        )
        (found,) = decode(
            out["heatmap"],
            out["reg"],
            model.geometry,
            model.config.bev_stride,
            self.config.top_k,
            self.threshold,
        )
        return found, int(out["light"][0].argmax())

    def percept(self, env, inputs: dict[str, np.ndarray]) -> Percept:
        """The percept of the env's current moment from its input arrays."""
        u = env.unwrapped
        sim = u.get_state().sim
        ego = sim.ego
        pose = (ego.x, ego.y, ego.yaw)
        found, light_class = self.detect(inputs)
        keep = apart(found["boxes"]) if self.exclusive else slice(None)
        boxes, classes = found["boxes"][keep], found["box_class"][keep].astype(np.uint8)
        if self.rear > 0.0:  # cars behind the grid, from the raw lidar
            behind = rear_boxes(inputs["lidar"], self.lidar, pose, u.net, self.rear)
            seen = apart(behind, kept=boxes)  # the network's boxes come first
            boxes = np.vstack([boxes, behind[seen]])
            classes = np.concatenate([classes, np.full(int(seen.sum()), VEHICLE, np.uint8)])
        boxes = to_world(boxes, pose)
        route, prev = self._previous.get(u, (None, None))
        if route is not u.route:
            prev = None  # a new route: nothing to difference against
        tracks = update_tracks(
            boxes, classes, sim.t, prev, self.gate, self.smoothing, self.hold, (STATIC,)
        )
        # the colour is the network's; a light counts where the map has a stop line ahead
        line, distance = light_ahead(env, pose, self.light_range)
        light = self.lights[light_class] if line is not None else NO_LIGHT
        if light == NO_LIGHT:
            distance = math.inf
        now = Percept(
            pose, ego.v, sim.t, sim.route_s, tracks.classes, tracks.boxes, light, distance
        )
        self._previous[u] = (u.route, tracks)
        return now

    def __call__(self, env) -> Percept:
        return self.percept(env, self.inputs(env))
