"""PPO with the multi-input torso learns lane keeping from camera + lidar + state (slow).

The preset for ``pilot/Driving-LaneKeep-v0`` turns the camera on beside the lidar and the
ego state; the policy then has a Nature CNN for the image and MLPs for the vectors. The
test trains it on a reduced budget and checks route completion on held-out routes.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

import pilot.envs  # noqa: F401 - registers the pilot/... ids
from pilot.agents import build_config, env_family
from pilot.agents.common.networks import MultiInputTorso, NatureCNN
from pilot.agents.common.recorder import Recorder
from pilot.agents.ppo import PPO
from pilot.envs import make_env

LANEKEEP = "pilot/Driving-LaneKeep-v0"
# Road networks and routes come from the reset seed; training envs are seeded from the
# agent seed (0, 1, 2, ...), so these routes are new to the agent.
HELD_OUT = range(1_000_000, 1_000_020)


def drive(agent: PPO, seeds: range) -> tuple[float, float, float]:
    """Mean route completion (0..1), mean return and mean speed (m/s) of deterministic
    episodes."""
    env = make_env(LANEKEEP, **agent.config.env)
    completion, returns, speeds = [], [], []
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            action = agent.act({k: v[None] for k, v in obs.items()}, deterministic=True)[0]
            obs, reward, terminated, truncated, info = env.step(action)
            total += float(reward)
            speeds.append(info["speed"])
            done = terminated or truncated
        completion.append(info["route_completion"])
        returns.append(total)
    env.close()
    return float(np.mean(completion)), float(np.mean(returns)), float(np.mean(speeds))


def test_the_driving_preset_feeds_the_camera_to_a_cnn():
    """Every driving id takes the ``driving`` family; LaneKeep's policy sees the camera
    (H x W x 3 uint8) through a Nature CNN and acts on a real observation."""
    from pilot.envs.driving.registration import DRIVING

    assert {env_family(env_id) for env_id in DRIVING} == {"driving"}
    cfg = build_config("ppo", LANEKEEP)
    assert set(cfg.env["sensors"]) == {"camera", "lidar", "state"}
    agent = PPO(LANEKEEP, cfg, seed=0, device="cpu")
    assert isinstance(agent.policy.torso, MultiInputTorso)
    assert isinstance(agent.policy.torso.parts["camera"], NatureCNN)
    env = make_env(LANEKEEP, **cfg.env)
    obs, _ = env.reset(seed=0)
    env.close()
    action = agent.act({k: v[None] for k, v in obs.items()})
    assert action.shape == (1, 2) and np.isfinite(action).all()


# Measured with the preset (64 x 64 camera, 360-ray lidar, ego state) on a reduced budget
# of 24,576 agent steps (24 rollouts of 8 envs x 128 steps), on the 20 held-out routes,
# deterministic actions, one torch thread, both cores busy:
#
# | agent seed | route completion before -> after | return before -> after | training |
# |---|---|---|---|
# | 0 | 0.08 -> 1.00 | -0.9 -> 20.8 | 141 s |
# | 1 | 0.09 -> 1.00 | -0.8 -> 21.6 | 147 s |
# | 2 | 0.09 -> 1.00 | -0.9 -> 22.2 | 130 s |
#
# The untrained policy leaves the road within ~55 steps (every episode ends "off_road");
# every trained seed completes every route. The bars sit well below the
# trained seeds and far above the untrained policy.
@pytest.mark.slow
def test_ppo_learns_lane_keeping_from_camera_lidar_and_state():
    cfg = build_config("ppo", LANEKEEP, overrides={"steps": 24_576})
    assert set(cfg.env["sensors"]) == {"camera", "lidar", "state"}
    torch.set_num_threads(1)
    agent = PPO(LANEKEEP, cfg, seed=0, device="cpu")
    assert isinstance(agent.policy.torso.parts["camera"], NatureCNN)
    before, before_return, _ = drive(agent, HELD_OUT)
    start = time.perf_counter()
    agent.learn(cfg.steps, Recorder(None, cfg.steps))
    elapsed = time.perf_counter() - start
    after, after_return, speed = drive(agent, HELD_OUT)
    print(f"LaneKeep PPO camera+lidar+state: {cfg.steps} steps in {elapsed:.0f} s, route "
          f"completion {before:.2f} -> {after:.2f}, return {before_return:.1f} -> "
          f"{after_return:.1f}, mean speed {speed:.1f} m/s")  # fmt: skip
    assert before <= 0.2
    assert after >= 0.8
    assert after_return >= before_return + 10.0
