"""The world's vehicles, pedestrians and obstacles as boxes: rays and the car's contacts
meet them as pybullet meets the same boxes as collision shapes, and pybullet's bodies
stand where the boxes are only for pictures."""

from __future__ import annotations

import math

import numpy as np
import pytest

import pilot.envs  # noqa: F401 - registers the pilot/... ids
from pilot.envs import make_env
from pilot.envs.driving import boxcast
from pilot.envs.driving.world import (
    EGO_HALF,
    EGO_Z,
    OBSTACLE_HALF,
    PARK_Z,
    PED_HALF,
    VEHICLE,
    Client,
    World,
    p,
)


def _scene(seed: int) -> tuple[World, list[tuple[int, tuple, float, float, float, float]]]:
    """A world with 4 vehicles, 3 pedestrians and 2 obstacles around the origin, one of
    each kind left out; returns it and the active ``(body, half, x, y, yaw, z)``."""
    world = World(4, 3, 2, gui=False)
    world.place_ego(0.0, 0.0, 0.0)
    rng = np.random.default_rng(seed)
    active = []
    for pool, half, z in (
        (world.vehicles, EGO_HALF, EGO_Z),
        (world.pedestrians, PED_HALF, PED_HALF[2]),
        (world.obstacles, OBSTACLE_HALF, OBSTACLE_HALF[2]),
    ):
        n = len(pool)
        x, y = rng.uniform(-25.0, 25.0, n), rng.uniform(-25.0, 25.0, n)
        far = np.hypot(x, y) < 4.0  # keep them off the lidar's mount
        x[far] += 8.0
        yaw = rng.uniform(-math.pi, math.pi, n)
        on = np.arange(n) < n - 1
        world.place(pool, x, y, yaw, on, z)
        active += [(pool[i], half, x[i], y[i], yaw[i], z) for i in range(n) if on[i]]
    return world, active


def _reference(active) -> tuple[Client, dict[int, int]]:
    """The same boxes as pybullet collision shapes; reference body -> world body."""
    c = Client(p.DIRECT)
    ref = {}
    for body, half, x, y, yaw, z in active:
        shape = c.createCollisionShape(p.GEOM_BOX, halfExtents=half)
        quat = [0, 0, math.sin(yaw / 2), math.cos(yaw / 2)]
        ref[b := c.createMultiBody(0, shape, -1, [x, y, z], quat)] = body
        c.setCollisionFilterGroupMask(b, -1, 8, 5)  # seen by rays (1) and the car (4)
    return c, ref


@pytest.mark.parametrize("seed", [0, 1])
def test_rays_meet_the_moving_boxes_where_pybullet_meets_them(seed, monkeypatch):
    world, active = _scene(seed)
    az = np.radians(np.arange(0.0, 360.0, 0.25))
    el = np.radians(np.array([-8.0, -2.0, 0.0, 3.0]))
    dirs = np.stack(
        [np.outer(np.cos(el), np.cos(az)), np.outer(np.cos(el), np.sin(az)),
         np.repeat(np.sin(el)[:, None], len(az), 1)],
        axis=-1,
    ).reshape(-1, 3)  # fmt: skip
    starts = np.tile([0.0, 0.0, 1.9], (len(dirs), 1))
    ends = starts + 60.0 * dirs
    frac, ids = world.cast(starts, ends)
    c, ref = _reference(active)
    res = c.rayTestBatch(starts, ends)
    expected = np.array([r[2] for r in res])
    expected_ids = np.array([ref.get(r[0], -1) for r in res])
    # rays that graze an edge may meet pybullet's box (which carries a collision margin of
    # a few centimetres) and miss the exact one, or the other way round: 1 in ~30,000 rays
    # of a driving sweep; here none may be more than 1 mm off but a handful of those
    off = np.abs(frac - expected) > 1e-3
    assert off.sum() <= 4, np.flatnonzero(off)
    assert (ids != expected_ids).sum() <= 4
    hit_bodies = set(ids[ids >= 0].tolist())
    assert hit_bodies == {b for b, *_ in active}  # every active box is seen, no other
    c.disconnect()
    monkeypatch.setattr(boxcast, "_cast_compiled", None)  # numpy, as without numba
    frac2, ids2 = world.cast(starts, ends)
    np.testing.assert_array_equal(frac, frac2)
    np.testing.assert_array_equal(ids, ids2)
    world.close()


