"""Every probe id passes Gymnasium's and SB3's checkers as users make it: through
``gym.make`` with its wrappers (time limit included), not only unwrapped."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import pilot.envs  # noqa: F401  (registers the ids)
from pilot.envs import make_env
from pilot.errors import UserError

PROBE_IDS = sorted(i for i in gym.registry if i.startswith("pilot/Probe-"))


def test_probes_are_registered():
    assert len(PROBE_IDS) == 5


def _checked(env):
    """Run both checkers with every warning an error, except Gymnasium's note that a
    wrapped env is not the unwrapped one (checking the wrapped env is the point here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message=".*is different from the unwrapped")
        gym_check_env(env)
        sb3_check_env(env, warn=True)


@pytest.mark.parametrize("env_id", PROBE_IDS)
def test_check_env_unwrapped_and_through_gym_make(env_id):
    _checked(gym.make(env_id).unwrapped)
    _checked(gym.make(env_id))


@pytest.mark.parametrize("env_id", PROBE_IDS)
def test_terminated_and_truncated_never_together(env_id):
    env = gym.make(env_id)
    env.action_space.seed(0)
    env.reset(seed=0)
    ends = 0
    for _ in range(40):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        assert not (terminated and truncated), "the time limit cut the terminating step"
        if terminated or truncated:
            ends += 1
            env.reset()
    assert ends >= 4


def test_episode_lengths_and_end_kinds():
    """One-step probes terminate at step 1, Discount at 2; Identity is truncated at 10."""
    expect = {
        "pilot/Probe-Constant-v0": (1, "terminated"),
        "pilot/Probe-ObsReward-v0": (1, "terminated"),
        "pilot/Probe-ContinuousTarget-v0": (1, "terminated"),
        "pilot/Probe-Discount-v0": (2, "terminated"),
        "pilot/Probe-Identity-v0": (10, "truncated"),
    }
    assert sorted(expect) == PROBE_IDS
    for env_id, (length, kind) in expect.items():
        env = gym.make(env_id)
        env.reset(seed=0)
        steps, terminated, truncated = 0, False, False
        while not (terminated or truncated) and steps < 100:
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            steps += 1
        assert steps == length, env_id
        assert (terminated, truncated) == (kind == "terminated", kind == "truncated"), env_id


@pytest.mark.parametrize("env_id", PROBE_IDS)
@pytest.mark.parametrize("mode", ["rgb_array", "human", "ansi"])
def test_unsupported_render_mode_is_refused_when_made(env_id, mode):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gym.make's own note about the unknown mode
        with pytest.raises(UserError, match=f"render_mode must be None, got '{mode}'"):
            gym.make(env_id, render_mode=mode)


@pytest.mark.parametrize("env_id", PROBE_IDS)
def test_make_env_refuses_the_render_mode_before_gymnasium_warns(env_id):
    """The CLI's path: one error naming the env, and no Gymnasium warning before it (a
    warning would turn `pilot watch` on a probe run into three lines on stderr)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UserError, match=f"{env_id} cannot render as 'rgb_array'; .* none"):
            make_env(env_id, render_mode="rgb_array")


def test_make_env_keeps_render_modes_that_exist():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = make_env("CartPole-v1", render_mode="rgb_array")
        env.reset(seed=0)
        assert env.render().shape[2] == 3
    with pytest.raises(UserError, match="CartPole-v1 cannot render as 'ansi'; .*human, rgb_array"):
        make_env("CartPole-v1", render_mode="ansi")


def test_watch_on_a_probe_run_is_one_line(tmp_path, capsys):
    from pilot import cli

    argv = ["train", "ppo", "--env", "pilot/Probe-Constant-v0", "--steps", "8"]
    assert cli.main([*argv, "--no-progress", "--runs-dir", str(tmp_path)]) == 0
    (run,) = tmp_path.iterdir()
    capsys.readouterr()
    assert cli.main(["watch", str(run), "--out", str(tmp_path / "v.mp4")]) == 2
    err = capsys.readouterr().err
    assert err == (
        "pilot: error: pilot/Probe-Constant-v0 cannot render as 'rgb_array'; "
        "its render modes: none (it draws nothing)\n"
    )


@pytest.mark.parametrize("env_id", PROBE_IDS)
def test_no_render_mode_is_fine(env_id):
    env = gym.make(env_id, render_mode=None)
    obs, _ = env.reset(seed=3)
    assert env.observation_space.contains(obs)
    assert np.isfinite(env.step(env.action_space.sample())[1])
