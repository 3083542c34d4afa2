"""The stack's prediction along the map's lanes: turns followed, junction connectors all
kept while a car may be on any of them, straight on where lanes part, lane changes
carried on, and everything else at constant velocity."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pilot.envs import make_env
from pilot.envs.driving.world import CLASS_NAMES
from pilot.planning.stack.prediction import DISCS, lane_paths, predict

VEHICLE, PEDESTRIAN = CLASS_NAMES.index("vehicle"), CLASS_NAMES.index("pedestrian")
TIMES = 0.2 * np.arange(1, 21)


@pytest.fixture(scope="module")
def net():
    """The Intersection's map: approach lane 0 (east, driving west) ends at x = 8 in
    three connectors, 8 (right turn), 9 (straight) and 10 (left turn, 15.8 m)."""
    env = make_env("pilot/Driving-Intersection-v0")
    env.reset(seed=0)
    yield env.unwrapped.net
    env.close()


def car_on(net, lane_id: int, s: float, speed: float, lateral_speed: float = 0.0) -> np.ndarray:
    """A box on lane ``lane_id`` at arc length ``s``, moving along it (and across it)."""
    x, y, h = net.lanes[lane_id].pose_at(s)
    c, sn = math.cos(h), math.sin(h)
    vx, vy = speed * c - lateral_speed * sn, speed * sn + lateral_speed * c
    return np.array([x, y, math.atan2(vy, vx), 4.5, 1.9, vx, vy])


def test_a_turning_car_is_predicted_along_its_connector_and_on_into_the_exit(net):
    turn = net.lanes[10]
    box = car_on(net, 10, 6.0, 5.0)
    paths = lane_paths(net, box, TIMES)
    assert paths is not None and paths.shape == (1, len(TIMES), 3)
    exit_lane = net.lanes[turn.successors[0]]
    for (x, y, _), s in zip(paths[0], 6.0 + 5.0 * TIMES, strict=True):
        # past the connector's end: on its one successor
        want = turn.pose_at(s) if s <= turn.length else exit_lane.pose_at(s - turn.length)
        assert math.hypot(x - want[0], y - want[1]) < 0.05
    # the discs lie along the path; in a straight line they would leave the road
    occ = predict(box[None], np.array([VEHICLE]), TIMES, 0.3, net)
    straight = predict(box[None], np.array([VEHICLE]), TIMES, 0.3)
    middle = occ.centres[:, 0].reshape(len(TIMES), -1, DISCS, 2)[:, 0, DISCS // 2]
    assert np.allclose(middle, paths[0, :, :2])
    assert np.hypot(*(straight.centres[-1, 0, DISCS // 2] - middle[-1])) > 5.0


def test_a_car_entering_the_junction_may_take_any_connector(net):
    box = car_on(net, 9, 0.5, 5.0)  # half a metre in: the three connectors overlap
    paths = lane_paths(net, box, TIMES)
    assert paths is not None and len(paths) == 3
    ends = {lane: net.lanes[lane].pose_at(0.5 + 5.0 * 1.0)[:2] for lane in (8, 9, 10)}
    at_1s = paths[:, 4, :2]  # t = 1 s
    for want in ends.values():
        assert np.hypot(*(at_1s - want).T).min() < 0.05
    # each way is covered by the object's discs
    occ = predict(box[None], np.array([VEHICLE]), TIMES, 0.3, net)
    assert occ.centres.shape == (len(TIMES), 1, 3 * DISCS, 2)


def test_where_lanes_part_ahead_a_car_goes_straight_on(net):
    lane = net.lanes[0]
    box = car_on(net, 0, lane.length - 3.0, 5.0)  # 3 m before its end; three ways on
    paths = lane_paths(net, box, TIMES)
    assert paths is not None and len(paths) == 1
    ex, ey, eh = lane.pose_at(lane.length)
    beyond = 5.0 * TIMES[-1] - 3.0
    want = (ex + beyond * math.cos(eh), ey + beyond * math.sin(eh))
    assert math.hypot(paths[0, -1, 0] - want[0], paths[0, -1, 1] - want[1]) < 0.05


def test_a_lane_change_goes_on_and_stops_a_lane_over(net):
    # lane 1 runs east; the car drives along it at 8 m/s, drifting left at 1 m/s
    box = car_on(net, 1, 20.0, 8.0, lateral_speed=1.0)
    paths = lane_paths(net, box, TIMES)
    x0, y0, _ = net.lanes[1].pose_at(20.0)
    offset = paths[0, :, 1] - y0
    assert np.allclose(paths[0, :, 0], x0 + 8.0 * TIMES)
    assert np.allclose(offset[:10], TIMES[:10], atol=1e-6)  # 1 m/s across for 2 s
    assert offset.max() == pytest.approx(net.lanes[1].width)  # held a lane's width over


def test_pedestrians_standing_cars_and_cars_off_every_lane_keep_constant_velocity(net):
    walker = np.array([20.0, 5.0, 0.0, 0.5, 0.5, 0.0, -1.2])
    parked = car_on(net, 1, 30.0, 0.0)
    across = car_on(net, 1, 40.0, 0.0)
    across[5:] = (0.0, 5.0)  # driving across the lane, 90° off its heading
    off_road = np.array([30.0, 30.0, 0.0, 4.5, 1.9, 5.0, 0.0])
    boxes = np.stack([walker, parked, across, off_road])
    classes = np.array([PEDESTRIAN, VEHICLE, VEHICLE, VEHICLE])
    assert lane_paths(net, across, TIMES) is None and lane_paths(net, off_road, TIMES) is None
    with_map = predict(boxes, classes, TIMES, 0.3, net)
    without = predict(boxes, classes, TIMES, 0.3)
    assert np.array_equal(with_map.centres, without.centres)
    assert np.array_equal(with_map.radius, without.radius)


def test_only_vehicles_that_may_come_near_are_rolled_along_lanes(net):
    box = car_on(net, 10, 6.0, 5.0)  # 5 m/s: 20 m over the 4 s
    cars = np.array([VEHICLE])
    along = predict(box[None], cars, TIMES, 0.3, net)
    straight = predict(box[None], cars, TIMES, 0.3)
    for radius, want in ((25.0, along), (15.0, straight)):
        around = (box[0] + 40.0, box[1], radius)  # 40 m away: within 20 + 25, not 20 + 15
        got = predict(box[None], cars, TIMES, 0.3, net, around)
        assert np.array_equal(got.centres, want.centres)