def test_the_cars_contacts_with_moving_boxes_are_pybullets(monkeypatch):
    world, active = _scene(3)
    c, ref = _reference(active)
    car = c.createMultiBody(0, c.createCollisionShape(p.GEOM_BOX, halfExtents=EGO_HALF), -1)
    c.setCollisionFilterGroupMask(car, -1, 4, 8)  # touches the boxes
    hits = 0
    poses = np.random.default_rng(4).uniform((-27.0, -27.0, -3.0), (27.0, 27.0, 3.0), (3000, 3))
    for x, y, yaw in poses:
        world.place_ego(x, y, yaw)
        mine = set(world.ego_contacts())
        c.resetBasePositionAndOrientation(
            car, (x, y, EGO_Z), (0, 0, math.sin(yaw / 2), math.cos(yaw / 2))
        )
        gap = {}  # pybullet's distance (negative: depth) from the car to each box nearby
        for r, body in ref.items():
            closest = c.getClosestPoints(car, r, 0.05)
            if closest:
                gap[body] = min(q[8] for q in closest)
        assert {b for b, d in gap.items() if d < -1e-3} <= mine  # every overlap is found
        # and nothing further than 1 cm away, give or take the separating-axis test's
        # corners (whose distance may exceed the gap it measures by up to √2)
        assert mine <= {b for b, d in gap.items() if d < 0.0142}
        monkeypatch.setattr(boxcast, "_touch", boxcast._touch_loop)  # numpy, without numba
        assert set(world.ego_contacts()) == mine
        monkeypatch.undo()
        hits += len(mine)
    assert hits > 30
    c.disconnect()
    world.close()


def test_pybullet_poses_the_bodies_only_for_a_picture():
    """A rollout without a camera leaves every pooled body parked below the ground; the
    camera sees the vehicles where their boxes are."""
    env = make_env("pilot/Driving-Highway-v0", sensors=("state", "lidar"))
    env.reset(seed=0)
    u = env.unwrapped
    for _ in range(20):
        env.step(u.follow_route())
    client = u.world.client
    heights = [client.getBasePositionAndOrientation(b)[0][2] for b in u.world.vehicles]
    assert max(heights) < 0.5 * PARK_Z
    ego = u._sim.ego
    _, _, cls = u.world.camera(u.camera_spec, ego.x, ego.y, ego.yaw)
    assert (cls == VEHICLE).sum() > 0
    shown = [b for b in u.world.vehicles if client.getBasePositionAndOrientation(b)[0][2] > 0]
    assert shown
    for b in shown:
        (x, y, z), _ = client.getBasePositionAndOrientation(b)
        bx, by, _ = u.world.movers.pose(b)
        assert (x, y, z) == pytest.approx((bx, by, EGO_Z))
    env.close()


def test_a_lidar_sweep_is_the_cast_of_its_rays_compiled_or_not(monkeypatch):
    """``World.sweep`` (one compiled call: the rays turned with the car, cast, cut at the
    ground) gives what ``World.cast`` gives for the same rays' end points, and the same
    without numba."""
    world, _ = _scene(5)
    rng = np.random.default_rng(6)
    az, el = rng.uniform(-math.pi, math.pi, 900), rng.uniform(-0.3, 0.1, 900)
    rays = (40.0 * np.cos(el) * np.cos(az), 40.0 * np.cos(el) * np.sin(az), 1.9 + 40 * np.sin(el))
    ground = np.where(el < 0, 1.9 / (-40.0 * np.sin(el)), np.inf)
    x, y, yaw = 1.5, -2.0, 0.7
    frac, ids = world.sweep(x, y, (math.cos(yaw), math.sin(yaw)), rays, 1.9, ground)
    c, s = math.cos(yaw), math.sin(yaw)
    ends = np.stack([x + c * rays[0] - s * rays[1], y + s * rays[0] + c * rays[1], rays[2]], 1)
    want, want_ids = world.cast(np.tile([x, y, 1.9], (900, 1)), ends)
    low = ground < want
    np.testing.assert_array_equal(frac, np.where(low, ground, want))
    np.testing.assert_array_equal(ids, np.where(low, -2, want_ids))
    assert (ids >= 0).sum() > 20 and (ids == -2).sum() > 20 and (ids == -1).sum() > 20
    monkeypatch.setattr(boxcast, "_sweep", None)
    monkeypatch.setattr(boxcast, "_cast_compiled", None)
    plain = world.sweep(x, y, (math.cos(yaw), math.sin(yaw)), rays, 1.9, ground)
    np.testing.assert_array_equal(frac, plain[0])
    np.testing.assert_array_equal(ids, plain[1])
    world.close()
