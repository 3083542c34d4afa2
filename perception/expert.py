"""A scripted driver for data collection: the env's pure-pursuit route follower, with the
variety a perception dataset needs and the caution that keeps it driving.

Per episode it draws (from a generator the caller seeds) a base speed, how often it
changes speed and lane, and a slow lateral sway; per step it may pick a new speed or an
adjacent lane, slows down behind whatever is in its path (vehicles, pedestrians, static
obstacles: read from the same :func:`~pilot.perception.labels.scene` the labels come
from), goes round a stopped obstacle when the next lane is clear, stops at red and
yellow lights (going on through a yellow it cannot stop for comfortably), waits a
reaction time when the light it stands at turns green (so the dataset holds what a
waiting car sees at green, as the stack does; without it the expert left at once), stops
at stop signs, and keeps under the map's limit of the lane ahead and what the bends
ahead allow at its own lateral acceleration (the modular stack's rule,
``RouteFrame.speed_cap``).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from pilot.envs.driving.control import meta_targets
from pilot.envs.driving.world import PEDESTRIAN
from pilot.planning.stack.behaviour import StopSigns
from pilot.planning.stack.frenet import RouteFrame

from .labels import LIGHT_STATES, Scene, light_label

_BRAKE = 3.0  # comfortable deceleration (m/s²)
_EGO_HALF = 2.25


@dataclasses.dataclass
class ExpertStyle:
    """How one episode's expert drives (drawn once per episode)."""

    speed: float  # base target speed (m/s)
    lane_change_rate: float  # lane changes attempted per second (0: keep the lane)
    sway: float  # amplitude of the lateral sway (m)
    sway_period: float  # seconds
    sway_phase: float  # radians
    lateral_accel: float = 2.5  # slows for bends to keep under this (m/s²)
    pass_stopped: bool = True  # go round what stands in the lane (not where it is a queue)
    green_reaction: float = 0.0  # seconds it stands on at a light that turned green


