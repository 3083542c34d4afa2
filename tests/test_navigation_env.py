"""Navigation envs: the Gymnasium contract, grid move rules, rewards, the range sensor, map
files, drawing, SB3 compatibility, and (slow) DQN/PPO learning on held-out maps."""

from __future__ import annotations

import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from learning_cases import nav_success, navigation
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import pilot.envs  # noqa: F401 - registers the pilot/... ids
from pilot.envs import make_env
from pilot.envs.navigation import ContinuousNavConfig, GridMap, RewardWeights, maps
from pilot.envs.navigation.geometry import MOVE_NAMES, cast_ray, distance_field
from pilot.envs.navigation.sensors import PoseState, RangeSensor
from pilot.errors import UserError

GRID, CONT = "pilot/Nav-Grid-v0", "pilot/Nav-Continuous-v0"
IDS = [GRID, CONT]
A = {name: i for i, name in enumerate(MOVE_NAMES)}  # grid action by compass name


def grid_map(rows: list[str]) -> GridMap:
    """A map from strings, '@' blocked."""
    return GridMap(np.array([[ch == "@" for ch in row] for row in rows]), "test")


def grid_env(**kwargs) -> gym.Env:
    return make_env(GRID, **kwargs)


# --- contract ------------------------------------------------------------------------------
@pytest.mark.parametrize("env_id", IDS)
@pytest.mark.parametrize("observation", ["flat", "dict"])
def test_gymnasium_and_sb3_check_env_with_rendering(env_id, observation):
    env = make_env(env_id, render_mode="rgb_array", observation=observation)
    with warnings.catch_warnings():
        warnings.simplefilter("error", category=UserWarning)  # a checker warning is a failure
        gym_check_env(env.unwrapped)
        sb3_check_env(env.unwrapped, warn=True)
    env.close()


def test_registration_string_entry_points_and_time_limits():
    from pilot.envs import DESCRIPTIONS

    for env_id, steps in ((GRID, 100), (CONT, 400)):
        spec = gym.spec(env_id)
        assert isinstance(spec.entry_point, str) and spec.max_episode_steps == steps
        assert env_id in DESCRIPTIONS
    env = make_env(GRID)
    env.reset(
        seed=0, options={"map": grid_map(["....."]), "start_cell": (0, 0), "goal_cell": (0, 4)}
    )
    steps, term, trunc = 0, False, False
    while not (term or trunc):  # bump into the map's edge until the time limit
        _, _, term, trunc, _ = env.step(A["N"])
        steps += 1
    assert trunc and not term and steps == 100


@pytest.mark.parametrize("env_id", IDS)
def test_same_seed_same_actions_same_observations_rewards_and_maps(env_id):
    def rollout():
        env = make_env(env_id)
        env.action_space.seed(3)
        obs, info = env.reset(seed=42)
        out = [(obs, 0.0, env.unwrapped.grid.blocked.copy())]
        for _ in range(150):
            obs, r, term, trunc, info = env.step(env.action_space.sample())
            out.append((obs, r, info["reward_terms"]))
            if term or trunc:
                obs, _ = env.reset()
                out.append((obs, 0.0, env.unwrapped.grid.blocked.copy()))
        return out

    a, b = rollout(), rollout()
    assert len(a) == len(b)
    for (oa, ra, xa), (ob, rb, xb) in zip(a, b, strict=True):
        np.testing.assert_array_equal(oa, ob)
        assert ra == rb
        if isinstance(xa, dict):
            assert xa == xb
        else:
            np.testing.assert_array_equal(xa, xb)
    other = make_env(env_id)
    other.reset(seed=43)
    assert not np.array_equal(other.unwrapped.grid.blocked, a[0][2]), "seeds pick new maps"


def test_unknown_option_is_a_user_error_naming_close_matches():
    with pytest.raises(UserError, match="did you mean: density"):
        make_env(GRID, densty=0.3)
    with pytest.raises(UserError, match="reward"):
        make_env(GRID, reward="dense")


