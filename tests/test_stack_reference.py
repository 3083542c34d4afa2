"""The stack's reference line: junction turns tighter than the car can drive are planned on
the fillet arc between the same lane lines."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pilot.envs import make_env
from pilot.envs.driving.layouts import intersection, min_turn_radius
from pilot.eval.evaluate import episode_seed
from pilot.planning.stack.reference import drivable, fillet
from pilot.planning.stack.stack import TURN_MARGIN

#: The world's car: 2.7 m wheelbase, 0.5 rad of steering.
CAR_RADIUS = 2.7 / math.tan(0.5)


def test_the_fillet_of_a_right_angle_bends_at_one_over_its_leg():
    # a right turn from heading north at (0, -6) to heading east at (6, 0), corner (0, 0)
    a, b = np.array([0.0, -6.0]), np.array([6.0, 0.0])
    north, east = np.array([0.0, 1.0]), np.array([1.0, 0.0])
    arc = fillet(a, north, b, east)
    assert np.allclose(arc[0], a) and np.allclose(arc[-1], b)
    assert np.allclose(np.hypot(*(arc - [6.0, -6.0]).T), 6.0)  # centre (6, -6), radius 6
    assert min_turn_radius(arc) == pytest.approx(6.0, rel=0.01)
    # tangent to the lane lines at both ends: the end chords within half a step's turn
    first, last = arc[1] - arc[0], arc[-1] - arc[-2]
    assert abs(first[0]) < 0.05 * np.hypot(*first) and abs(last[1]) < 0.05 * np.hypot(*last)
    # a longer leg keeps a straight piece; parallel lines have none
    longer = fillet(np.array([0.0, -9.0]), north, b, east)
    assert np.allclose(longer[0], [0.0, -9.0]) and np.allclose(longer[1], [0.0, -6.0])
    assert fillet(a, north, b, north) is None


def test_the_junctions_right_turns_are_tighter_than_the_car_and_planned_wider():
    net = intersection(np.random.default_rng(0))
    turns = sorted(min_turn_radius(ln.centre) for ln in net.lanes if ln.kind == "junction")
    assert turns[0] < CAR_RADIUS < turns[4]  # the four right turns: ~4.5 m; left: ~7 m
    env = make_env("pilot/Driving-StopSign-v0")
    widened = 0
    try:
        for ep in range(10):
            env.reset(seed=episode_seed(0, ep))
            route, net = env.unwrapped.route, env.unwrapped.net
            line = drivable(route, net, TURN_MARGIN * CAR_RADIUS)
            if min_turn_radius(route.points) >= TURN_MARGIN * CAR_RADIUS:
                assert line is route  # nothing to widen
                continue
            assert min_turn_radius(line.points) > TURN_MARGIN * CAR_RADIUS
            assert np.allclose(line.points[[0, -1]], route.points[[0, -1]])
            pairs = zip(line.points.tolist(), line.s.tolist(), strict=True)
            offsets = [abs(route.project(x, y, s)[1]) for (x, y), s in pairs]
            assert max(offsets) < 0.4  # ~0.38 m outside the Bézier's apex, nowhere more
            assert abs(line.length - route.length) < 0.5
            widened += 1
    finally:
        env.close()
    assert widened >= 2  # the board's first ten routes turn right at least twice
