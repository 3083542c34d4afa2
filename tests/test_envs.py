"""The env contract over every registered pilot id, and the VecEnv semantics agents rely on."""

import os
import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from pilot.envs import DESCRIPTIONS, make_env, make_vec_env
from pilot.envs.vector import SyncVecEnv
from pilot.errors import UserError

IDS = sorted(DESCRIPTIONS)


def test_every_description_is_a_registered_id_with_a_time_limit():
    assert IDS
    for env_id in IDS:
        spec = gym.spec(env_id)
        assert isinstance(spec.entry_point, str), f"{env_id} must use a string entry point"
        assert spec.max_episode_steps, f"{env_id} needs max_episode_steps"


@pytest.mark.parametrize("env_id", IDS)
def test_gymnasium_and_sb3_check_env(env_id):
    env = gym.make(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("error", category=UserWarning)  # a checker warning is a failure
        gym_check_env(env.unwrapped)
        sb3_check_env(env.unwrapped, warn=True)
    env.close()


#: every Atari id shares one entry point, wrappers and time limit: one stands for all
WRAPPED_IDS = [i for i in IDS if not i.startswith("pilot/Atari-")] + ["pilot/Atari-Pong-v0"]


@pytest.mark.parametrize("env_id", WRAPPED_IDS)
def test_check_env_through_gym_make_with_its_wrappers(env_id):
    """Users get the env from ``gym.make``: its time limit and checkers must pass too (a
    limit equal to a terminating episode's length truncates the terminating step). The
    render modes were checked above on the same spec, so they are skipped here."""
    env = gym.make(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("error", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*is different from the unwrapped")
        gym_check_env(env, skip_render_check=True)
        sb3_check_env(env, warn=True)
    env.close()


@pytest.mark.parametrize("env_id", IDS)
def test_same_seed_same_actions_same_trajectory(env_id):
    def rollout():
        env = make_env(env_id)
        env.action_space.seed(7)
        obs, _ = env.reset(seed=123)
        traj = [_copy(obs)]
        rewards = []
        for _ in range(60):
            obs, r, term, trunc, _ = env.step(env.action_space.sample())
            traj.append(_copy(obs))
            rewards.append(r)
            if term or trunc:
                obs, _ = env.reset()
                traj.append(_copy(obs))
        env.close()
        return traj, rewards

    def same(x, y) -> bool:
        if isinstance(x, dict):
            return x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x)
        return np.array_equal(x, y)

    (a, ra), (b, rb) = rollout(), rollout()
    assert ra == rb
    assert all(same(x, y) for x, y in zip(a, b, strict=True))


def _copy(obs):
    if isinstance(obs, dict):
        return {k: np.array(v, copy=True) for k, v in obs.items()}
    return np.array(obs, copy=True)


def test_unknown_env_and_bad_kwargs_are_user_errors():
    with pytest.raises(UserError, match="did you mean: .*CartPole-v1"):
        make_env("CartPole-v0x")
    with pytest.raises(UserError, match="bad options"):
        make_env("CartPole-v1", no_such_option=3)


def test_sync_vec_env_same_step_autoreset_and_final_obs():
    vec = make_vec_env("pilot/Probe-Discount-v0", 3, seed=0)
    obs = vec.reset()
    assert obs.shape == (3, 1) and np.all(obs == 0)
    obs, rew, term, trunc, info = vec.step(np.zeros(3, dtype=np.int64))
    assert np.all(obs == 1) and np.all(rew == 0) and not term.any() and not info.final_obs
    obs, rew, term, trunc, info = vec.step(np.zeros(3, dtype=np.int64))
    assert np.all(term) and np.all(rew == 1)
    assert np.all(obs == 0), "same-step autoreset returns the next episode's first obs"
    assert sorted(info.final_obs) == [0, 1, 2] and all(info.final_obs[i][0] == 2 for i in range(3))
    assert [(e.env_index, e.ret, e.length) for e in info.episodes] == [
        (0, 1.0, 2),
        (1, 1.0, 2),
        (2, 1.0, 2),
    ]


def test_sync_vec_env_truncation_is_reported_apart_from_termination():
    vec = make_vec_env("pilot/Probe-Identity-v0", 2, seed=0)
    vec.reset()
    for _ in range(10):
        obs, rew, term, trunc, info = vec.step(np.zeros(2, dtype=np.int64))
    assert not term.any() and trunc.all() and len(info.episodes) == 2
    assert all(e.length == 10 for e in info.episodes)


class _Lives(gym.Env):
    """Three 'lives' of two steps each, reward 5 per step, episodic-life style info."""

    observation_space = gym.spaces.Box(0, 1, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        if getattr(self, "lives", 0) == 0:
            self.lives, self.t = 3, 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.t += 1
        lost = self.t % 2 == 0
        if lost:
            self.lives -= 1
        return np.zeros(1, np.float32), 5.0, lost, False, {"game_over": self.lives == 0}


def test_sync_vec_env_counts_whole_games_and_clips_only_training_rewards():
    vec = SyncVecEnv([_Lives], seed=0, clip_reward=True)
    vec.reset()
    episodes, rewards, terms = [], [], 0
    for _ in range(6):
        _, r, term, _, info = vec.step(np.zeros(1, dtype=np.int64))
        rewards.append(float(r[0]))
        terms += int(term[0])
        episodes += info.episodes
    assert rewards == [1.0] * 6, "training rewards are clipped to their sign"
    assert terms == 3, "each life loss ends a training episode"
    assert [(e.ret, e.length) for e in episodes] == [(30.0, 6)], (
        "statistics count the whole game, unclipped"
    )


def _run_python(code: str, **env_extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **env_extra}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )


def test_driving_world_prints_nothing_to_stderr():
    """pybullet's C code prints its build time at import; every driving command showed it."""
    done = _run_python(
        "import gymnasium as gym, pilot.envs, pilot.envs.driving.world\n"
        "env = gym.make('pilot/Driving-LaneKeep-v0')\n"
        "env.reset(seed=0); env.step(env.action_space.sample()); env.close()\n"
        "print('stepped')\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "stepped\n"
    assert done.stderr == ""


def test_pybullet_import_keeps_other_stderr_output(tmp_path):
    """Only the build-time line is dropped: anything else printed during the import (here
    by a stand-in module on fd 2, as the C code writes) still reaches stderr, in order."""
    (tmp_path / "pybullet.py").write_text(
        "import os\n"
        "os.write(2, b'warning one\\npybullet build time: Jan 1 2025\\nwarning two\\n')\n"
        "VALUE = 42\n"
    )
    done = _run_python(
        "from pilot.envs.driving import import_pybullet_quietly\n"
        "import sys\n"
        "print('before', file=sys.stderr, flush=True)\n"
        "print(import_pybullet_quietly().VALUE)\n"
        "print('after', file=sys.stderr)\n",
        PYTHONPATH=str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "42\n"
    assert done.stderr == "before\nwarning one\nwarning two\nafter\n"
