"""What the search plans through and how it values leaves.

* :class:`SimulatorModel` — the true simulator: any env whose unwrapped core has
  ``get_state()`` / ``set_state(state)`` / ``observation()`` (the navigation worlds copy
  their state, Atari uses ALE's ``cloneState``/``restoreState``, the driving world
  pybullet's ``saveState``/``restoreState``). One scratch env serves every tree: restore,
  step, snapshot. A learned (MuZero-style) model implements the same ``step``.
* Evaluators turn a batch of leaf observations into prior logits and values:
  :class:`NetworkEvaluator` (one batched forward pass, on the network's device),
  :func:`uniform_evaluator` (uniform prior, zero value: pure search), and
  :class:`RolloutEvaluator` (uniform prior, the return of random rollouts).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from pilot.envs.vector import stack_obs

from ..common.networks import to_tensor
from .core import Transition


def snapshot_env(env: gym.Env) -> gym.Env:
    """The env's core with ``get_state``/``set_state``; a clear error when it has none."""
    core = env.unwrapped
    for name in ("get_state", "set_state", "observation"):
        if not callable(getattr(core, name, None)):
            raise TypeError(
                f"{type(core).__name__} cannot be searched through: it has no {name}() "
                "(the search needs state snapshots of the simulator)"
            )
    return core


class SimulatorModel:
    """Plan through a real env by restoring snapshots: ``step`` restores each state into
    a scratch copy of the env, takes the action and snapshots the result.

    The time limit is not part of the model (a search looks a few steps ahead); rewards
    and terminations are the env's own.
    """

    def __init__(self, env: gym.Env) -> None:
        if not isinstance(env.action_space, gym.spaces.Discrete):
            raise TypeError(f"search needs discrete actions, not {env.action_space}")
        self.env = snapshot_env(env)
        self.num_actions = int(env.action_space.n)
        self.observation_space = env.observation_space
        self.steps = 0  # simulator steps taken, for reporting

    def step(self, states: Sequence[Any], actions: np.ndarray) -> Transition:
        env = self.env
        out_states, observations = [], []
        rewards = np.zeros(len(states), dtype=np.float64)
        terminals = np.zeros(len(states), dtype=bool)
        for i, (state, action) in enumerate(zip(states, actions, strict=True)):
            env.set_state(state)
            obs, r, term, _, _ = env.step(int(action))
            out_states.append(env.get_state())
            observations.append(obs)
            rewards[i], terminals[i] = r, term
        self.steps += len(states)
        return Transition(
            out_states, stack_obs(observations, self.observation_space), rewards, terminals
        )

    def rollout_return(
        self, state: Any, depth: int, discount: float, rng: np.random.Generator
    ) -> float:
        """Discounted return of ``depth`` uniformly random actions from ``state``."""
        env, total, scale = self.env, 0.0, 1.0
        env.set_state(state)
        for _ in range(depth):
            _, r, term, _, _ = env.step(int(rng.integers(self.num_actions)))
            total += scale * float(r)
            scale *= discount
            self.steps += 1
            if term:
                break
        return total


def uniform_evaluator(num_actions: int):
    """Uniform prior and zero value: search guided by rewards alone."""

    def evaluate(observations: Any, states: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        n = len(states)
        return np.zeros((n, num_actions)), np.zeros(n)

    return evaluate


class RolloutEvaluator:
    """Uniform prior; the value of a leaf is the return of one random rollout from it."""

    def __init__(
        self, model: SimulatorModel, depth: int, discount: float, rng: np.random.Generator
    ):
        self.model, self.depth, self.discount, self.rng = model, depth, discount, rng

    def __call__(self, observations: Any, states: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        values = np.array(
            [self.model.rollout_return(s, self.depth, self.discount, self.rng) for s in states]
        )
        return np.zeros((len(states), self.model.num_actions)), values


class NetworkEvaluator:
    """Prior logits and values from a policy/value network, one batched call per use.

    ``net(obs_tensor) -> (logits (n, A), values (n,))``; observations go to ``device``
    and the results come back to numpy in one transfer.
    """

    def __init__(self, net: Callable[[Any], tuple[torch.Tensor, torch.Tensor]], device) -> None:
        self.net, self.device = net, device
        self.calls = 0

    @torch.no_grad()
    def __call__(self, observations: Any, states: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        self.calls += 1
        logits, values = self.net(to_tensor(observations, self.device))
        out = torch.cat([logits, values[:, None]], dim=1).double().cpu().numpy()
        return out[:, :-1], out[:, -1]
