"""Perception labels: objects placed at known poses land in the right cells and boxes, the
grid turns with the ego, the road lies under the car, the light and waypoints match the
world. Expected cells are worked out in the comments from the grid's rule: cell (r, c) has
its centre at x = ahead - (r + 0.5) res, y = side - (c + 0.5) res (defaults: ahead 28,
side 16, res 0.25), and a cell is on when its centre lies inside the box."""

from __future__ import annotations

import math

import numpy as np
import pytest

import pilot.envs  # noqa: F401 - registers the ids
from pilot.envs import make_env
from pilot.envs.driving import DRIVING
from pilot.envs.driving.world import CLASS_NAMES, MARKING, PEDESTRIAN, ROAD, STATIC, VEHICLE
from pilot.perception.grid import GridConfig, fill_boxes, lidar_histogram
from pilot.perception.labels import (
    BOX_CLASSES,
    GRID_CLASSES,
    LIGHT_STATES,
    LabelConfig,
    frame_labels,
    scene,
    semantic_grid,
    to_ego,
    waypoint_label,
)

INTERSECTION = "pilot/Driving-Intersection-v0"
CFG = LabelConfig()
VEH, PED, OBS = (GRID_CLASSES.index(n) for n in ("vehicle", "pedestrian", "static"))


def block(rows: range, cols: range, shape=(128, 128)) -> np.ndarray:
    out = np.zeros(shape, dtype=np.uint8)
    out[rows.start : rows.stop, cols.start : cols.stop] = 1
    return out


@pytest.fixture(scope="module")
def junction():
    """The intersection with the car on its straight approach arm, a vehicle 12 m ahead in
    its lane at 5 m/s and an obstacle 20 m ahead, 1 m left of the lane's centre."""
    env = make_env(INTERSECTION, vehicles=1, pedestrians=1, obstacles=1)
    env.reset(
        seed=0,
        options={
            "vehicles": [{"ahead": 12.0, "speed": 5.0}],
            "obstacles": [{"ahead": 20.0, "offset": 1.0}],
            "pedestrians": [{"crosswalk": 0, "u": 3.0, "speed": 1.2}],
        },
    )
    yield env
    env.close()


def test_class_lists_are_the_worlds():
    assert set(GRID_CLASSES + BOX_CLASSES) <= set(CLASS_NAMES)
    assert GRID_CLASSES[:2] == (CLASS_NAMES[ROAD], CLASS_NAMES[MARKING])
    assert LIGHT_STATES == ("none", "green", "yellow", "red")


def test_placed_vehicle_and_obstacle_land_in_their_boxes_and_cells(junction):
    labels = frame_labels(junction, CFG)
    cls = labels.box_class.tolist()
    assert sorted(cls) == sorted([VEHICLE, STATIC])  # the pedestrian is 40+ m away
    vehicle = labels.boxes[cls.index(VEHICLE)]
    obstacle = labels.boxes[cls.index(STATIC)]
    # x, y, yaw, length, width, vx, vy: straight ahead in the car's lane, driving its way
    np.testing.assert_allclose(vehicle, [12.0, 0.0, 0.0, 4.5, 1.9, 5.0, 0.0], atol=1e-5)
    np.testing.assert_allclose(obstacle, [20.0, 1.0, 0.0, 1.0, 2.2, 0.0, 0.0], atol=1e-5)
    # vehicle: x in [9.75, 14.25] -> (r + 0.5) in [55, 73] -> rows 55..72;
    #          y in [-0.95, 0.95] -> (c + 0.5) in [60.2, 67.8] -> cols 60..67
    np.testing.assert_array_equal(labels.grid[VEH], block(range(55, 73), range(60, 68)))
    # obstacle: x in [19.5, 20.5] -> rows 30..33; y in [-0.1, 2.1] -> (c + 0.5) in
    #           [55.6, 64.4] -> cols 56..63
    np.testing.assert_array_equal(labels.grid[OBS], block(range(30, 34), range(56, 64)))
    assert not labels.grid[PED].any()


