"""Driving envs: the Gymnasium/SB3 contract, determinism, snapshots, sensors, infractions
from scripted drives, traffic rules, and SB3 PPO on every id."""

from __future__ import annotations

import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import pilot.envs  # noqa: F401 - registers the pilot/... ids
from pilot.envs import DESCRIPTIONS, make_env
from pilot.envs.driving import DRIVING
from pilot.envs.driving.roads import RED
from pilot.envs.driving.world import GRASS, MARKING, ROAD, SKY, VEHICLE
from pilot.errors import UserError
from pilot.eval.driving import episode_score

IDS = sorted(DRIVING)
LANEKEEP, HIGHWAY, META = (
    "pilot/Driving-LaneKeep-v0",
    "pilot/Driving-Highway-v0",
    "pilot/Driving-Highway-Meta-v0",
)
INTERSECTION, OBSTACLES = "pilot/Driving-Intersection-v0", "pilot/Driving-Obstacles-v0"


def follow(env, speed: float | None = None) -> np.ndarray:
    """Pure pursuit on the route's centre line at the env's target speed (which drops to
    0 before a red light) or at ``speed``."""
    return env.unwrapped.follow_route(speed)


def drive(env, policy, max_steps: int = 2000) -> tuple[dict, int, bool]:
    """Step ``policy(env)`` until the episode ends; returns (last info, steps, truncated)."""
    for n in range(1, max_steps + 1):
        _, _, term, trunc, info = env.step(policy(env))
        if term or trunc:
            return info, n, trunc
    raise AssertionError("the episode did not end")


