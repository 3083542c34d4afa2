"""What the search plans through and how it values leaves.

* :class:`SimulatorModel` — the true simulator: any env whose unwrapped core has
  ``get_state()`` / ``set_state(state)`` (the navigation worlds copy
  their state, Atari uses ALE's ``cloneState``/``restoreState``, the driving world its
  own snapshot of the car, traffic and lights). Restore, step, snapshot. Either one
  scratch env serves every tree (snapshots that travel between envs: navigation, Atari),
  or, ``in_place=True``, each tree plans in its own live env, which :meth:`restore` puts
  back afterwards (snapshots bound to their env and episode: the driving world). A
  learned (MuZero-style) model implements the same ``step``.
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
    for name in ("get_state", "set_state"):
        if not callable(getattr(core, name, None)):
            raise TypeError(
                f"{type(core).__name__} cannot be searched through: it has no {name}() "
                "(the search needs state snapshots of the simulator)"
            )
    return core


class SimulatorModel:
    """Plan through real envs by restoring snapshots: ``step`` restores each state, takes
    the action and snapshots the result.

    ``SimulatorModel(env)``: states are the env's snapshots, restored into ``env`` (a
    scratch copy; the snapshots may come from any env made alike). ``SimulatorModel(envs,
    in_place=True)``: states are ``(i, snapshot)`` pairs, restored into ``envs[i]``; get
    the roots with :meth:`roots` and put the envs back with :meth:`restore` after the
    search. The time limit is not part of the model (a search looks a few steps ahead);
    rewards and terminations are the env's own.
    """

    def __init__(self, env: gym.Env | Sequence[gym.Env], in_place: bool = False) -> None:
        envs = list(env) if in_place else [env]
        space = envs[0].action_space
        if not isinstance(space, gym.spaces.Discrete):
            raise TypeError(f"search needs discrete actions, not {space}")
        self.envs = [snapshot_env(e) for e in envs]
        self.env = self.envs[0]
        self.in_place = in_place
        self.num_actions = int(space.n)
        self.observation_space = envs[0].observation_space
        self.steps = 0  # simulator steps taken, for reporting

    def roots(self) -> list[Any]:
        """The envs' current states (``in_place``), to search from."""
        return [(i, env.get_state()) for i, env in enumerate(self.envs)]

    def restore(self, states: Sequence[Any]) -> None:
        """Put the envs back to ``states`` (``in_place``; e.g. the roots after a search)."""
        for i, state in states:
            self.envs[i].set_state(state)

    def _load(self, state: Any):
        """Restore ``state`` into its env; returns the env and how to tag the next state."""
        if self.in_place:
            i, snap = state
            env = self.envs[i]
            env.set_state(snap)
            return env, i
        self.env.set_state(state)
        return self.env, None

    def step(self, states: Sequence[Any], actions: np.ndarray) -> Transition:
        out_states, observations = [], []
        rewards = np.zeros(len(states), dtype=np.float64)
        terminals = np.zeros(len(states), dtype=bool)
        for k, (state, action) in enumerate(zip(states, actions, strict=True)):
            env, tag = self._load(state)
            obs, r, term, _, _ = env.step(int(action))
            snap = env.get_state()
            out_states.append(snap if tag is None else (tag, snap))
            observations.append(obs)
            rewards[k], terminals[k] = r, term
        self.steps += len(states)
        return Transition(
            out_states, stack_obs(observations, self.observation_space), rewards, terminals
        )

    def rollout_return(
        self, state: Any, depth: int, discount: float, rng: np.random.Generator
    ) -> float:
        """Discounted return of ``depth`` uniformly random actions from ``state``."""
        env, _ = self._load(state)
        total, scale = 0.0, 1.0
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

    @torch.no_grad()
    def __call__(self, observations: Any, states: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        logits, values = self.net(to_tensor(observations, self.device))
        out = torch.cat([logits, values[:, None]], dim=1).double().cpu().numpy()
        return out[:, :-1], out[:, -1]