def test_pedestrian_seen_from_a_chosen_pose(junction):
    """A pedestrian walking 1.2 m/s across crosswalk 0, 3 m from its start, seen by a car
    10 m away that faces across its path: it walks to the car's left."""
    now = scene(junction)
    net = junction.unwrapped.net
    a, b = net.crosswalks[0]
    walk = math.atan2(b[1] - a[1], b[0] - a[0])
    p = a + (b - a) * 3.0 / np.linalg.norm(b - a)
    yaw = walk - math.pi / 2
    pose = (p[0] - 10 * math.cos(yaw), p[1] - 10 * math.sin(yaw), yaw)
    local = to_ego(now.boxes, pose)[now.box_class == PEDESTRIAN]
    np.testing.assert_allclose(local, [[10.0, 0.0, math.pi / 2, 0.5, 0.6, 0.0, 1.2]], atol=1e-9)
    grid = semantic_grid(
        junction.unwrapped.world.raster.shapes, now.box_class, now.boxes, pose, CFG.grid
    )
    # its 0.5 m length runs along the car's y, its 0.6 m width along x:
    # x in [9.7, 10.3] -> (r + 0.5) in [70.8, 73.2] -> rows 71, 72;
    # y in [-0.25, 0.25] -> (c + 0.5) in [63, 65] -> cols 63, 64
    np.testing.assert_array_equal(grid[PED], block(range(71, 73), range(63, 65)))


def test_grid_turns_with_the_ego(junction):
    """The same world seen after the car turns 90° left looks turned 90° clockwise. On a
    grid centred on the car, the cell at (x, y) then shows what (-y, x) showed: rot90 by
    -1 of the array."""
    grid = GridConfig(ahead=24.0, behind=24.0, side=24.0)
    u, now = junction.unwrapped, scene(junction)
    x, y, yaw = now.pose
    a = semantic_grid(u.world.raster.shapes, now.box_class, now.boxes, (x, y, yaw), grid)
    b = semantic_grid(
        u.world.raster.shapes, now.box_class, now.boxes, (x, y, yaw + 0.5 * math.pi), grid
    )
    turned = np.rot90(a, k=-1, axes=(1, 2))
    assert a[VEH].sum() == 144 and a[OBS].sum() == 32  # both objects are on it
    np.testing.assert_array_equal(b, turned)
    for k in (0, 1):  # and the view did change
        assert (b[k] != a[k]).sum() > 0.5 * a[k].sum() > 0


def test_road_and_markings_under_the_car_on_the_straight_arm(junction):
    """The car drives on the right lane of a two-lane arm (3.5 m lanes), so the road spans
    y in [-1.75, 5.25]: cells with centres there are cols 43..70. The solid lines at
    y = 5.25, 1.75, -1.75 fall on cell edges (u = 42.5, 56.5, 70.5) and take one column of
    each pair."""
    labels = frame_labels(junction, CFG)
    road, marking = labels.grid[0], labels.grid[1]
    for row in (103, 111, 120):  # x = 2.125, 0.125, -2.125: the car's own length
        assert road[row, 43:71].all()
        assert not road[row, :42].any() and not road[row, 72:].any()
        cols = set(np.flatnonzero(marking[row]).tolist())
        assert len(cols) == 3 and cols <= {42, 43, 56, 57, 70, 71}


@pytest.mark.parametrize("env_id", sorted(set(DRIVING) - {"pilot/Driving-Highway-Meta-v0"}))
def test_road_covers_the_car_in_every_scenario(env_id):
    env = make_env(env_id)
    env.reset(seed=3)
    labels = frame_labels(env, CFG)
    # the car's footprint: x in [-2.25, 2.25] -> rows 103..120; y in [-0.95, 0.95] -> 60..67
    assert labels.grid[0, 103:121, 60:68].all()
    assert labels.grid[1].any() and not labels.grid[0].all()
    # the labels paint the same road as the world's raster (camera ground, bev_image)
    xs, ys = CFG.grid.centres()
    fx, ly = np.meshgrid(xs, ys, indexing="ij")
    x, y, yaw = scene(env).pose
    raster = env.unwrapped.world.raster.lookup(
        x + math.cos(yaw) * fx - math.sin(yaw) * ly, y + math.sin(yaw) * fx + math.cos(yaw) * ly
    )
    assert (labels.grid[0].astype(bool) == np.isin(raster, [ROAD, MARKING])).mean() > 0.97
    env.close()


