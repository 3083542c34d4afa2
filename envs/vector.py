"""The batched-env contract every agent trains on, and a synchronous implementation.

Why our own instead of ``gymnasium.vector``: agents need three things on every step, the
same for Gymnasium envs and for ALE's C++ ``AtariVectorEnv``:

* same-step autoreset (the returned observation of a finished env is the first one of its
  next episode) with the *final* observation kept aside, so TD/GAE targets can bootstrap
  on truncation;
* finished-episode statistics in the **real** score (unclipped rewards, whole games even
  when training ends an "episode" at each life loss);
* rewards optionally clipped for training only.

:class:`VecEnv` states that contract; :class:`SyncVecEnv` runs Gymnasium envs in-process
(the fastest choice for cheap envs such as CartPole on two cores).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

Obs = Any  # np.ndarray of shape (num_envs, *obs_shape), or dict[str, np.ndarray] for Dict spaces


@dataclass
class Episode:
    """One finished episode in the real score (what evaluation and logs report);
    ``success`` is the env's own verdict where it has one (see :func:`episode_success`)."""

    env_index: int
    ret: float
    length: int
    success: bool | None = None


def episode_success(info: dict) -> bool | None:
    """The env's verdict on an episode from its last ``info``: ``success`` (navigation) or
    ``is_success`` (driving; Stable-Baselines3's key); None where the env defines none."""
    flag = info.get("success", info.get("is_success"))
    return None if flag is None else bool(flag)


@dataclass
class StepInfo:
    """Per-step side information of a :class:`VecEnv`.

    ``final_obs`` maps an env index to the last observation of the episode that ended on
    this step (terminated or truncated); the obs returned by ``step`` for that index is
    already the first observation of the next episode. ``episodes`` lists *real* episodes
    that finished (for Atari with episodic life, a game over, not a life loss).
    """

    final_obs: dict[int, Obs] = field(default_factory=dict)
    episodes: list[Episode] = field(default_factory=list)


class VecEnv(Protocol):
    """Batched environments with same-step autoreset (see module docstring)."""

    num_envs: int
    single_observation_space: gym.Space
    single_action_space: gym.Space

    def reset(self) -> Obs:
        """Reset all envs (seeded once at construction) and return the batched observation."""

    def step(self, actions: np.ndarray) -> tuple[Obs, np.ndarray, np.ndarray, np.ndarray, StepInfo]:
        """Returns obs, rewards (float32), terminated (bool), truncated (bool), StepInfo."""

    def close(self) -> None: ...


def stack_obs(items: Sequence[Obs], space: gym.Space) -> Obs:
    """Stack single observations into a batch (dict-aware)."""
    if isinstance(space, gym.spaces.Dict):
        return {k: np.stack([o[k] for o in items]) for k in space.spaces}
    return np.stack(items)


def index_obs(batch: Obs, i: int) -> Obs:
    """Observation ``i`` of a batch (dict-aware)."""
    if isinstance(batch, dict):
        return {k: v[i] for k, v in batch.items()}
    return batch[i]


class SyncVecEnv:
    """Runs ``len(env_fns)`` Gymnasium envs one after another in this process.

    Env ``i`` is seeded with ``seed + i`` at the first reset; later resets draw from the
    env's own generator, so a run is reproducible from ``seed`` alone. An env may report
    ``info["game_over"] = False`` on a terminated step (a life loss under episodic life) so
    that the episode statistics keep adding up until the real game ends.
    """

    def __init__(
        self,
        env_fns: Sequence[Callable[[], gym.Env]],
        seed: int,
        clip_reward: bool = False,
    ) -> None:
        self.envs = [fn() for fn in env_fns]
        self.num_envs = len(self.envs)
        self.single_observation_space = self.envs[0].observation_space
        self.single_action_space = self.envs[0].action_space
        self.seed = seed
        self.clip_reward = clip_reward
        self._returns = np.zeros(self.num_envs, dtype=np.float64)
        self._lengths = np.zeros(self.num_envs, dtype=np.int64)
        self._seeded = False

    def reset(self) -> Obs:
        obs = []
        for i, env in enumerate(self.envs):
            o, _ = env.reset(seed=None if self._seeded else self.seed + i)
            obs.append(o)
        self._seeded = True
        self._returns[:] = 0
        self._lengths[:] = 0
        return stack_obs(obs, self.single_observation_space)

    def step(self, actions: np.ndarray):
        n = self.num_envs
        obs_list = []
        rewards = np.zeros(n, dtype=np.float32)
        terminated = np.zeros(n, dtype=bool)
        truncated = np.zeros(n, dtype=bool)
        info = StepInfo()
        for i, env in enumerate(self.envs):
            o, r, term, trunc, env_info = env.step(actions[i])
            self._returns[i] += r
            self._lengths[i] += 1
            rewards[i] = r
            terminated[i] = term
            truncated[i] = trunc
            if term or trunc:
                info.final_obs[i] = o
                if trunc or env_info.get("game_over", True):
                    info.episodes.append(
                        Episode(
                            i,
                            float(self._returns[i]),
                            int(self._lengths[i]),
                            episode_success(env_info),
                        )
                    )
                    self._returns[i] = 0
                    self._lengths[i] = 0
                o, _ = env.reset()
            obs_list.append(o)
        if self.clip_reward:
            rewards = np.sign(rewards).astype(np.float32)
        return (
            stack_obs(obs_list, self.single_observation_space),
            rewards,
            terminated,
            truncated,
            info,
        )

    def close(self) -> None:
        for env in self.envs:
            env.close()