# --- contract ------------------------------------------------------------------------------
@pytest.mark.parametrize("env_id", IDS)
def test_gymnasium_and_sb3_check_env_with_camera_and_rendering(env_id):
    env = make_env(env_id, render_mode="rgb_array", sensors=("state", "lidar", "camera"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", category=UserWarning)  # a checker warning is a failure
        gym_check_env(env.unwrapped)
        sb3_check_env(env.unwrapped, warn=True)
    env.reset(seed=0)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.shape == (240, 560, 3)
    env.close()


def test_every_sensor_together_passes_the_gymnasium_checker():
    keys = ("state", "camera", "depth", "segmentation", "lidar", "lidar_points", "lidar_bev")
    env = make_env(INTERSECTION, sensors=keys, camera={"width": 48, "height": 36})
    gym_check_env(env.unwrapped, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert list(obs) == list(keys)
    assert obs["depth"].shape == (36, 48) and obs["segmentation"].dtype == np.uint8
    assert obs["lidar_points"].shape == (360, 3) and obs["lidar_bev"].shape == (2, 64, 64)


def test_registration_string_entry_points_time_limits_and_descriptions():
    for env_id in IDS:
        spec = gym.spec(env_id)
        assert isinstance(spec.entry_point, str) and spec.max_episode_steps >= 500
        assert env_id in DESCRIPTIONS
    assert isinstance(make_env(META).action_space, gym.spaces.Discrete)
    assert make_env(LANEKEEP).action_space.shape == (2,)


def test_unknown_sensor_and_option_are_user_errors_naming_close_matches():
    with pytest.raises(UserError, match="did you mean: lidar"):
        make_env(LANEKEEP, sensors=("state", "lidr"))
    with pytest.raises(UserError, match="did you mean: vehicles"):
        make_env(LANEKEEP, vehicle=3)
    with pytest.raises(UserError, match="width"):
        make_env(LANEKEEP, camera={"widht": 64})
    env = make_env(LANEKEEP)
    with pytest.raises(UserError, match="did you mean: obstacles"):
        env.reset(seed=0, options={"obstacle": []})
    with pytest.raises(UserError, match="room for 0"):
        env.reset(seed=0, options={"obstacles": [{"ahead": 10.0}]})
    with pytest.raises(UserError, match="lane 7 does not exist"):
        make_env(HIGHWAY).reset(seed=0, options={"vehicles": [{"lane": 7}]})
    with pytest.raises(UserError, match="crosswalk 9"):
        make_env(INTERSECTION).reset(seed=0, options={"pedestrians": [{"crosswalk": 9}]})


@pytest.mark.parametrize("env_id", [HIGHWAY, INTERSECTION, META])
def test_same_seed_same_actions_same_observations_and_rewards(env_id):
    def rollout():
        env = make_env(env_id, lidar={"noise_std": 0.05})
        env.action_space.seed(5)
        obs, _ = env.reset(seed=11)
        out = [obs]
        for _ in range(60):
            obs, r, term, trunc, info = env.step(env.action_space.sample())
            out.append((obs, r, info["reward_terms"], info["infractions"]))
            if term or trunc:
                out.append(env.reset()[0])
        env.close()
        return out

    a, b = rollout(), rollout()
    for x, y in zip(a, b, strict=True):
        np.testing.assert_equal(x, y)
    other = make_env(env_id)
    assert not np.array_equal(other.reset(seed=12)[0]["lidar"], a[0]["lidar"])


def test_restoring_a_snapshot_replays_the_same_observations_rewards_and_infractions():
    env = make_env(INTERSECTION, lidar={"noise_std": 0.05}, terminate_on_collision=False)
    u = env.unwrapped
    env.reset(seed=3)
    for _ in range(40):
        env.step(follow(env))
    snap = u.get_state()
    actions = [np.array([0.2 * math.sin(i / 5), 0.6]) for i in range(80)]

    def replay():
        out = []
        for a in actions:
            obs, r, term, trunc, info = env.step(a)
            out.append((obs, r, info["infraction_counts"], info["route_completion"]))
            if term:
                break
        return out, [dict(e) for e in u._sim.infractions]

    first = replay()
    u.set_state(snap)
    second = replay()
    u.set_state(snap)  # a snapshot can be restored again
    third = replay()
    np.testing.assert_equal(first, second)
    np.testing.assert_equal(first, third)
    env.reset(seed=3)
    with pytest.raises(ValueError, match="another episode"):
        u.set_state(snap)


def test_resets_reuse_the_same_bodies():
    env = make_env(INTERSECTION)
    env.reset(seed=0)
    client = env.unwrapped.world.client
    n = client.getNumBodies()
    for seed in range(1, 6):
        env.reset(seed=seed)
        for _ in range(5):
            env.step(env.action_space.sample())
    assert client.getNumBodies() == n


# --- sensors ---------------------------------------------------------------------------------
def test_lidar_range_to_a_box_at_a_known_distance():
    env = make_env(
        OBSTACLES,
        vehicles=0,
        pedestrians=0,
        lidar={"rays": 360, "channels": 2, "v_fov": (-10.0, 0.0), "max_range": 60.0},
    )
    u = env.unwrapped
    env.reset(seed=0, options={"obstacles": []})
    ego = u._sim.ego
    world = u.world
    c, s = math.cos(ego.yaw), math.sin(ego.yaw)
    # an obstacle 20 m straight ahead, another 12 m to the left, both square to the car
    n = len(world.obstacles)
    fwd, left = np.array([20.0, 0.0] + [0.0] * (n - 2)), np.array([0.0, 12.0] + [0.0] * (n - 2))
    x, y = ego.x + c * fwd - s * left, ego.y + s * fwd + c * left
    world.place(world.obstacles, x, y, np.full(n, ego.yaw), np.arange(n) < 2, 0.6)
    u._frame_cache = {}
    ranges = u._observe()["lidar"] * 60.0
    level = ranges[360:]  # channel 1 is horizontal, channel 0 points 10° down
    assert level[0] == pytest.approx(20.0 - 0.5, rel=0.01)  # half length 0.5 m
    assert level[90] == pytest.approx(12.0 - 1.1, rel=0.01)  # half width 1.1 m, ray 90 = left
    assert level[180] == pytest.approx(60.0)  # nothing behind
    # downward rays meet the flat ground at mount height / sin(10°)
    assert ranges[180] == pytest.approx(1.0 / math.sin(math.radians(10.0)), rel=0.01)


def test_lidar_point_cloud_and_bev_grid_place_a_box_ahead():
    env = make_env(
        LANEKEEP,
        obstacles=1,
        sensors=("lidar_points", "lidar_bev"),
        lidar={"max_range": 40.0, "bev_size": 40, "bev_extent": 40.0},
    )
    u = env.unwrapped
    env.reset(seed=0, options={"obstacles": [{"ahead": 10.0}]})
    ego = u._sim.ego
    ox, oy, _ = u._obstacles[0]
    c, s = math.cos(ego.yaw), math.sin(ego.yaw)
    fwd = c * (ox - ego.x) + s * (oy - ego.y)  # the box's centre in the car's frame
    obs = u._observe()
    point = obs["lidar_points"][0] * 40.0  # ray 0 points straight ahead
    assert point[0] == pytest.approx(fwd - 0.5, abs=0.3) and point[2] == pytest.approx(1.0)
    occupancy = obs["lidar_bev"][0]
    row = int((20.0 - point[0]) / 40.0 * 40)  # ahead is up, 1 m cells, car at the centre
    assert occupancy[row, 20] == 1.0 or occupancy[row, 19] == 1.0
    assert occupancy[25:].sum() == 0  # nothing behind the car


def test_lidar_noise_comes_from_the_env_generator():
    env = make_env(LANEKEEP, lidar={"noise_std": 0.5, "channels": 1})
    env.reset(seed=0, options={"obstacles": []})
    a = env.step(np.zeros(2))[0]["lidar"]
    env.reset(seed=0, options={"obstacles": []})
    b = env.step(np.zeros(2))[0]["lidar"]
    np.testing.assert_array_equal(a, b)


def test_camera_image_shape_dtype_and_content():
    env = make_env(
        LANEKEEP, sensors=("camera", "segmentation", "depth"), camera={"width": 96, "height": 72}
    )
    obs, _ = env.reset(seed=1)
    rgb, seg, depth = obs["camera"], obs["segmentation"], obs["depth"]
    assert rgb.shape == (72, 96, 3) and rgb.dtype == np.uint8
    assert rgb.std() > 20  # not a blank frame
    assert (seg[:10] == SKY).mean() > 0.9  # sky on top
    bottom = seg[-10:]
    assert (bottom == ROAD).mean() > 0.5  # the lane ahead
    assert np.isin(seg, [GRASS]).any() and np.isin(seg, [MARKING]).any()
    assert depth[-1].mean() < depth[-20].mean() < 1.0  # nearer at the bottom
    env = make_env(HIGHWAY, sensors=("segmentation",), camera={"width": 64, "height": 48})
    obs, _ = env.reset(seed=0, options={"vehicles": [{"ahead": 12.0, "speed": 5.0}]})
    middle = obs["segmentation"][:, 24:40]
    assert (middle == VEHICLE).mean() > 0.05  # the car ahead, drawn by pybullet


# --- infractions -------------------------------------------------------------------------
def test_lane_follower_completes_the_loop():
    env = make_env(LANEKEEP)
    for seed in range(2):
        env.reset(seed=seed)
        info, _, trunc = drive(env, follow)
        assert not trunc and info["outcome"] == "route_completed" and info["is_success"]
        assert info["route_completion"] >= 0.95
        assert sum(info["infraction_counts"].values()) == 0
        assert info["outside_lane_distance"] == 0.0
        assert episode_score(info).driving_score >= 95.0


def test_driving_into_a_static_obstacle():
    env = make_env(LANEKEEP, obstacles=1)
    env.reset(seed=0, options={"obstacles": [{"ahead": 25.0}]})
    info, _, _ = drive(env, follow)
    assert info["outcome"] == "collision"
    assert info["infraction_counts"]["collision_static"] == 1
    (event,) = [e for e in env.unwrapped._sim.infractions if e["type"] == "collision_static"]
    assert event["time"] > 0 and math.isfinite(event["x"])
    assert info["reward_terms"]["collision"] == pytest.approx(-10.0)


def test_driving_into_a_stopped_car():
    env = make_env(HIGHWAY)
    env.reset(seed=0, options={"vehicles": [{"ahead": 40.0, "speed": 0.0}]})
    info, _, _ = drive(env, follow)
    assert info["outcome"] == "collision" and info["infraction_counts"]["collision_vehicle"] == 1


def test_driving_into_a_pedestrian():
    env = make_env(INTERSECTION)
    env.reset(seed=0)
    u = env.unwrapped
    cr = u.traffic_model.crossings
    k = int(np.flatnonzero(cr.lane == u.route.lanes[0])[0])
    ped = {"crosswalk": int(cr.crosswalk[k]), "u": float(cr.u[k]), "speed": 0.0}
    env.reset(seed=0, options={"pedestrians": [ped], "vehicles": []})
    info, _, _ = drive(env, lambda e: follow(e, speed=8.0))
    assert info["outcome"] == "collision"
    assert info["infraction_counts"]["collision_pedestrian"] == 1


def test_running_a_red_light_and_stopping_for_it():
    env = make_env(INTERSECTION)
    env.reset(seed=2)
    u = env.unwrapped
    light = u.net.lights[u.net.lanes[u.route.lanes[0]].light]
    red_from = light.start + light.green + light.yellow + 0.05  # red for the next 27 s
    options = {"start_time": red_from, "vehicles": [], "pedestrians": []}
    env.reset(seed=2, options=options)
    assert light.state(u._sim.t) == RED
    info, _, _ = drive(env, lambda e: follow(e, speed=10.0))  # ignores the light
    assert info["infraction_counts"]["red_light"] == 1
    assert info["outcome"] == "route_completed"  # running a light does not end the route
    assert any(e["type"] == "red_light" for e in u._sim.infractions)
    env.reset(seed=2, options=options)
    info, _, _ = drive(env, follow)  # stops at the line, goes on green
    assert info["infraction_counts"]["red_light"] == 0 and info["is_success"]
    assert info["time"] > 20.0


def test_leaving_the_road():
    env = make_env(LANEKEEP)
    env.reset(seed=0)
    info, _, _ = drive(env, lambda e: np.array([-1.0, 0.5]))
    assert info["outcome"] == "off_road"
    assert info["infraction_counts"]["outside_lane"] == 1
    assert info["outside_lane_distance"] > 0
    assert info["reward_terms"]["off_road"] == pytest.approx(-1.0)


def test_route_deviation_ends_the_route():
    env = make_env(LANEKEEP, terminate_off_road=False)
    env.reset(seed=0)
    info, _, _ = drive(env, lambda e: np.array([0.3, 0.5]))
    assert info["outcome"] == "route_deviation"
    assert info["infraction_counts"]["route_deviation"] == 1
    score = episode_score(info)
    assert score.outside_lane_fraction > 0 and score.driving_score < score.route_completion


def test_standing_still_is_agent_blocked():
    env = make_env(LANEKEEP, initial_speed=0.0, blocked_time=5.0)
    env.reset(seed=0)
    info, n, _ = drive(env, lambda e: np.array([0.0, -1.0]))
    assert info["outcome"] == "agent_blocked" and n == 50
    assert info["infraction_counts"]["agent_blocked"] == 1


# --- traffic -------------------------------------------------------------------------------
def test_traffic_keeps_to_red_lights_and_does_not_crash_into_the_ego():
    env = make_env(INTERSECTION, vehicles=10, blocked_time=1e6, initial_speed=0.0)
    env.reset(seed=1)
    u = env.unwrapped
    net, tr = u.net, u._sim.traffic
    passed = 0
    for _ in range(400):
        before = tr.lane.copy()
        env.step(np.array([0.0, -1.0]))  # the ego waits at its start
        tr = u._sim.traffic
        for i in np.flatnonzero(tr.lane != before):
            light = net.lanes[before[i]].light
            if light is not None:
                passed += 1
                assert net.lights[light].state(u._sim.t - u.config.dt) != RED
    assert passed >= 3  # vehicles did go through on green
    assert u._sim.counts["collision_vehicle"] == 0


def test_meta_actions_change_lane_and_speed():
    env = make_env(META, vehicles=0)
    env.reset(seed=0)
    u = env.unwrapped
    lane0 = u._lane.lane
    for _ in range(40):
        env.step(1)  # IDLE
    assert u._lane.lane == lane0
    left_exists = u.net.lanes[lane0].left is not None
    action = 0 if left_exists else 2
    for _ in range(60):
        env.step(action if _ == 0 else 1)
    assert u._lane.lane == (u.net.lanes[lane0].left if left_exists else u.net.lanes[lane0].right)
    assert abs(u._lane.lateral) < 0.5
    v = u._sim.ego.v
    for _ in range(50):
        env.step(3 if _ == 0 else 1)  # FASTER once
    assert u._sim.ego.v > v + 3.0


# --- Stable-Baselines3 -------------------------------------------------------------------------
@pytest.mark.parametrize("env_id", IDS)
def test_sb3_ppo_multi_input_policy_trains_on_every_id(env_id):
    from stable_baselines3 import PPO

    env = make_env(env_id)
    model = PPO(
        "MultiInputPolicy", env, n_steps=32, batch_size=32, n_epochs=1, seed=0, device="cpu"
    )
    model.learn(total_timesteps=64)
    assert model.num_timesteps == 64
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(action)


def test_sb3_ppo_with_the_camera_uses_a_cnn():
    from stable_baselines3 import PPO
    from stable_baselines3.common.torch_layers import NatureCNN

    env = make_env(LANEKEEP, sensors=("state", "camera"), camera={"width": 64, "height": 48})
    model = PPO(
        "MultiInputPolicy", env, n_steps=32, batch_size=32, n_epochs=1, seed=0, device="cpu"
    )
    assert isinstance(model.policy.features_extractor.extractors["camera"], NatureCNN)
    model.learn(total_timesteps=64)
    assert model.num_timesteps == 64


def test_road_meshes_for_the_gui_window_build():
    from pilot.envs.driving.world import _road_meshes

    for env_id in (INTERSECTION, HIGHWAY):
        env = make_env(env_id)
        env.reset(seed=0)
        u = env.unwrapped
        before = u.world.client.getNumBodies()
        bodies = _road_meshes(u.world.client, u.net)  # what gui=True adds per episode
        assert len(bodies) == 1 + len(u.net.lanes)
        assert u.world.client.getNumBodies() == before + len(bodies)
