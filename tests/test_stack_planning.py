"""The stack's motion-planning pieces on hand-made cases: how long a lateral move is, and
the collision check against standing and moving objects, and what counts as ahead."""

from __future__ import annotations

import math

import numpy as np

from pilot.envs.driving.routes import Route
from pilot.envs.driving.world import CLASS_NAMES
from pilot.planning.stack import behaviour, frenet
from pilot.planning.stack.config import ModularConfig
from pilot.planning.stack.perception import Percept
from pilot.planning.stack.prediction import predict

VEHICLE = CLASS_NAMES.index("vehicle")
PEDESTRIAN = CLASS_NAMES.index("pedestrian")


def test_a_lateral_move_keeps_its_planned_end():
    cfg = ModularConfig(lateral_time=2.5)
    assert frenet.lateral_length(0.2, 0.0, 10.0, 50.0, cfg) == 8.0  # settling
    assert frenet.lateral_length(-3.5, 0.0, 10.0, 50.0, cfg) == 25.0  # a new move: 2.5 s
    assert frenet.lateral_length(-3.5, 0.0, 2.0, 50.0, cfg) == 12.0  # at least 12 m
    # under way since s = 40 towards 0 with its end at 65: 15 m are left, not 25
    assert frenet.lateral_length(-2.0, 0.0, 10.0, 50.0, cfg, (0.0, 65.0)) == 15.0
    assert frenet.lateral_length(-1.0, 0.0, 10.0, 62.0, cfg, (0.0, 65.0)) == 8.0  # at least 8
    # a commitment to another target does not shorten this one
    assert frenet.lateral_length(-2.0, 3.5, 10.0, 50.0, cfg, (0.0, 65.0)) == 25.0


def _straight_candidate(speed: float, lateral: float) -> frenet.Candidate:
    """Driving along +x at ``speed`` for 4 s, ``lateral`` metres to the left of y = 0."""
    t = 0.2 * np.arange(21)
    xy = np.stack([speed * t, np.full_like(t, lateral)], axis=1)
    return frenet.Candidate(
        0.0, speed, xy[:, 0], np.full(21, speed), np.zeros(20), xy, np.zeros(21), xy
    )


def _check(boxes: np.ndarray, classes: np.ndarray, cand: frenet.Candidate, margin: float):
    times = 0.2 * np.arange(1, 21)
    occ = predict(boxes, classes, times, growth=0.3)
    standing = frenet.standing_boxes(boxes, classes, PEDESTRIAN)
    frenet.check(cand, occ, 1.3, standing, margin)
    return cand


def test_standing_cars_are_checked_as_rectangles_moving_ones_as_discs():
    # a car parked beside the path, its side 0.5 m from the ego's side (centres 2.4 m
    # apart): the discs (1.3 m and 1.21 m) would call every pass a contact
    parked = np.array([[20.0, 2.4, 0.0, 4.5, 1.9, 0.0, 0.0]])
    cars = np.array([VEHICLE])
    assert math.isinf(_check(parked, cars, _straight_candidate(5.0, 0.0), 0.3).collides_at)
    assert _check(parked, cars, _straight_candidate(5.0, 0.0), 0.6).collides_at < 4.0
    assert _check(parked, cars, _straight_candidate(5.0, 0.0), 0.3).clearance < 0.0  # cost
    # the same car rolling at 1 m/s: discs, a contact
    rolling = parked.copy()
    rolling[0, 5] = 1.0
    assert _check(rolling, cars, _straight_candidate(5.0, 0.0), 0.3).collides_at < 4.0
    # a pedestrian standing 0.3 m from the car's side: clear as a rectangle with a 0.2 m
    # margin, but never taken as one (it may step off), so its disc is a contact
    person = np.array([[20.0, 1.5, 0.0, 0.5, 0.5, 0.0, 0.0]])
    walker = np.array([PEDESTRIAN])
    assert _check(person, walker, _straight_candidate(5.0, 0.0), 0.2).collides_at < 4.0
    assert math.isinf(_check(person, cars, _straight_candidate(5.0, 0.0), 0.2).collides_at)
    # the parked car in the path is a contact whatever the margin
    ahead = np.array([[12.0, 0.0, 0.0, 4.5, 1.9, 0.0, 0.0]])
    assert _check(ahead, cars, _straight_candidate(5.0, 0.0), 0.0).collides_at < 2.0


def test_objects_past_the_routes_end_are_not_leads():
    # a 50 m straight route along +x; a car 2 m past its end, in line with it, projects
    # onto the last point and would stand as a lead 1 m ahead of a car near the goal
    route = Route([0], np.array([[0.0, 0.0], [50.0, 0.0]]))
    frame = frenet.RouteFrame(route)
    boxes = np.array([[54.5, 0.0, 0.0, 4.5, 1.9, 0.0, 0.0], [30.0, 0.0, 0.0, 4.5, 1.9, 0.0, 0.0]])
    p = Percept((45.0, 0.0, 0.0), 0.0, 0.0, 45.0, np.array([VEHICLE, VEHICLE]), boxes, -1, math.inf)
    rows = behaviour.objects_on_route(frame, p, 45.0)
    assert np.isnan(rows[0]).all()
    assert np.allclose(rows[1, :2], (30.0, 0.0))
    leads = behaviour.leads_for(0.0, p, rows, frame, 45.0, 3.5, ModularConfig())
    assert leads == []  # nothing ahead of the car within the route
