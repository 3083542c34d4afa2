"""Road networks as data, traffic-light phases, and the Driving Score helper (no simulator)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pilot.envs.driving import layouts, roads, routes
from pilot.envs.driving.roads import GREEN, RED, YELLOW
from pilot.envs.driving.town import town
from pilot.eval.driving import PENALTIES, driving_score, episode_score, mean_scores


# --- geometry ------------------------------------------------------------------------------
def test_loop_lanes_are_closed_parallel_and_linked():
    net = layouts.loop(np.random.default_rng(0), n_lanes=3, lane_width=3.5)
    assert [ln.id for ln in net.lanes] == [0, 1, 2]
    for ln in net.lanes:
        assert ln.closed and ln.successors == (ln.id,)
        np.testing.assert_allclose(ln.centre[0], ln.centre[-1])
    assert (net.lanes[0].left, net.lanes[0].right) == (None, 1)
    assert (net.lanes[2].left, net.lanes[2].right) == (1, None)
    # counter-clockwise: the outer (right) lanes are longer, by about 2π × lane width
    diff = net.lanes[1].length - net.lanes[0].length
    assert diff == pytest.approx(2 * math.pi * 3.5, rel=0.05)
    # neighbouring centre lines stay one lane width apart
    x, y, _ = net.lanes[0].pose_at(57.0)
    _, lateral = net.lanes[1].project(x, y)
    assert lateral == pytest.approx(3.5, abs=0.05)
    assert layouts.min_turn_radius(net.lanes[0].centre) >= 20.0


def test_locate_reports_lane_offset_heading_and_road_membership():
    net = layouts.highway(np.random.default_rng(1), n_lanes=3, lane_width=3.75)
    lane = net.lanes[1]
    x, y, h = lane.pose_at(300.0)
    nx, ny = -math.sin(h), math.cos(h)  # left normal
    q = net.locate(x + 1.0 * nx, y + 1.0 * ny, h + 0.1)
    assert q.lane == 1 and q.in_lane and q.on_road
    assert q.s == pytest.approx(300.0, abs=0.2)
    assert q.lateral == pytest.approx(1.0, abs=0.02)
    assert q.heading_error == pytest.approx(0.1, abs=0.02)
    q = net.locate(x + 2.5 * nx, y + 2.5 * ny, h)  # past lane 1's edge: lane 0
    assert q.lane == 0 and q.in_lane
    q = net.locate(x, y, h + math.pi)  # facing the wrong way: on the road, not in a lane
    assert q.on_road and not q.in_lane
    q = net.locate(x - 12.0 * nx, y - 12.0 * ny, h)  # beyond the right edge
    assert not q.on_road and not q.in_lane


def test_lanes_near_lists_each_lane_within_reach_once_at_its_closest_point():
    net = layouts.highway(np.random.default_rng(1), n_lanes=3, lane_width=3.75)
    x, y, h = net.lanes[1].pose_at(300.0)
    nx, ny = -math.sin(h), math.cos(h)
    ux, uy = math.cos(h), math.sin(h)
    # three points along the car, 1.5 m apart, 1 m left of lane 1's centre line
    pts = np.array([[x + nx + k * ux, y + ny + k * uy] for k in (-1.5, 0.0, 1.5)])
    lanes, s = net.lanes_near(pts, 2.2)
    assert lanes.tolist() == [1]  # lane 0's centre is 2.75 m away; lane 2's 4.75 m
    np.testing.assert_allclose(s, [298.5], atol=0.05)  # all as close: the first point's
    lanes, s = net.lanes_near(pts, 3.0)
    assert lanes.tolist() == [0, 1]
    closest = min((net.lanes[0].project(*q) for q in pts), key=lambda sl: abs(sl[1]))
    np.testing.assert_allclose(s, [closest[0], 298.5], atol=0.05)
    lanes, _ = net.lanes_near(pts, 5.0)
    assert lanes.tolist() == [0, 1, 2]
    far = pts + 12.0 * np.array([nx, ny])
    assert len(net.lanes_near(far, 2.2)[0]) == 0


def test_route_projection_progress_and_points():
    rng = np.random.default_rng(2)
    net = layouts.loop(rng)
    route = routes.build_route(net, rng, 0, net.lanes[0].length - 50.0, 200.0)
    assert route.length == pytest.approx(200.0, abs=0.5)  # wraps past the loop's seam
    p = route.point_at(120.0)
    s, lateral, _ = route.project(float(p[0]), float(p[1]), 110.0)
    assert s == pytest.approx(120.0, abs=0.05) and abs(lateral) < 0.05


def test_intersection_topology_and_routes():
    rng = np.random.default_rng(3)
    net = layouts.intersection(rng)
    assert len(net.sources) == 4 and len(net.lights) == 4 and len(net.crosswalks) == 4
    for src in net.sources:
        lane = net.lanes[src]
        assert lane.light is not None and len(lane.successors) == 3  # left, straight, right
        for c in lane.successors:
            (out,) = net.lanes[c].successors
            assert net.lanes[c].kind == "junction" and not net.lanes[out].successors
    route, s0 = routes.sample_route(net, rng, 500.0)
    assert len(route.lanes) == 3 and route.lanes[0] in net.sources
    assert route.length < 500.0  # the network ends at the outgoing arm


def test_light_phases_are_deterministic_and_never_green_together():
    net = layouts.intersection(np.random.default_rng(4), green=6.0, yellow=2.0, all_red=1.0)
    cycle = net.lights[0].cycle
    assert cycle == pytest.approx(36.0)
    greens = np.zeros(4)
    for t in np.arange(0.0, cycle, 0.1):
        states = net.light_states(float(t))
        assert sum(s in (GREEN, YELLOW) for s in states) <= 1  # protected phases
        greens += [s == GREEN for s in states]
        assert states.tolist() == net.light_states(float(t) + 3 * cycle).tolist()
        assert states.tolist() == [light.state(float(t)) for light in net.lights]
    np.testing.assert_allclose(greens * 0.1, 6.0, atol=0.11)
    light = net.lights[2]
    assert light.state(light.start + 0.5) == GREEN
    assert light.state(light.start + 6.5) == YELLOW
    assert light.state(light.start + 8.5) == RED


def test_generators_are_seeded():
    a = layouts.loop(np.random.default_rng(7)).lanes[0].centre
    b = layouts.loop(np.random.default_rng(7)).lanes[0].centre
    c = layouts.loop(np.random.default_rng(8)).lanes[0].centre
    np.testing.assert_array_equal(a, b)
    assert a.shape != c.shape or not np.allclose(a, c)


# --- driving score -----------------------------------------------------------------------
def test_driving_score_by_hand():
    counts = {"collision_vehicle": 1, "red_light": 2, "collision_pedestrian": 0, "bogus": 5}
    score = driving_score(0.8, counts, route_length=500.0, outside_lane_distance=25.0)
    penalty = 0.60 * 0.70 * 0.70 * (1 - 25.0 / 500.0)  # = 0.2793
    assert score.infraction_penalty == pytest.approx(penalty)
    assert score.route_completion == pytest.approx(80.0)
    assert score.driving_score == pytest.approx(80.0 * 0.2793)
    assert score.km == pytest.approx(0.4)
    assert score.infractions_per_km == pytest.approx(3 / 0.4)
    assert score.per_km["red_light"] == pytest.approx(5.0)
    assert "bogus" not in score.counts


def test_coefficients_and_timeout():
    assert PENALTIES == {
        "collision_pedestrian": 0.50,
        "collision_vehicle": 0.60,
        "collision_static": 0.65,
        "red_light": 0.70,
        "stop_sign": 0.80,
        "timeout": 0.70,
    }
    info = {
        "route_completion": 0.5,
        "infraction_counts": {"collision_static": 1, "agent_blocked": 1},
        "route_length": 200.0,
        "outside_lane_distance": 0.0,
        "is_success": False,
    }
    s = episode_score(info, truncated=True)
    assert s.driving_score == pytest.approx(50.0 * 0.65 * 0.70)
    assert s.counts["timeout"] == 1 and s.counts["agent_blocked"] == 1
    assert episode_score({**info, "is_success": True}, truncated=True).counts["timeout"] == 0
    clean = driving_score(1.0, {}, 300.0)
    assert clean.driving_score == 100.0 and clean.infractions_per_km == 0.0
    agg = mean_scores([s, clean])
    assert agg["driving_score"] == pytest.approx((50.0 * 0.455 + 100.0) / 2)
    assert agg["infractions_per_km"] == pytest.approx(3 / 0.4)
    with pytest.raises(ValueError):
        driving_score(80.0, {}, 100.0)  # a percentage where a fraction is expected


def test_lane_queries_give_the_same_answers_compiled_and_as_plain_python():
    """``locate`` and ``lanes_near`` run a loop compiled by numba where it is installed;
    the same source run as Python gives the same answers, to the bit."""
    net = town(np.random.default_rng(3)).net
    rng = np.random.default_rng(0)
    lo, hi = net.segment_starts.min(axis=0) - 10.0, net.segment_starts.max(axis=0) + 10.0
    for x, y, h in rng.uniform([lo[0], lo[1], -4.0], [hi[0], hi[1], 4.0], (300, 3)):
        seg = net.segments_near(x, y)
        for facing in (False, True):
            args = (seg, x, y, math.cos(h), math.sin(h), facing)
            assert roads._locate(*args) == roads._locate_loop(*args)
        axis = np.array([[x - 1.5, y], [x, y], [x + 1.5, y]])
        compiled = roads._lanes_near(seg, axis, 4.84)
        for a, b in zip(compiled, roads._lanes_near_loop(seg, axis, 4.84), strict=True):
            np.testing.assert_array_equal(a, b)
