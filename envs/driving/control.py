"""Route-following control: pure pursuit steering and the discrete meta-action driver.

Pure pursuit (Coulter 1992) steers towards a point one look-ahead distance down the
route; the meta-action driver turns highway-env style decisions (change lane, keep,
faster, slower) into the same continuous (steer, throttle) command the ego takes, so both
action spaces drive one car model.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from .dynamics import pedal_for
from .roads import RoadNetwork
from .routes import Route
from .traffic import EgoCar

if TYPE_CHECKING:
    from .dynamics import CarParams

#: Meta actions, in highway-env's order (``DiscreteMetaAction``).
META_ACTIONS = ("LANE_LEFT", "IDLE", "LANE_RIGHT", "FASTER", "SLOWER")

#: Speed levels (m/s) that FASTER and SLOWER step through.
META_SPEEDS = (0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0)


def box_command(action) -> tuple[float, float]:
    """``(steer, throttle)`` clipped to [-1, 1] from a ``Box(2)`` action; anything but two
    finite numbers is a :class:`ValueError`."""
    # plain floats: numpy's per-call overhead dwarfs the work on two numbers
    try:
        steer, throttle = (float(v) for v in np.ravel(action))
    except (TypeError, ValueError):
        steer = throttle = math.nan
    if not (math.isfinite(steer) and math.isfinite(throttle)):
        raise ValueError(f"action must be 2 finite numbers, got {action!r}")
    return min(max(steer, -1.0), 1.0), min(max(throttle, -1.0), 1.0)


def lookahead_point(route: Route, s: float, distance: float, offset: float = 0.0) -> np.ndarray:
    """The route point ``distance`` metres past ``s``, moved ``offset`` metres left."""
    s_ahead = s + distance
    p = route.point_at(s_ahead)
    if offset:
        h = route.heading_at(min(s_ahead, route.length - 1e-6))
        p = p + offset * np.array([-math.sin(h), math.cos(h)])
    return p


def pure_pursuit(ego: EgoCar, target: np.ndarray, wheelbase: float) -> float:
    """Steering angle (rad) that puts the car on a circle through ``target``."""
    dx, dy = float(target[0]) - ego.x, float(target[1]) - ego.y
    c, s = math.cos(ego.yaw), math.sin(ego.yaw)
    lx, ly = c * dx + s * dy, -s * dx + c * dy
    dist2 = max(lx * lx + ly * ly, 1e-6)
    return math.atan(2.0 * ly * wheelbase / dist2)


def route_command(
    ego: EgoCar,
    route: Route,
    s: float,
    target_speed: float,
    car: CarParams,
    offset: float = 0.0,
) -> np.ndarray:
    """A normalised ``[steer, pedal]`` action that follows the route (shifted ``offset``
    metres left) at ``target_speed``; the look-ahead grows with speed. The pedal asks for
    an acceleration proportional to the speed error, with the car's resistance fed
    forward (:func:`.dynamics.pedal_for`); ``car`` is the env's config."""
    look = max(5.0, 0.8 * ego.v)
    steer = pure_pursuit(ego, lookahead_point(route, s, look, offset), car.wheelbase)
    pedal = pedal_for(car, 1.5 * (target_speed - ego.v), ego.v)
    return np.array([min(max(steer / car.max_steer, -1.0), 1.0), pedal])


def meta_targets(
    action: int,
    net: RoadNetwork,
    route: Route,
    s: float,
    yaw: float,
    offset: float,
    speed_index: int,
    speeds: tuple[float, ...],
    lane_width: float,
) -> tuple[float, int]:
    """New ``(lateral offset from the route, speed level)`` after a meta action. A lane
    change happens only where a lane in the same direction lies on that side."""
    if action in (0, 2):
        new = offset + (lane_width if action == 0 else -lane_width)
        probe = lookahead_point(route, s, 10.0, new)
        if net.locate(float(probe[0]), float(probe[1]), yaw).in_lane:
            offset = new
    elif action == 3:
        speed_index = min(speed_index + 1, len(speeds) - 1)
    elif action == 4:
        speed_index = max(speed_index - 1, 0)
    return offset, speed_index