class Expert:
    """Drives ``env`` along its route in the style given; ``offset`` is the lateral target
    (whole lanes, left positive) that the waypoint labels follow."""

    def __init__(self, style: ExpertStyle, rng: np.random.Generator) -> None:
        self.style, self.rng = style, rng
        self.offset = 0.0
        self.factor = 1.0
        self.next_change = 0.0
        self._route = None
        self._signs = StopSigns([])
        self._frame: RouteFrame | None = None
        self._waiting = False  # standing for a red or yellow light
        self._go_at = math.inf  # when it drives off after the light turned green

    def act(self, env, now: Scene) -> np.ndarray:
        """The ``[steer, throttle]`` action for the moment ``now``."""
        u, st, rng = env.unwrapped, self.style, self.rng
        cfg = u.config
        draws = rng.random(4)  # the same draws every step, whatever is used
        if now.t >= self.next_change:  # speed changes
            self.factor = 0.55 + 0.55 * draws[0]
            self.next_change = now.t + 2.0 + 4.0 * draws[1]
        target = min(st.speed * self.factor, cfg.max_speed)
        target = min(
            target, self._frame_of(env).speed_cap(now.route_s, now.speed, st.lateral_accel)
        )
        left = bool(draws[3] < 0.5)
        blocker = self._blocker(env, now, self.offset)
        stopped = blocker is not None and blocker[2] != PEDESTRIAN and blocker[1] < 1.0
        if stopped and st.pass_stopped:
            # something stopped in the lane: go round it on either side
            _ = self._change_lane(env, now, left) or self._change_lane(env, now, not left)
        elif draws[2] < st.lane_change_rate * cfg.dt:  # on a whim
            self._change_lane(env, now, left)
        blocker = self._blocker(env, now, self.offset)
        if blocker is not None:
            gap, lead_speed, _ = blocker
            room = max(gap - 4.0 - 1.0 * lead_speed, 0.0)
            target = min(target, math.sqrt(lead_speed**2 + 2.0 * _BRAKE * room))
        light, distance = light_label(env, now.pose, now.t, 60.0)
        if LIGHT_STATES[light] in ("red", "yellow"):
            v = now.speed
            committed = LIGHT_STATES[light] == "yellow" and v * v / (2 * _BRAKE) > distance - 1
            if not committed:
                target = min(target, math.sqrt(2.0 * _BRAKE * max(distance - 3.0, 0.0)))
            self._waiting = v < 0.5 and distance < 12.0
            self._go_at = math.inf
        elif self._waiting:  # the light it stood at turned green: react, then go
            if math.isinf(self._go_at):
                self._go_at = now.t + st.green_reaction
            if now.t < self._go_at:
                target = 0.0
            else:
                self._waiting = False
        line = self._sign_ahead(env, now)
        if math.isfinite(line):  # stop with the centre 3 m before the line, in the zone
            target = min(target, math.sqrt(2.0 * _BRAKE * max(line - now.route_s - 3.0, 0.0)))
        sway = st.sway * math.sin(2 * math.pi * now.t / st.sway_period + st.sway_phase)
        return u.follow_route(target, self.offset + sway)

    def _frame_of(self, env) -> RouteFrame:
        """The route's frame and stop signs, built once per route."""
        u = env.unwrapped
        if u.route is not self._route or self._frame is None:
            self._route = u.route
            self._frame = RouteFrame(u.route, u.net)
            self._signs = StopSigns.on_route(u.route, u.net)
        return self._frame

    def _sign_ahead(self, env, now: Scene) -> float:
        """The route ``s`` of the next stop sign's line the car has not stopped at yet."""
        self._frame_of(env)
        return self._signs.ahead(now.route_s, now.speed)

    def _change_lane(self, env, now: Scene, left: bool) -> bool:
        """Move the target one lane over when that lane exists (the meta-action driver's
        test) and is clear from 12 m behind to 30 m ahead; whether it moved."""
        u = env.unwrapped
        action = 0 if left else 2
        new, _ = meta_targets(
            action,
            u.net,
            u.route,
            now.route_s,
            now.pose[2],
            self.offset,
            0,
            (0.0,),
            u.config.lane_width,
        )
        if new != self.offset and self._clear(env, now, new):
            self.offset = new
            return True
        return False

    def _route_coords(self, env, now: Scene) -> tuple[np.ndarray, np.ndarray]:
        """Route arc length ahead of the ego and lateral offset of every object."""
        route = env.unwrapped.route
        ds, lat = [], []
        for x, y in now.boxes[:, :2]:
            s, lateral, _ = route.project(float(x), float(y), now.route_s, 15.0, 45.0)
            ds.append(s - now.route_s)
            lat.append(lateral)
        return np.array(ds), np.array(lat)

    def _clear(self, env, now: Scene, offset: float) -> bool:
        if not len(now.boxes):
            return True
        ds, lat = self._route_coords(env, now)
        half = 0.5 * env.unwrapped.config.lane_width + 0.5 * now.boxes[:, 4] + 0.3
        near = (ds > -12.0) & (ds < 30.0) & (np.abs(lat - offset) < half)
        return not near.any()

    def _blocker(self, env, now: Scene, offset: float) -> tuple[float, float, int] | None:
        """``(gap, speed along the route, class)`` of the nearest object in the corridor
        between the car's lateral position and ``offset``, 45 m ahead at most."""
        if not len(now.boxes):
            return None
        u = env.unwrapped
        ds, lat = self._route_coords(env, now)
        _, own_lat, heading = u.route.project(now.pose[0], now.pose[1], now.route_s)
        lo, hi = min(own_lat, offset), max(own_lat, offset)
        margin = 0.5 * 1.9 + 0.5 * now.boxes[:, 4] + 0.4
        margin = np.where(now.box_class == PEDESTRIAN, margin + 1.0, margin)  # people step out
        inside = (lat > lo - margin) & (lat < hi + margin)
        ahead = (ds > 0.0) & (ds < 45.0) & inside
        if not ahead.any():
            return None
        k = int(np.flatnonzero(ahead)[np.argmin(ds[ahead])])
        gap = ds[k] - _EGO_HALF - 0.5 * now.boxes[k, 3]
        vx, vy = now.boxes[k, 5], now.boxes[k, 6]
        along = vx * math.cos(heading) + vy * math.sin(heading)
        return float(gap), float(max(along, 0.0)), int(now.box_class[k])
