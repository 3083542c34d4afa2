"""The modular driving stack for one car: perceive → predict → decide → plan → track.

:meth:`ModularStack.step` reads a live driving env (its perception, the known map)
and returns the env's ``[steer, throttle]`` action together with the plan it followed, as
data: the chosen trajectory, the candidate set and the predicted occupancy (a viewer may
draw them; nothing here draws)."""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from pilot.envs.driving.dynamics import pedal_for
from pilot.envs.driving.roads import wrap_angle
from pilot.planning.trackers import MPC, PurePursuit, Reference, Stanley

from . import behaviour, frenet, reference, rollout
from .config import ModularConfig
from .perception import privileged
from .prediction import Occupancy, predict

#: Heading error (rad) under which a car pulling away is back to the lattice's plans.
ALIGNED = 0.1
#: Junction turns tighter than this times the car's smallest turning radius (rear axle)
#: are planned on a wider arc (:func:`.reference.drivable`): the tracker lags a turn at
#: its limit.
TURN_MARGIN = 1.1
#: Metres beyond what the car covers over the horizon within which vehicles are
#: predicted along their lanes (their footprints and the car's own included).
PREDICT_MARGIN = 15.0


def sharpest_curvature(car) -> float:
    """The car's path curvature at full steering (1/m, about the rear axle)."""
    return math.tan(car.max_steer) / car.wheelbase


def moves(plan: frenet.Candidate) -> bool:
    """Whether ``plan`` takes the car half a metre or more along the route."""
    return float(plan.s[-1] - plan.s[0]) >= 0.5


def needs_pull_away(
    best: frenet.Candidate, cands: list[frenet.Candidate], speed: float, heading_error: float
) -> bool:
    """Whether to try the paths the tracker itself would drive (:mod:`.rollout`): the car
    (nearly) stands though a lattice plan that moves would, had it been free; or, at any
    speed, its nose is angled across (``heading_error`` from the route's heading over
    :data:`ALIGNED`, in radians) and no lattice plan is free, so ``best`` (the latest
    contact) is predicted to touch something. Each lattice plan starts along the nose: a
    car rolling out of a turn beside a car waiting at the exit touches it on every one,
    braking included, where the path it would drive turns back first. A car along its lane
    keeps the lattice: its plans are the paths it would drive."""
    if math.isfinite(best.collides_at) and abs(heading_error) > ALIGNED:
        return True
    return speed < 1.0 and not moves(best) and any(map(moves, cands))


@dataclasses.dataclass
class Plan:
    """What one step decided: the chosen candidate, all candidates, the occupancy they
    were checked against, and the milliseconds each stage took."""

    chosen: frenet.Candidate
    candidates: list[frenet.Candidate]
    occupancy: Occupancy
    timings_ms: dict[str, float]


def make_tracker(cfg: ModularConfig, wheelbase: float, dt: float):
    """The configured tracker; curvature limits are the car's (tan(max steer) / L)."""
    if cfg.tracker == "stanley":
        return Stanley(gain=1.5, wheelbase=wheelbase, softening=1.0, max_curvature=1.0)
    if cfg.tracker == "mpc":
        return MPC(horizon=15, dt=dt, max_curvature=1.0)
    return PurePursuit(cfg.lookahead, lookahead_gain=cfg.lookahead_gain, max_curvature=1.0)