# --- grid rules --------------------------------------------------------------------------
def test_no_corner_cutting_and_bumps_leave_the_robot_in_place():
    m = grid_map(
        [
            ".@.",
            "...",
            "...",
        ]
    )
    env = grid_env()
    env.reset(seed=0, options={"map": m, "start_cell": (0, 0), "goal_cell": (2, 2)})
    u = env.unwrapped

    def move(name):
        obs, r, term, trunc, info = env.step(A[name])
        return info

    info = move("SE")  # squeezes past the blocked (0, 1): corner cutting, refused
    assert u.cell == (0, 0) and info["collision"] and info["reward_terms"]["collision"] < 0
    info = move("N")  # off the map
    assert u.cell == (0, 0) and info["collision"]
    info = move("E")  # into the wall
    assert u.cell == (0, 0) and info["collision"] and info["path_length"] == 0
    info = move("S")
    assert u.cell == (1, 0) and not info["collision"]
    info = move("NE")  # target (0, 1) is blocked
    assert u.cell == (1, 0) and info["collision"]
    info = move("E")
    info = move("NE")  # (0, 2) with (0, 1) blocked on one side: refused
    assert u.cell == (1, 1) and info["collision"]
    info = move("SE")  # both orthogonal neighbours free: allowed, length √2
    assert u.cell == (2, 2) and not info["collision"]
    assert info["path_length"] == pytest.approx(2 + math.sqrt(2))
    assert info["success"]


def test_a_bump_changes_the_observation_through_the_visit_window():
    m = grid_map(["....", "...."])
    env = grid_env()
    obs0, _ = env.reset(seed=0, options={"map": m, "start_cell": (0, 0), "goal_cell": (1, 3)})
    obs1, *_ = env.step(A["N"])
    assert env.unwrapped.cell == (0, 0)
    assert not np.array_equal(obs0, obs1), "the visit count of the robot's cell went up"
    plain = grid_env(visits=False)
    p0, _ = plain.reset(seed=0, options={"map": m, "start_cell": (0, 0), "goal_cell": (1, 3)})
    p1, *_ = plain.step(A["N"])
    np.testing.assert_array_equal(p0, p1)


def test_observation_window_and_goal_vector_layout():
    m = grid_map(
        [
            "@....",
            ".....",
            "..@..",
        ]
    )
    env = grid_env(observation="dict", view_radius=1)
    obs, _ = env.reset(seed=0, options={"map": m, "start_cell": (1, 1), "goal_cell": (1, 4)})
    np.testing.assert_array_equal(obs["window"], [1, 0, 0, 0, 0, 0, 0, 0, 1])  # row-major
    assert obs["visits"][4] > 0 and obs["visits"].sum() == obs["visits"][4]
    # goal 3 cells east: unit direction (0, 1), offsets clipped to the radius
    # scale: the larger side of the env's configured maps (12), not of this one
    np.testing.assert_allclose(obs["goal"], [0, 1, 3 / 12, 0, 1])
    flat = grid_env(view_radius=1)
    fobs, _ = flat.reset(seed=0, options={"map": m, "start_cell": (1, 1), "goal_cell": (1, 4)})
    np.testing.assert_array_equal(fobs, np.concatenate([obs["window"], obs["visits"], obs["goal"]]))
    obs, _ = env.reset(seed=0, options={"map": m, "start_cell": (0, 4), "goal_cell": (2, 0)})
    np.testing.assert_array_equal(obs["window"], [1, 1, 1, 0, 0, 1, 0, 0, 1])


def test_distance_field_matches_the_planners_on_random_maps():
    from pilot.planning.grid import distance_field as planner_field

    rng = np.random.default_rng(0)
    for _ in range(5):
        m = maps.random_obstacles(15, 17, 0.3, rng)
        goal = tuple(int(v) for v in m.free_cells()[0])
        np.testing.assert_allclose(distance_field(m.blocked, goal), planner_field(m.blocked, goal))


# --- rewards -------------------------------------------------------------------------------
def test_reward_terms_are_weighted_and_sum_to_the_reward():
    weights = RewardWeights(goal=2.0, progress=0.5, step=0.03, collision=0.2)
    env = make_env(GRID, weights=weights)
    env.reset(seed=1)
    env.action_space.seed(1)
    seen = set()
    for _ in range(5000):
        before = env.unwrapped.dist[env.unwrapped.cell]
        _, r, term, trunc, info = env.step(env.action_space.sample())
        terms = info["reward_terms"]
        assert set(terms) == {"goal", "progress", "step", "collision"}
        assert r == sum(terms.values())
        assert terms["step"] == -0.03
        assert terms["progress"] == pytest.approx(0.5 * (before - info["distance"]))
        assert terms["collision"] == (-0.2 if info["collision"] else 0.0)
        assert terms["goal"] == (2.0 if term else 0.0)
        seen |= {k for k, v in terms.items() if v}
        if term or trunc:
            if len(seen) == 4:
                break
            env.reset()
    assert seen == {"goal", "progress", "step", "collision"}


