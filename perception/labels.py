"""Ground truth for the BEV perception network, read from a live driving env.

Everything is in the ego frame of :mod:`.grid` (x forward, y left, metres):

* a semantic grid, one 0/1 channel per class of :data:`GRID_CLASSES` (names from the
  driving world's ``CLASS_NAMES``; channels overlap: a marking lies on the road, a car
  on both);
* the objects (vehicles, pedestrians, static obstacles) whose centres lie on the grid, as
  rows of :data:`BOX_FIELDS`: centre, yaw relative to the ego, length, width, and the
  velocity over the ground expressed in the ego's axes (not relative to the ego: subtract
  the ego's speed along x for that);
* the state of the light that governs the ego's lane (:data:`LIGHT_STATES`), and where
  that light's two heads are (:func:`light_heads`: the map's, as a map-track stack knows
  them, so that a network can look there for the colour);
* the expert's next waypoints along the route.

The road and markings are painted from the same world-frame shapes as the env's ground
raster (``GroundShapes``), so the labels, the camera's ground and ``bev_image()`` agree.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from pilot.config import field
from pilot.envs.driving.ground import SHIFT, GroundShapes
from pilot.envs.driving.pedestrians import crosswalk_positions
from pilot.envs.driving.roads import wrap_angle
from pilot.envs.driving.signals import head_poses
from pilot.envs.driving.traffic import VEHICLE_LENGTH, VEHICLE_WIDTH
from pilot.envs.driving.world import (
    CLASS_NAMES,
    OBSTACLE_HALF,
    PED_HALF,
    PEDESTRIAN,
    STATIC,
    VEHICLE,
)

from .grid import GridConfig, ego_xy, fill_boxes

#: Channels of the semantic grid, in order; every name is one of ``CLASS_NAMES``.
GRID_CLASSES = ("road", "marking", "vehicle", "pedestrian", "static")
#: Classes of the object list (``CLASS_NAMES`` ids in ``box_class``).
BOX_CLASSES = ("vehicle", "pedestrian", "static")
#: Columns of a box row.
BOX_FIELDS = ("x", "y", "yaw", "length", "width", "vx", "vy")
#: Light labels: the world's state (GREEN 0, YELLOW 1, RED 2; -1 none) plus one.
LIGHT_STATES = ("none", "green", "yellow", "red")

_SIZE = {  # (length, width) of each class's pybullet box
    VEHICLE: (VEHICLE_LENGTH, VEHICLE_WIDTH),
    PEDESTRIAN: (2 * PED_HALF[0], 2 * PED_HALF[1]),
    STATIC: (2 * OBSTACLE_HALF[0], 2 * OBSTACLE_HALF[1]),
}
_LIMIT = 16000 << SHIFT  # cv2 draws in fixed point; farther vertices are clipped


@dataclasses.dataclass(frozen=True)
class LabelConfig:
    """What the labels hold and where."""

    grid: GridConfig = field(GridConfig(), "extent and resolution of the BEV grid")
    waypoints: int = field(6, "expert waypoints ahead along the route")
    waypoint_spacing: float = field(4.0, "metres between waypoints")
    light_range: float = field(
        30.0, "a lane's light counts when its stop line is at most this far ahead (m)"
    )

    def __post_init__(self) -> None:
        if self.waypoints < 1 or self.waypoint_spacing <= 0 or self.light_range <= 0:
            raise ValueError("need waypoints >= 1, waypoint_spacing > 0 and light_range > 0")


@dataclasses.dataclass
class Labels:
    """The labels of one frame (shapes in the field comments; n objects, k waypoints)."""

    grid: np.ndarray  # uint8 (len(GRID_CLASSES), rows, cols), 0/1
    boxes: np.ndarray  # float32 (n, 7), columns BOX_FIELDS
    box_class: np.ndarray  # uint8 (n,), CLASS_NAMES ids
    light: int  # index into LIGHT_STATES
    light_distance: float  # metres to that light's stop line along the lane (inf: none)
    waypoints: np.ndarray  # float32 (k, 2), ego frame
    light_heads: np.ndarray  # float32 (2, 3), ego frame (NaN: no light), see light_heads


@dataclasses.dataclass(frozen=True)
class Scene:
    """The moment the labels describe, in the world frame: the ego's pose and speed, the
    lights' clock, the route progress and every active object (``boxes`` rows as
    :data:`BOX_FIELDS`)."""

    pose: tuple[float, float, float]
    speed: float
    t: float
    route_s: float
    box_class: np.ndarray
    boxes: np.ndarray


def scene(env) -> Scene:
    """Read the world frame state of a driving env that has been reset: vehicles from the
    traffic model, pedestrians from their crosswalks, static obstacles from the bodies the
    world placed (their lane offsets included)."""
    u = env.unwrapped
    sim = u.get_state().sim
    rows, classes = [], []
    tr = sim.traffic
    if len(tr.s):
        x, y, h = u.traffic_model.poses(tr)
        for i in np.flatnonzero(tr.active):
            v = float(tr.v[i])
            rows.append((x[i], y[i], h[i], *_SIZE[VEHICLE], v * math.cos(h[i]), v * math.sin(h[i])))
            classes.append(VEHICLE)
    peds = sim.peds
    if len(peds.u):
        x, y, h = crosswalk_positions(u.net, peds)
        for i in np.flatnonzero(peds.active):
            v = float(peds.speed[i]) if peds.wait[i] <= 0 else 0.0  # waiting at the kerb
            rows.append(
                (x[i], y[i], h[i], *_SIZE[PEDESTRIAN], v * math.cos(h[i]), v * math.sin(h[i]))
            )
            classes.append(PEDESTRIAN)
    for body in u.world.obstacles:
        pose = u.world.movers.pose(body)
        if pose is not None:  # in the world this episode
            rows.append((*pose, *_SIZE[STATIC], 0.0, 0.0))
            classes.append(STATIC)
    ego = sim.ego
    return Scene(
        pose=(ego.x, ego.y, ego.yaw),
        speed=ego.v,
        t=sim.t,
        route_s=sim.route_s,
        box_class=np.array(classes, dtype=np.uint8),
        boxes=np.array(rows, dtype=np.float64).reshape(-1, len(BOX_FIELDS)),
    )


def to_ego(boxes: np.ndarray, pose: tuple[float, float, float]) -> np.ndarray:
    """World-frame box rows (:data:`BOX_FIELDS`) seen from ``pose`` ``(x, y, yaw)``."""
    yaw = pose[2]
    c, s = math.cos(yaw), math.sin(yaw)
    b = np.array(boxes, dtype=np.float64).reshape(-1, len(BOX_FIELDS))
    vx, vy = b[:, 5].copy(), b[:, 6].copy()
    b[:, :2] = ego_xy(b[:, :2], pose)
    b[:, 2] = [wrap_angle(a - yaw) for a in b[:, 2]]
    b[:, 5], b[:, 6] = c * vx + s * vy, -s * vx + c * vy
    return b


def ego_pixels(pose: tuple[float, float, float], grid: GridConfig):
    """A map from world points ``(..., 2)`` to the grid's cv2 fixed-point pixel
    coordinates (column, row) seen from ``pose``, for :meth:`GroundShapes.paint`."""
    scale = (1 << SHIFT) / grid.resolution

    def px(points: np.ndarray) -> np.ndarray:
        local = ego_xy(points, pose)
        fwd, left = local[..., 0], local[..., 1]
        uv = np.stack([(grid.side - left) * scale, (grid.ahead - fwd) * scale], axis=-1)
        uv -= 0.5 * (1 << SHIFT)  # cv2 puts pixel centres on whole coordinates
        return np.round(np.clip(uv, -_LIMIT, _LIMIT)).astype(np.int32)

    return px


def semantic_grid(
    shapes: GroundShapes,
    box_class: np.ndarray,
    boxes: np.ndarray,
    pose: tuple[float, float, float],
    grid: GridConfig,
) -> np.ndarray:
    """The uint8 ``(len(GRID_CLASSES), rows, cols)`` 0/1 grid of the road network's
    ``shapes`` and the world-frame objects seen from ``pose``. Objects whose centres lie
    off the grid still fill the cells they cover."""
    rows, cols = grid.shape
    out = np.zeros((len(GRID_CLASSES), rows, cols), dtype=np.uint8)
    thick = max(1, round(0.15 / grid.resolution))  # the raster's 0.15 m lines
    shapes.paint(out[0], out[1], ego_pixels(pose, grid), thick, values=(1, 1))
    local = to_ego(boxes, pose)
    for k, name in enumerate(GRID_CLASSES[2:], start=2):
        mine = local[np.asarray(box_class) == CLASS_NAMES.index(name)]
        fill_boxes(out[k], grid, mine)
    return out


def light_ahead(env, pose: tuple[float, float, float], light_range: float):
    """``(index into the network's lights, metres to the stop line)`` of the light at the
    end of the lane the ego is in, when that stop line is at most ``light_range`` ahead;
    else ``(None, inf)``. Junction lanes have no light: once past the line, none governs.
    The map's part of :func:`light_label`, apart so that a perception which reads the
    colour itself (from the camera) takes the stop line from the known map."""
    net = env.unwrapped.net
    here = net.locate(pose[0], pose[1], pose[2])
    if here.lane < 0:
        return None, math.inf
    lane = net.lanes[here.lane]
    if lane.light is None:
        return None, math.inf
    distance = lane.length - here.s
    if not 0.0 <= distance <= light_range:
        return None, math.inf
    return lane.light, distance


def light_label(env, pose: tuple[float, float, float], t: float, light_range: float):
    """``(index into LIGHT_STATES, metres to the stop line)`` of the light that
    :func:`light_ahead` finds, in its state at time ``t``; ``(0, inf)`` when none."""
    light, distance = light_ahead(env, pose, light_range)
    if light is None:
        return 0, math.inf
    return env.unwrapped.net.lights[light].state(t) + 1, distance


#: the heads' poses of the last road network asked for: ``(network, head_poses(network))``
_HEADS: list = [None, None]


def light_heads(env, pose: tuple[float, float, float], light_range: float) -> np.ndarray:
    """The ego-frame centres ``(x, y, z)`` of the near head and of the far head's lamp
    (rows 0 and 1, see :mod:`pilot.envs.driving.signals`) of the light that
    :func:`light_ahead` finds, float32 ``(2, 3)``; all NaN when none governs. They come
    from the known map and the ego's pose, not from any sensor: whether a head is in the
    camera's view is for the camera's projection to tell."""
    out = np.full((2, 3), np.nan, dtype=np.float32)
    light, _ = light_ahead(env, pose, light_range)
    if light is None:
        return out
    net = env.unwrapped.net
    if _HEADS[0] is not net:
        _HEADS[:] = [net, head_poses(net)]
    near, _, lamp = _HEADS[1][light]
    heads = np.array([near[:3], lamp[:3]])
    out[:, :2], out[:, 2] = ego_xy(heads[:, :2], pose), heads[:, 2]
    return out


def waypoint_label(
    route, route_s: float, pose: tuple[float, float, float], cfg: LabelConfig, offset: float
) -> np.ndarray:
    """The route's points every ``waypoint_spacing`` metres past ``route_s``, moved
    ``offset`` metres to the left (the lane the expert is heading for), in the ego frame;
    past the route's end they stay at its last point."""
    s = route_s + cfg.waypoint_spacing * np.arange(1, cfg.waypoints + 1)
    pts = route.point_at(s)
    if offset:
        h = np.array([route.heading_at(min(v, route.length - 1e-6)) for v in s])
        pts = pts + offset * np.stack([-np.sin(h), np.cos(h)], axis=1)
    return ego_xy(pts, pose).astype(np.float32)


def frame_labels(env, cfg: LabelConfig, offset: float = 0.0, now: Scene | None = None) -> Labels:
    """All labels of the env's current moment; ``offset`` is the expert's lateral target
    from the route (metres, left positive), ``now`` a :func:`scene` already read."""
    u = env.unwrapped
    now = scene(env) if now is None else now
    grid = semantic_grid(u.world.raster.shapes, now.box_class, now.boxes, now.pose, cfg.grid)
    local = to_ego(now.boxes, now.pose)
    keep = cfg.grid.inside(local[:, 0], local[:, 1])
    light, distance = light_label(env, now.pose, now.t, cfg.light_range)
    return Labels(
        grid=grid,
        boxes=local[keep].astype(np.float32),
        box_class=now.box_class[keep],
        light=light,
        light_distance=distance,
        waypoints=waypoint_label(u.route, now.route_s, now.pose, cfg, offset),
        light_heads=light_heads(env, now.pose, cfg.light_range),
    )