class ModularStack:
    """The stack driving one env; keep one per env (it caches the route's frame)."""

    def __init__(self, cfg: ModularConfig, perceive=privileged) -> None:
        """``perceive(env) -> Percept``: :func:`.perception.privileged` or a
        :class:`.learned.LearnedPerception`."""
        self.cfg = cfg
        self._perceive = perceive
        self._route = None
        self._frame: frenet.RouteFrame | None = None
        self._tracker = None
        self._signs = behaviour.StopSigns([])
        self._committed: tuple[float, float] | None = None  # lateral move under way
        self._pulling = False

    def step(self, env) -> tuple[np.ndarray, Plan]:
        cfg, u = self.cfg, env.unwrapped
        car = u.config
        if u.route is not self._route:  # a new episode: a new reference line
            turn = TURN_MARGIN / sharpest_curvature(car)
            line = reference.drivable(u.route, u.net, turn)  # turns the car can follow
            self._route, self._frame = u.route, frenet.RouteFrame(line, u.net)
            self._tracker = make_tracker(cfg, car.wheelbase, car.dt)
            self._committed = None
            self._pulling = False
            self._signs = behaviour.StopSigns.on_route(line, u.net)
        frame = self._frame
        t0 = time.perf_counter()
        # perceive: objects and the light (ground truth through the labels' code, or a network)
        p = self._perceive(u)
        t1 = time.perf_counter()
        # predict: constant velocity over the horizon, vehicles along their lanes
        n = int(round(cfg.horizon / cfg.plan_dt))
        lanes = u.net if cfg.prediction == "lanes" else None
        around = (*p.pose[:2], PREDICT_MARGIN + cfg.horizon * p.speed)  # what plans can reach
        times = cfg.plan_dt * np.arange(1, n + 1)
        occ = predict(p.boxes, p.classes, times, cfg.growth, lanes, around)
        t2 = time.perf_counter()
        # decide: open lanes and what each must keep behind
        x, y, yaw = p.pose
        s0, d0, h = frame.route.project(x, y, p.route_s)
        slope0 = math.tan(max(min(wrap_angle(yaw - h), 0.5), -0.5))
        lane_width = car.lane_width
        cap = frame.speed_cap(s0, p.speed, cfg.lateral_accel, cfg.bend_decel)
        v_target = min(cfg.target_speed, car.speed_limit, cap)
        if behaviour.goes_on_yellow(frame, p, s0, cfg):  # the bends' braking starts at the line
            v_target = max(v_target, min(p.speed, cfg.target_speed, car.speed_limit))
        objs = behaviour.objects_on_route(frame, p, s0)
        sign_s = self._signs.ahead(s0, p.speed)  # the map's stop signs, as on CARLA's map track
        targets = []
        offsets = behaviour.open_offsets(u.net, frame, s0, lane_width, cfg)
        # a car off the route's lane that may stay where it is (the lane it is in is open)
        stay = any(abs(d1) > 1e-9 and abs(d1 - d0) < 0.5 * lane_width for d1 in offsets)
        for d1 in offsets:
            if self._cuts_in(d1, d0, p, s0, lane_width, stay):
                continue
            leads = behaviour.leads_for(d1, p, objs, frame, s0, lane_width, cfg, sign_s, d0=d0)
            targets += [(d1, f * v_target, leads) for f in cfg.speed_factors]
        targets.append((d0, 0.0, [(0.0, 0.0, 0.0)]))  # brake where we are
        t3 = time.perf_counter()
        # plan: the lattice, checked against the occupancy, the cheapest free one. Not
        # against the pedestrians it goes on past (braking would stand it in their way),
        # unless the plan chosen does not take its rear past them after all
        cands = frenet.candidates(frame, s0, d0, slope0, p.speed, targets, cfg, self._committed)
        passed = behaviour.passing(p, objs, s0, d0, lane_width, cfg)
        past = float((objs[passed, 0] + objs[passed, 3]).max()) if passed.any() else -math.inf
        for keep in (~passed, None) if passed.any() else (None,):
            checked = occ if keep is None else occ.subset(keep)
            seen = slice(None) if keep is None else keep
            standing = frenet.standing_boxes(p.boxes[seen], p.classes[seen], behaviour.PEDESTRIAN)
            for cand in cands:
                frenet.check(cand, checked, cfg.ego_radius, standing, cfg.standing_margin)
            best = frenet.choose(cands, v_target, d0, cfg)
            if float(best.s[-1]) - frenet.EGO_HALF_LENGTH >= past:
                break
        # blocked: maybe angled across, so try the paths the tracker itself would drive
        if needs_pull_away(best, cands, p.speed, wrap_angle(yaw - h)) or self._pulling:
            # waiting for pedestrians at the kerb is a precaution: not where standing is hit
            kerb = not math.isfinite(cands[-1].collides_at)  # the last brakes where it is
            args = (car, p, s0, d0, v_target, targets[:-1], objs, sign_s, checked, standing, kerb)
            pulled, pull = self._pull_away(*args)
            if pulled is not None:
                best, cands = pulled, cands + pull
            self._pulling = pulled is not None and abs(wrap_angle(yaw - h)) > ALIGNED
        self._commit(best, d0)
        t4 = time.perf_counter()
        # track: the path's curvature from the tracker, the speed from the plan
        action = self._control(best, p.pose, p.speed, car)
        t5 = time.perf_counter()
        ms = {
            "perception": 1e3 * (t1 - t0),
            "prediction": 1e3 * (t2 - t1),
            "behaviour": 1e3 * (t3 - t2),
            "planning": 1e3 * (t4 - t3),
            "control": 1e3 * (t5 - t4),
        }
        return action, Plan(best, cands, occ, ms)

    def _pull_away(self, car, p, s0, d0, v_target, targets, objs, sign_s, occ, standing, kerb):
        """Plans for when the lattice is blocked (:func:`needs_pull_away`), the car maybe
        angled across (:mod:`.rollout`): the path the tracker itself would drive towards
        each lateral target, behind the lattice's leads (``targets``) plus, with ``kerb``,
        pedestrians at the kerb (:func:`.behaviour.leads_for`). Returns the cheapest free
        one that moves (or None) and them all. Once one is chosen the car keeps to these
        plans until its heading is within :data:`ALIGNED` of the route's: the lattice's
        plans, which start along the nose, would swing it out again."""
        cfg, frame = self.cfg, self._frame
        if kerb:  # the lattice's leads plus the kerb's, once per lateral target
            leads = {
                d1: behaviour.leads_for(
                    d1, p, objs, frame, s0, car.lane_width, cfg, sign_s, True, d0
                )
                for d1 in dict.fromkeys(d1 for d1, _, _ in targets)
            }
            targets = [(d1, v, leads[d1]) for d1, v, _ in targets]
        kappa = sharpest_curvature(car)
        pull = rollout.candidates(frame, p.pose, s0, p.speed, targets, car.wheelbase, kappa, cfg)
        for cand in pull:
            frenet.check(cand, occ, cfg.ego_radius, standing, cfg.standing_margin)
        free = [c for c in pull if not math.isfinite(c.collides_at) and moves(c)]
        return (frenet.choose(free, v_target, d0, cfg) if free else None), pull

    def _cuts_in(
        self, d1: float, d0: float, p, s0: float, lane_width: float, stay: bool = True
    ) -> bool:
        """Whether moving to the lane at ``d1`` would cut in on a vehicle behind there
        (:func:`.behaviour.cuts_in`). Not asked once the car is in that lane, when it is
        committed to the move (turning back mid-move would be worse), or of the route's
        own lane when the car, off it, cannot ``stay`` in the lane it is in (that lane
        ends or leaves the route): it must be able to return."""
        if abs(d1 - d0) < 0.5 * lane_width or self.cfg.safe_braking <= 0.0:
            return False
        if abs(d1) < 1e-9 and not stay:
            return False
        if self._committed is not None and abs(self._committed[0] - d1) < 1e-6:
            return False
        return behaviour.cuts_in(d1, p, self._frame, s0, lane_width, self.cfg)

    def _commit(self, chosen: frenet.Candidate, d0: float) -> None:
        """Keep the end of the lateral move the chosen plan makes (none once within 0.3 m
        of its target, when the plan brakes where the car is, or for a pull-away plan,
        which has no planned end)."""
        d1 = chosen.d_target
        if abs(d1 - d0) <= 0.3 or not math.isfinite(chosen.lateral_end):
            self._committed = None
        elif self._committed is None or abs(self._committed[0] - d1) > 1e-6:
            self._committed = (d1, chosen.lateral_end)

    def _control(self, plan: frenet.Candidate, pose, speed: float, car) -> np.ndarray:
        rear = rollout.rear_axle(pose, car.wheelbase)
        tracker = self._tracker
        tracker.reset()
        tracker.speed = max(speed, 1.0)
        kappa = tracker.control(rear, Reference.from_points(plan.path)).curvature
        steer = math.atan(car.wheelbase * kappa) / car.max_steer
        # speed: the plan's first acceleration, corrected towards its first speed
        v_ref = float(plan.v[1])
        accel = float(plan.accel[0]) + self.cfg.speed_gain * (v_ref - speed)
        if v_ref < 0.05 and speed < 0.5:
            accel = -car.max_brake  # hold the car still
        throttle = pedal_for(car, accel, speed)
        return np.array([np.clip(steer, -1, 1), np.clip(throttle, -1, 1)], dtype=np.float32)