def test_partial_weight_overrides_keep_each_envs_defaults():
    grid = make_env(GRID, weights={"goal": 2.0}).unwrapped.config.weights
    cont = make_env(CONT, weights={"goal": 2.0}).unwrapped.config.weights
    assert grid == RewardWeights(goal=2.0)
    assert cont.goal == 2.0 and cont.progress == ContinuousNavConfig().weights.progress
    with pytest.raises(UserError, match="did you mean: goal"):
        make_env(GRID, weights={"gaol": 2.0})


def test_goal_terminates_and_sparse_keeps_only_the_goal_term():
    m = grid_map(["....."])
    options = {"map": m, "start_cell": (0, 0), "goal_cell": (0, 3)}
    results = {}
    for reward in ("shaped", "sparse"):
        env = grid_env(reward=reward)
        env.reset(seed=0, options=options)
        rewards, terms = [], []
        for a in ("W", "E", "E", "E"):
            _, r, term, trunc, info = env.step(A[a])
            rewards.append(r)
            terms.append(term)
        results[reward] = rewards
        assert terms == [False, False, False, True] and info["success"]
        assert info["path_length"] == 3 and info["optimal_length"] == 3
    w = RewardWeights()
    assert results["sparse"] == [0.0, 0.0, 0.0, w.goal]
    expected = [-w.step - w.collision, *[w.progress - w.step] * 2, w.goal + w.progress - w.step]
    np.testing.assert_allclose(results["shaped"], expected)


def test_start_goal_sampling_respects_min_distance_and_map_kinds():
    for kind in ("random", "rooms", "maze"):
        env = grid_env(map_kind=kind, size=(15, 15), min_distance=6)
        for seed in range(5):
            _, info = env.reset(seed=seed)
            assert 6 <= info["optimal_length"] < math.inf
            assert env.unwrapped.grid.blocked.shape == (15, 15)
    with pytest.raises(UserError, match="no start/goal pair"):
        grid_env(size=(3, 3), density=0.0, min_distance=50).reset(seed=0)


# --- map files -----------------------------------------------------------------------------
MAP = """type octile
height 4
width 6
map
......
.@@@..
......
@.....
"""


def test_map_and_scen_files_drive_the_episodes(tmp_path):
    (tmp_path / "room.map").write_text(MAP)
    m = maps.load_map(tmp_path / "room.map")
    scen = [
        maps.Scenario(0, "room.map", 6, 4, 0, 0, 5, 3, 0.0),  # x = col, y = row
        maps.Scenario(0, "room.map", 6, 4, 1, 3, 4, 0, 0.0),
    ]
    maps.save_scen(scen, tmp_path / "room.scen")
    env = grid_env(map_file=tmp_path / "room.map", scen_file=str(tmp_path / "room.scen"))
    _, info = env.reset(seed=0, options={"scenario": 1})
    assert info["cell"] == (3, 1) and info["goal"] == (0, 4)
    np.testing.assert_array_equal(env.unwrapped.grid.blocked, m.blocked)
    starts = {env.reset()[1]["cell"] for _ in range(20)}
    assert starts == {(0, 0), (3, 1)}, "episodes draw the file's queries"
    cont = make_env(CONT, map_file=str(tmp_path / "room.map"), min_distance=3)
    _, info = cont.reset(seed=0)
    assert info["optimal_length"] >= 3 and cont.unwrapped.grid.blocked.shape == (4, 6)


def test_malformed_files_are_user_errors_naming_the_line(tmp_path):
    bad = tmp_path / "bad.map"
    bad.write_text(MAP.replace(".@@@..", ".@@X.."))
    with pytest.raises(UserError, match=r"bad\.map, line 6: unknown terrain"):
        grid_env(map_file=str(bad))
    with pytest.raises(UserError, match="not found"):
        grid_env(map_file=str(tmp_path / "missing.map"))
    (tmp_path / "room.map").write_text(MAP)
    (tmp_path / "wrong.scen").write_text("version 1\n0\troom.map\t6\t4\t1\t1\t0\t0\t1.0\n")
    with pytest.raises(UserError, match="line 2: start .* blocked"):
        grid_env(map_file=str(tmp_path / "room.map"), scen_file=str(tmp_path / "wrong.scen"))


