"""The town scenario: a generated grid of junctions with lights and stop signs, long routes
across it, roadside clutter (pooled bodies placed around the car; rays and contacts with it
worked out in numpy) and the three Town ids."""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import pilot.envs  # noqa: F401 - registers the pilot/... ids
from pilot.envs import make_env
from pilot.envs.driving import boxcast, clutter, layouts, roads
from pilot.envs.driving.clutter import KIND, Clutter
from pilot.envs.driving.ground import GroundRaster
from pilot.envs.driving.roads import GREEN
from pilot.envs.driving.town import ARTERIAL, town, town_clutter, town_route
from pilot.envs.driving.world import (
    CLUTTER_IDS,
    EGO_HALF,
    EGO_Z,
    STATIC,
    Client,
    World,
    p,
)

TOWN, EMPTY, DENSE = (
    "pilot/Driving-Town-v0",
    "pilot/Driving-Town-Empty-v0",
    "pilot/Driving-Town-Dense-v0",
)


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


@functools.cache
def built(seed: int):
    """A town and its clutter (no simulator)."""
    r = rng(seed)
    t = town(r)
    return t, town_clutter(t, r)


@pytest.fixture(scope="module")
def empty():
    """One empty-town env for the module: building a town's traffic model takes seconds."""
    env = make_env(EMPTY, town_maps=1)
    yield env
    env.close()


def turn_of(lane: roads.Lane) -> float:
    return roads.wrap_angle(float(lane.headings[-1] - lane.headings[0]))


# --- the network ---------------------------------------------------------------------------
def test_same_seed_same_town_route_and_clutter():
    a, b = town(rng(3)), town(rng(3))
    assert len(a.net.lanes) == len(b.net.lanes) > 100
    for x, y in zip(a.net.lanes, b.net.lanes, strict=True):
        np.testing.assert_array_equal(x.centre, y.centre)
        assert (x.successors, x.light, x.stop, x.kind) == (y.successors, y.light, y.stop, y.kind)
    assert a.net.lights == b.net.lights and a.net.stop_signs == b.net.stop_signs
    np.testing.assert_array_equal(a.net.crosswalks, b.net.crosswalks)
    (ra, sa), (rb, sb) = town_route(a, rng(7), 1500.0), town_route(b, rng(7), 1500.0)
    np.testing.assert_array_equal(ra.points, rb.points)
    assert sa == sb and ra.lanes == rb.lanes
    ca, cb = town_clutter(a, rng(9)), town_clutter(b, rng(9))
    for field in ("kind", "x", "y", "yaw"):
        np.testing.assert_array_equal(getattr(ca, field), getattr(cb, field))
    assert not np.allclose(town(rng(4)).nodes[:4], a.nodes[:4])


def test_routes_are_one_to_two_km_through_several_junctions_with_turns():
    turning = 0
    for seed in range(6):
        t = built(seed)[0]
        net = t.net
        route, s_start = town_route(t, rng(100 + seed), 1500.0)
        assert 1000.0 <= route.length <= 2000.0
        lanes = [net.lanes[i] for i in route.lanes]
        for here, there in zip(lanes, lanes[1:], strict=False):
            assert there.id in here.successors
        assert lanes[0].kind == lanes[-1].kind == "road" and 0 < s_start < lanes[0].length
        junctions = [ln for ln in lanes if ln.kind == "junction"]
        assert len({int(t.lane_node[ln.id]) for ln in junctions}) >= 5  # across, not round
        turning += any(abs(turn_of(ln)) > 1.0 for ln in junctions)
    assert turning >= 4


def test_every_junction_has_lights_or_stop_signs_and_its_lights_take_turns():
    kinds = set()
    for seed in range(4):
        t = built(seed)[0]
        net = t.net
        for k, control in enumerate(t.control):
            kinds.add(control)
            arms = [a for a in t.arms.values() if a.node == k]
            arriving = [ln for ln in net.lanes if ln.kind == "road" and t.lane_node[ln.id] == k]
            if control == "bend":
                assert len(arms) == 2
                assert all(ln.light is None and ln.stop is None for ln in arriving)
                continue
            assert len(arms) >= 3
            if any(a.lanes == ARTERIAL for a in arms):
                assert control == "lights"
            guard = "light" if control == "lights" else "stop"
            ids = {getattr(ln, guard) for ln in arriving}
            assert None not in ids and len(ids) == len(arms)  # one per approach
            assert all(
                getattr(ln, "stop" if guard == "light" else "light") is None for ln in arriving
            )
            for ln in arriving:  # the stop line lies across the lane's end
                line = (net.lights if guard == "light" else net.stop_signs)[getattr(ln, guard)]
                a, b = (np.array(q) for q in line.stop_line)
                end = ln.centre[-1]
                cross = (b - a)[0] * (end - a)[1] - (b - a)[1] * (end - a)[0]
                assert abs(cross) / np.linalg.norm(b - a) < 1e-6
            if guard == "light":  # protected phases: never two greens at once
                cycle = net.lights[next(iter(ids))].cycle
                for time in np.arange(0.0, cycle, 0.25):
                    assert sum(net.lights[i].state(time) == GREEN for i in ids) <= 1
        junctions = [k for k, c in enumerate(t.control) if c != "bend"]
        arms = sum(1 for a in t.arms.values() if a.node in junctions)
        assert len(net.crosswalks) == arms  # a crosswalk across every arm of every junction
    assert kinds == {"lights", "stop", "bend"}