def test_light_state_follows_the_worlds_light():
    """Drive (ignoring the lights) until the stop line is 25 m ahead, then replay with the
    lights' clock set so that the light shows each state at that moment."""
    env = make_env(INTERSECTION)
    options = {"vehicles": [], "pedestrians": [], "start_time": 0.0}
    env.reset(seed=2, options=options)
    u = env.unwrapped
    lane = u.net.lanes[u.route.lanes[0]]
    light = u.net.lights[lane.light]
    assert frame_labels(env, CFG).light == 0  # the line is 35+ m away: beyond 30 m

    steps = 0
    while lane.length - u.net.locate(*scene(env).pose).s > 25.0:
        env.step(u.follow_route(8.0))
        steps += 1
    for state, phase in (("green", 3.0), ("yellow", 7.0), ("red", 20.0)):
        start = (light.start + phase - steps * u.config.dt) % light.cycle
        env.reset(seed=2, options={**options, "start_time": start})
        for _ in range(steps):
            env.step(u.follow_route(8.0))
        labels = frame_labels(env, CFG)
        assert LIGHT_STATES[labels.light] == state
        assert labels.light == light.state(scene(env).t) + 1
        here = u.net.locate(*scene(env).pose)
        assert labels.light_distance == pytest.approx(lane.length - here.s)
        assert 22.0 < labels.light_distance <= 25.0
    for _ in range(100):  # on past the stop line, into the junction: no light governs
        env.step(u.follow_route(8.0))
        if u.net.locate(*scene(env).pose).lane != lane.id:
            break
    assert u.net.lanes[u.net.locate(*scene(env).pose).lane].kind == "junction"
    labels = frame_labels(env, CFG)
    assert labels.light == 0 and math.isinf(labels.light_distance)
    env.close()


def test_waypoints_follow_the_route_ahead(junction):
    u, now = junction.unwrapped, scene(junction)
    ahead = 4.0 * np.arange(1, 7)
    expected = np.stack([ahead, np.zeros(6)], axis=1)  # the straight arm: (4k, 0)
    np.testing.assert_allclose(frame_labels(junction, CFG).waypoints, expected, atol=1e-4)
    shifted = waypoint_label(u.route, now.route_s, now.pose, CFG, offset=3.5)
    np.testing.assert_allclose(shifted, expected + [0.0, 3.5], atol=1e-4)  # a lane left


def test_fill_boxes_takes_the_cells_whose_centres_are_inside():
    grid = GridConfig(resolution=1.0, ahead=4.0, behind=0.0, side=2.0)  # 4 x 4
    mask = np.zeros(grid.shape, dtype=np.uint8)
    # a 2 m x 0.4 m box at (2, 0) turned 45°: of the cell centres (x in 3.5..0.5,
    # y in 1.5..-0.5), only (2.5, 0.5) and (1.5, -0.5) lie on its axis within 1 m
    fill_boxes(mask, grid, np.array([[2.0, 0.0, math.pi / 4, 2.0, 0.4]]))
    assert sorted(zip(*np.nonzero(mask), strict=True)) == [(1, 1), (2, 2)]
    # a box smaller than a cell still marks the cell of its centre: (0.3, 0.3) -> (3, 1)
    mask[:] = 0
    fill_boxes(mask, grid, np.array([[0.3, 0.3, 0.0, 0.1, 0.1]]))
    assert list(zip(*np.nonzero(mask), strict=True)) == [(3, 1)]


def test_lidar_histogram_counts_points_per_cell_and_band():
    grid = GridConfig(resolution=1.0, ahead=2.0, behind=0.0, side=1.0)  # 2 x 2
    points = np.array(
        [
            [1.5, 0.5, 0.0],  # cell (0, 0), below 0.2 m
            [1.5, 0.5, 0.1],  # cell (0, 0), below
            [1.5, 0.5, 1.0],  # cell (0, 0), above
            [0.5, -0.5, 2.0],  # cell (1, 1), above
            [3.0, 0.0, 1.0],  # off the grid
        ]
    )
    hist = lidar_histogram(points, grid, split_height=0.2)
    np.testing.assert_array_equal(hist, [[[2, 0], [0, 0]], [[1, 0], [0, 1]]])
    assert hist.dtype == np.uint8
    many = np.repeat(points[:1], 300, axis=0)
    assert lidar_histogram(many, grid, 0.2)[0, 0, 0] == 255  # clipped, not wrapped


def test_grid_extent_must_be_whole_cells():
    assert GridConfig().shape == (128, 128)
    with pytest.raises(ValueError, match="whole number of cells"):
        GridConfig(resolution=0.3)