# --- continuous robot and its range sensor ------------------------------------------------
def test_range_sensor_measures_known_distances():
    blocked = np.zeros((7, 9), dtype=bool)
    blocked[:, 6] = True  # a wall whose west face is at x = 6
    m = GridMap(blocked)
    sensor = RangeSensor(n_rays=4, max_range=10.0)  # rays at 0, 90, 180, 270 degrees
    ranges = sensor.ranges(PoseState(m, (2.5, 3.25, 0.0), (0.0, 0.0)))
    # east to the wall, +y to the map edge at y = 7, west to x = 0, -y to y = 0
    np.testing.assert_allclose(ranges, [3.5, 3.75, 2.5, 3.25], atol=1e-9)
    # a ray at 45 degrees from (1, 1) in an open map ends in the corner (7, 7)
    assert cast_ray(np.zeros((7, 7), bool), 1.0, 1.0, math.pi / 4, 20.0) == pytest.approx(
        6 * math.sqrt(2), abs=1e-9
    )
    # cap at max range, and heading matters: yaw 90 degrees turns ray 0 to +y
    short = RangeSensor(n_rays=4, max_range=3.0)
    obs = short.observe(PoseState(m, (2.5, 3.25, math.pi / 2), (0.0, 0.0)))
    np.testing.assert_allclose(obs, [1.0, 2.5 / 3.0, 1.0, 1.0], atol=1e-6)


def test_continuous_robot_stops_at_walls_and_reaches_the_goal():
    blocked = np.zeros((5, 8), dtype=bool)
    blocked[:, 5] = True
    blocked[0, 5] = False  # a gap at the top to keep the goal reachable
    m = GridMap(blocked)
    env = make_env(CONT, robot_radius=0.25, dt=0.2, max_speed=1.0)
    _, info = env.reset(
        seed=0,
        options={
            "map": m,
            "start_cell": (2, 1),
            "goal_cell": (0, 7),
            "start_pose": (1.5, 2.5, 0.0),
        },
    )
    assert info["pose"].tolist() == [1.5, 2.5, 0.0]
    hit = None
    for _ in range(30):
        obs, r, term, _, info = env.step(np.array([1.0, 0.0], np.float32))
        if info["collision"]:
            hit = info
            break
    assert hit is not None and not term
    assert obs[-3:].tolist() == [1.0, 0.0, 1.0], "odometry: last command, collided"
    x = hit["pose"][0]
    assert 5.0 - 0.25 - 0.05 <= x <= 5.0 - 0.25 + 1e-9, "stops within one sub-step of touching"
    weights = env.unwrapped.config.weights
    assert weights == ContinuousNavConfig().weights != RewardWeights(), "its own defaults"
    assert hit["reward_terms"]["collision"] == -weights.collision
    assert r == sum(hit["reward_terms"].values())
    _, _, _, _, again = env.step(np.array([1.0, 0.0], np.float32))
    assert again["collision"] and again["pose"][0] == x
    # near the goal, facing it: a few steps end the episode
    env.reset(
        seed=0,
        options={
            "map": m,
            "start_cell": (0, 6),
            "goal_cell": (0, 7),
            "start_pose": (6.5, 0.5, 0.0),
        },
    )
    for _ in range(5):
        _, r, term, _, info = env.step(np.array([1.0, 0.0], np.float32))
        if term:
            break
    assert term and info["success"] and info["reward_terms"]["goal"] == weights.goal
    assert math.hypot(info["pose"][0] - 7.5, info["pose"][1] - 0.5) <= 0.5


def test_continuous_progress_tracks_the_shortest_path_distance():
    env = make_env(CONT)
    _, info = env.reset(seed=5)
    start = info["distance"]
    assert start == pytest.approx(info["optimal_length"])
    total = 0.0
    for _ in range(3):  # turning in place moves nothing
        _, _, _, _, info = env.step(np.array([0.0, 1.0], np.float32))
        total += info["reward_terms"]["progress"]
    assert total == 0.0 and info["distance"] == start


