"""The traffic lights' heads (:mod:`pilot.envs.driving.signals`): a car waiting at its
stop line sees its light's far head in its own colour, which the near head beside the
line is out of view for; the heads stay out of the lidar."""

from __future__ import annotations

import math

import numpy as np
import pytest

import pilot.envs  # noqa: F401 - registers the pilot/... ids
from pilot.envs import make_env
from pilot.envs.driving.roads import GREEN, RED
from pilot.envs.driving.signals import head_poses
from pilot.envs.driving.traffic import VEHICLE_LENGTH
from pilot.envs.driving.world import _LIGHT_COLOURS, LIGHT
from pilot.perception.episodes import CollectConfig
from pilot.perception.labels import BOX_FIELDS, to_ego
from pilot.perception.sensors import camera_extrinsics, camera_intrinsics, pinhole, project

#: the perception dataset's camera (128 × 96, 1.4 m up, 8° down, 60° vertical field)
CAMERA = pinhole(CollectConfig().camera)


def waiting_pose(light, gap: float = 1.0) -> tuple[float, float, float]:
    """The ego's pose with its front ``gap`` metres before the middle of the light's line."""
    (ax, ay), (bx, by) = light.stop_line
    back = gap + 0.5 * VEHICLE_LENGTH
    h = light.heading
    return 0.5 * (ax + bx) - back * math.cos(h), 0.5 * (ay + by) - back * math.sin(h), h


def pixel(point, pose) -> tuple[float, float]:
    """Where a world point ``(x, y, z)`` is in CAMERA's image from the ego at ``pose``."""
    row = np.zeros((1, len(BOX_FIELDS)))
    row[0, :2] = point[:2]
    ego = to_ego(row, pose)[0, :2]
    uv = project(np.array([[*ego, point[2]]]), camera_intrinsics(CAMERA), camera_extrinsics(CAMERA))
    return tuple(uv[0])


@pytest.mark.parametrize(
    ("env_id", "seed"), [("pilot/Driving-Intersection-v0", 0), ("pilot/Driving-Town-v0", 1)]
)
def test_a_car_at_its_stop_line_sees_its_lights_far_head_in_the_lights_colour(env_id, seed):
    env = make_env(env_id, sensors=("state",))
    env.reset(seed=seed, options={"vehicles": [], "pedestrians": []})
    u = env.unwrapped
    world, net = u.world, u.net
    assert len(net.lights) >= 4
    for light, (near, _, lamp) in zip(net.lights, head_poses(net), strict=True):
        pose = waiting_pose(light)
        u_, v_ = pixel(lamp[:3], pose)
        assert 0 <= u_ < CAMERA.width and 0 <= v_ < CAMERA.height, light.id
        # beside the line and 3.5 m up, the near head is above the image
        assert pixel(near[:3], pose)[1] < 0
        for state in (GREEN, RED):
            t = light.start + (0.5 * light.green if state == GREEN else light.cycle - 0.5)
            assert light.state(t) == state
            world.set_light_clock(net, t)
            rgb, _, cls = world.camera(CAMERA, *pose)
            r, c = int(v_), int(u_)  # the pixel the lamp's centre falls in
            assert cls[r, c] == LIGHT
            expected = np.array(_LIGHT_COLOURS[state][:3]) * 255
            # the renderer shades the lamp's face a little: its hue is the light's
            assert np.argmax(rgb[r, c]) == np.argmax(expected), (light.id, rgb[r, c])
            assert rgb[r, c].max() > 100
    env.close()


def test_the_heads_are_not_in_the_lidar():
    env = make_env("pilot/Driving-Intersection-v0", sensors=("state",))
    env.reset(seed=0, options={"vehicles": [], "pedestrians": []})
    u = env.unwrapped
    world, net = u.world, u.net
    world.camera(CAMERA, *waiting_pose(net.lights[0]))  # stands the heads where they hang
    for near, _, lamp in head_poses(net):
        for x, y, z, _ in (near, lamp):
            start = np.array([[x - 3.0, y, z], [x, y - 3.0, z]])
            frac, ids = world.cast(start, start + [[6.0, 0.0, 0.0], [0.0, 6.0, 0.0]])
            assert (frac == 1.0).all() and (ids == -1).all()
    env.close()