def test_lanes_connect_with_a_choice_of_lanes_and_no_dead_ends():
    net = built(0)[0].net
    assert net.sources == []
    forward: dict[int, list[int]] = {ln.id: list(ln.successors) for ln in net.lanes}
    backward: dict[int, list[int]] = {ln.id: [] for ln in net.lanes}
    for ln in net.lanes:
        assert ln.successors
        for s in ln.successors:
            np.testing.assert_allclose(ln.centre[-1], net.lanes[s].centre[0], atol=1e-9)
            backward[s].append(ln.id)
    for graph in (forward, backward):  # every lane reaches, and is reached from, lane 0
        seen, todo = {0}, [0]
        while todo:
            for nxt in graph[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        assert len(seen) == len(net.lanes)
    two_lane = [ln for ln in net.lanes if ln.kind == "road" and ln.right is not None]
    assert two_lane
    for left in two_lane:
        right = net.lanes[left.right]
        assert right.left == left.id
        left_turns = [turn_of(net.lanes[s]) for s in left.successors]
        right_turns = [turn_of(net.lanes[s]) for s in right.successors]
        assert all(a > -0.5 for a in left_turns) and all(a < 0.5 for a in right_turns)
    assert any(turn_of(net.lanes[s]) > 1.0 for ln in two_lane for s in ln.successors)


# --- clutter -----------------------------------------------------------------------------------
def test_clutter_stays_off_the_road():
    for seed in range(3):
        t, c = built(seed)
        assert len(c) > 500
        names = {clutter.KINDS[k].name for k in c.kind.tolist()}
        assert {"trunk", "crown", "lamp", "fence", "sign_pole", "light_pole"} <= names
        assert any(n.startswith("building") for n in names)
        assert any(n.startswith("parked") for n in names)
        corners = c.footprints()
        points = np.concatenate(
            [corners, 0.5 * (corners + np.roll(corners, 1, axis=1)), np.c_[c.x, c.y][:, None]],
            axis=1,
        ).reshape(-1, 2)
        on_road = [t.net.locate(float(x), float(y)).on_road for x, y in points]
        assert not any(on_road)


def test_clutter_rays_match_pybullet_and_numpy_matches_numba(monkeypatch):
    layout = Clutter.of(
        [
            (KIND["building2"], 30.0, 5.0, 0.3),
            (KIND["trunk"], -8.0, 3.0, 0.0),
            (KIND["crown"], -8.0, 3.0, 0.0),
            (KIND["fence"], 0.0, -12.0, 1.2),
            (KIND["parked_red"], 6.0, 6.0, -0.4),
        ]
    )
    world = World(0, 0, 0, gui=False)
    world.set_clutter(layout)
    world.place_ego(0.0, 0.0, 0.0)
    assert len(world.clutter.placed()) == len(layout)
    az = np.radians(np.arange(0.0, 360.0, 0.5))
    el = np.radians(np.array([-5.0, 0.0, 12.0]))
    dirs = np.stack([np.outer(np.cos(el), np.cos(az)), np.outer(np.cos(el), np.sin(az))])
    dirs = np.concatenate([dirs, np.repeat(np.sin(el)[None, :, None], len(az), 2)], 0)
    ends = dirs.reshape(3, -1).T * 60.0 + [0.0, 0.0, 1.0]
    starts = np.tile([0.0, 0.0, 1.0], (len(ends), 1))
    frac, ids = world.cast(starts, ends)
    assert (ids >= 0).sum() > 200 and set(world.body_class[ids[ids >= 0]].tolist()) == {STATIC}
    # the same boxes as pybullet collision shapes
    c = Client(p.DIRECT)
    ref = {}  # reference body -> layout row
    rows = zip(layout.kind, layout.x, layout.y, layout.yaw, strict=True)
    for k, (kind, x, y, yaw) in enumerate(rows):
        spec = clutter.KINDS[kind]
        shape = c.createCollisionShape(p.GEOM_BOX, halfExtents=spec.half)
        quat = [0, 0, math.sin(yaw / 2), math.cos(yaw / 2)]
        ref[body := c.createMultiBody(0, shape, -1, [x, y, spec.z], quat)] = k
        c.setCollisionFilterGroupMask(body, -1, 8, 5)  # seen by rays (1) and the car (4)
    expected = np.array([r[2] for r in c.rayTestBatch(starts, ends)])
    np.testing.assert_allclose(frac, expected, atol=1e-3)
    # contacts of the car's box, here and in pybullet, at many poses
    car = c.createMultiBody(0, c.createCollisionShape(p.GEOM_BOX, halfExtents=EGO_HALF), -1)
    c.setCollisionFilterGroupMask(car, -1, 4, 8)
    hits = 0
    for x, y, yaw in rng(0).uniform((-12.0, -15.0, -3.0), (40.0, 12.0, 3.0), (400, 3)):
        z = (EGO_Z - EGO_HALF[2], EGO_Z + EGO_HALF[2])
        mine = {b - CLUTTER_IDS for b in world.clutter.touching(x, y, yaw, EGO_HALF[:2], z, 0.0)}
        c.resetBasePositionAndOrientation(
            car, (x, y, EGO_Z), (0, 0, math.sin(yaw / 2), math.cos(yaw / 2))
        )
        c.performCollisionDetection()
        points = c.getContactPoints(bodyA=car)
        assert {ref[q[2]] for q in points if q[8] < -1e-3} <= mine
        assert mine <= {ref[q[2]] for q in points if q[8] < 1e-3}
        hits += len(mine)
    assert hits > 20
    c.disconnect()
    monkeypatch.setattr(boxcast, "_cast_compiled", None)  # numpy, as without numba
    frac2, ids2 = world.cast(starts, ends)
    np.testing.assert_array_equal(frac, frac2)
    np.testing.assert_array_equal(ids, ids2)
    world.close()


def test_the_lidar_and_the_camera_see_the_clutter(empty):
    returns = {}
    for name, env in (("town", empty), ("loop", make_env("pilot/Driving-LaneKeep-v0"))):
        env.reset(seed=2)
        hits = 0
        for _ in range(30):
            obs, *_ = env.step(env.unwrapped.follow_route())
            hits += int((obs["lidar"] < 1.0).sum())
        returns[name] = hits / 30
    assert returns["town"] > 60 and returns["town"] > 3 * returns["loop"]
    u = empty.unwrapped
    ranges, ids = u._frame_cache["lidar"]
    assert set(u.world.body_class[ids[ids >= 0]].tolist()) == {STATIC}
    frame = u.world.camera(u.CHASE, u._sim.ego.x, u._sim.ego.y, u._sim.ego.yaw)
    assert (frame[2] == STATIC).mean() > 0.02


def test_clutter_bodies_are_few_pooled_and_only_for_pictures():
    env = make_env(EMPTY, town_maps=1)
    u = env.unwrapped
    env.reset(seed=0)
    for _ in range(50):
        env.step(u.follow_route())
    assert u.world.client.getNumBodies() == 13  # the car and 4 lights × 3 heads: no picture yet
    counts = []
    for seed in [0, 1, 2, 3] * 2:
        env.reset(seed=seed)
        for _ in range(20):
            env.step(u.follow_route())
        env.unwrapped.world.camera(u.CHASE, u._sim.ego.x, u._sim.ego.y, u._sim.ego.yaw)
        counts.append(u.world.client.getNumBodies())
    assert max(counts) < len(u.world.clutter.layout) / 4  # only the boxes near the car
    assert counts[4:] == [counts[3]] * 4  # the same places again: not one body more
    env.close()


def test_driving_into_clutter_is_a_static_collision(empty):
    empty.reset(seed=5)
    u = empty.unwrapped
    lay, placed = u.world.clutter.layout, u.world.clutter._placed
    ego = u._sim.ego
    k = placed[np.argmin(np.hypot(lay.x[placed] - ego.x, lay.y[placed] - ego.y))]
    ego.x, ego.y = float(lay.x[k]), float(lay.y[k])  # onto the nearest box
    _, _, terminated, _, info = empty.step(np.zeros(2))
    assert info["infraction_counts"]["collision_static"] == 1
    assert terminated and info["outcome"] == "collision"


def test_a_scripted_drive_in_the_empty_town_keeps_to_its_lanes(empty):
    empty.reset(seed=1)
    u = empty.unwrapped
    lanes = set()
    for _ in range(400):
        _, _, terminated, _, info = empty.step(u.follow_route())
        lanes.add(u.net.locate(u._sim.ego.x, u._sim.ego.y, u._sim.ego.yaw).lane)
        assert not terminated or info["outcome"] == "route_completed"
    assert u._sim.best_s > 150.0  # 40 s, waits at lights and signs included
    assert info["outside_lane_distance"] == 0.0
    counts = info["infraction_counts"]
    assert counts["outside_lane"] == counts["collision_static"] == 0
    assert any(u.net.lanes[i].kind == "junction" for i in lanes)


def test_the_routes_stop_lines_include_its_lights_and_stop_signs(empty):
    past_the_end = 0
    for seed in range(3):
        empty.reset(seed=seed)
        u = empty.unwrapped
        expected = []
        for i in u.route.lanes:  # the lanes the route leaves at their end, and its last
            lane = u.net.lanes[i]  # lane's line, past the route's end (a queue waits there)
            if lane.light is not None:
                expected.append(("light", lane.light))
            if lane.stop is not None:
                expected.append(("stop_sign", lane.stop))
        assert expected and [(s.kind, s.id) for s in u._stops] == expected
        last = u.net.lanes[u.route.lanes[-1]]
        if last.light is not None or last.stop is not None:  # its line lies past the end
            assert u._stops[-1].s > u.route.length
            past_the_end += 1
    assert past_the_end


def test_tiled_ground_raster_matches_the_whole_image():
    for net in (
        layouts.loop(rng(0), 2, n_crosswalks=2),
        layouts.intersection(rng(1)),
    ):
        g = GroundRaster(net, 0.1)
        whole = g.image
        rows, cols = np.mgrid[0 : g.height, 0 : g.width]
        x = g.origin[0] + (cols.ravel() + 0.5) * g.resolution
        y = g.origin[1] + (rows.ravel() + 0.5) * g.resolution
        np.testing.assert_array_equal(g.lookup(x, y).reshape(whole.shape), whole)
        assert len(g._tiles) <= g.KEEP


# --- the ids -----------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("env_id", [TOWN, EMPTY, DENSE])
def test_gymnasium_and_sb3_check_env_on_the_town_ids(env_id):
    env = make_env(env_id, town_maps=1, render_mode="rgb_array")
    with warnings.catch_warnings():
        warnings.simplefilter("error", category=UserWarning)
        gym_check_env(env.unwrapped)
        sb3_check_env(env.unwrapped, warn=True)
    env.close()


def test_same_seed_same_actions_same_observations_in_traffic():
    def rollout():
        env = make_env(TOWN, town_maps=1, lidar={"noise_std": 0.05})
        env.action_space.seed(5)
        out = [env.reset(seed=11)[0]]
        for _ in range(40):
            obs, r, *_, info = env.step(env.action_space.sample())
            out.append((obs, r, info["infractions"]))
        env.close()
        return out

    for x, y in zip(rollout(), rollout(), strict=True):
        np.testing.assert_equal(x, y)


@pytest.mark.slow
def test_soak_keeps_memory_bounded():
    # measured: +0.0 MiB after warm-up over 80 resets and 1,600 steps with every sensor;
    # each kept town holds ~2.3 MB, so two towns stay far below the 40 MiB bar
    from pilot.bench.driving import soak

    _, warm, end = soak(80, 1600, TOWN, warm_up=30, town_maps=2, camera={"width": 64, "height": 48})
    assert end - warm < 40.0  # MiB


def test_town_traffic_keeps_its_cars_after_lane_changes():
    """A car that changes lane takes one of the new lane's successors: before, its next
    lane was 'none' and it left the network at the next junction (30 cars fell to 16 in
    120 s); a town has no source lanes to bring them back."""
    env = make_env("pilot/Driving-Town-v0", blocked_time=1000.0)
    env.reset(seed=0)
    u = env.unwrapped
    start = int(u._sim.traffic.active.sum())
    for _ in range(1200):  # the ego stands still for 120 s
        env.step(np.array([0.0, -1.0], dtype=np.float32))
    assert start == 30 and int(u._sim.traffic.active.sum()) == start
    assert u._sim.traffic_contacts == 0
    env.close()