# --- drawing ---------------------------------------------------------------------------------
@pytest.mark.parametrize("env_id", IDS)
def test_rgb_frames_show_the_map_robot_goal_and_overlay(env_id):
    env = make_env(env_id, render_mode="rgb_array")
    env.reset(seed=0)
    env.action_space.seed(0)
    for _ in range(5):
        env.step(env.action_space.sample())
    frame = env.render()
    h, w = env.unwrapped.grid.blocked.shape
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    assert min(frame.shape[:2]) >= 256 and frame.shape[0] * w == frame.shape[1] * h
    colours = {tuple(c) for c in frame.reshape(-1, 3)[::7].tolist()}
    assert len(colours) >= 4, "map, robot, goal and trail in distinct colours"
    green = (frame[..., 1] > 150) & (frame[..., 0] < 80)
    red = (frame[..., 0] > 180) & (frame[..., 1] < 80)
    assert green.any() and red.any()
    path = [(0, 0), (h - 1, w - 1)] if env_id == GRID else [(0.5, 0.5), (w - 0.5, h - 0.5)]
    env.unwrapped.overlay_path = path
    with_path = env.render()
    assert (with_path != frame).any(), "the overlay path is drawn"
    env.reset(seed=0, options={"path": None})
    assert env.unwrapped.overlay_path is None
    plain = make_env(env_id)
    plain.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode"):
        assert plain.render() is None  # no render mode: a warning, no frame


# --- Stable-Baselines3 ----------------------------------------------------------------------
@pytest.mark.parametrize("env_id", IDS)
@pytest.mark.parametrize("policy", ["MlpPolicy", "MultiInputPolicy"])
def test_sb3_ppo_trains_without_adapters(env_id, policy):
    from stable_baselines3 import PPO

    kwargs = {"observation": "dict"} if policy == "MultiInputPolicy" else {}
    env = make_env(env_id, **kwargs)
    model = PPO(policy, env, n_steps=128, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(256)
    assert model.num_timesteps == 256
    obs, _ = env.reset(seed=1)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(action if env_id == CONT else int(action))


# --- learning on held-out maps (slow) --------------------------------------------------------
# Training maps come from the envs' own generators (seeded by the agent seed); evaluation
# resets with seeds from a disjoint range, so every evaluation map is new to the agent.
# Greedy success on these held-out maps with the presets (12 x 12 random maps, density
# 0.2), agent seeds 0-9 (`python bench/learning_seeds.py 'nav-*'`, 2 cores; DQN on an AMD
# EPYC, PPO on an Intel Xeon; the functions are in learning_cases.py):
#
# | env, agent | random policy | untrained greedy | trained greedy, seeds 0-9 | steps |
# |---|---|---|---|---|
# | Nav-Grid, DQN | 0.195 | 0.00-0.015 | 0.885-0.965, median 0.93 | 80k |
# | Nav-Grid, PPO | 0.195 | 0.00 | 0.97-1.00 | 100k |
# | Nav-Continuous, PPO | 0.00 | 0.00 | 0.68-0.79 | 150k |
#
# With learning off (lr 0) every agent stays at its untrained success. The bars sit below
# the worst seed with a margin.


def test_random_policies_rarely_reach_the_goal():
    """The "before" of the learning tests: uniform random actions on the held-out maps."""
    rng = np.random.default_rng(0)

    def speeds(obs: np.ndarray, envs: list) -> np.ndarray:
        return rng.uniform(-1, 1, (len(obs), 2)).astype(np.float32)

    assert nav_success(lambda obs, envs: rng.integers(8, size=len(obs)), GRID, 200) <= 0.3
    assert nav_success(speeds, CONT, 20) <= 0.1


@pytest.mark.slow
@pytest.mark.parametrize(
    ("env_id", "algo", "bar", "n"),
    [(GRID, "dqn", 0.8, 200), (GRID, "ppo", 0.9, 200), (CONT, "ppo", 0.55, 100)],
)
def test_agents_learn_to_navigate_held_out_maps(env_id, algo, bar, n):
    out = navigation(env_id, algo, n)
    assert out["before"] <= 0.3
    assert out["after"] >= bar
