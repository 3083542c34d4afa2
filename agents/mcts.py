"""AlphaZero-style MCTS: self-play with tree search through the true simulator, and a
policy/value network trained on what the search found.

The loop reads top to bottom:

1. **search** — every env of the batch is a tree; :func:`~pilot.agents.search.search`
   plans from the envs' state snapshots (one network call per simulation for all trees);
2. **act** — play the search's action (PUCT: sampled from the visit counts with a
   temperature for the first ``explore_moves`` moves of an episode; Gumbel: the
   sequential-halving winner, already a sample);
3. **targets** — each step stores ``(observation, search policy, n-step return)`` where
   the return bootstraps from the search's root value ``n_step`` moves later (zero after
   a termination, the network's value of the final observation after a truncation);
4. **update** — minibatches from the replay: cross-entropy to the search policy plus
   ``value_coef`` × squared error to the return;
5. **log** — episodes, losses, simulator steps.

``self.step`` counts real env steps (summed over envs), as for every agent; the simulator
steps spent inside the searches are logged as ``search/simulator_steps``.

Planning needs discrete actions and an env with ``get_state``/``set_state``
(navigation, Atari; see :mod:`pilot.agents.search.models`).
"""

from __future__ import annotations

import dataclasses
from collections import deque
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from pilot.envs import is_atari, make_vec_env
from pilot.envs.vector import SyncVecEnv, index_obs, stack_obs
from pilot.errors import TrainingDiverged, UserError

from .base import Agent
from .common.networks import to_tensor
from .common.policies import ActorCritic
from .common.rollout import alloc_obs, map_obs, put_obs
from .configs import MCTSConfig
from .search import NetworkEvaluator, Root, SimulatorModel, search, snapshot_env

Obs = Any


class SearchReplay:
    """Ring buffer of (observation, search policy, return) for the network updates."""

    def __init__(self, capacity: int, space: gym.Space, num_actions: int) -> None:
        self.capacity, self.size, self.pos = capacity, 0, 0
        self.obs: Any = alloc_obs(space, (capacity,))
        self.policy = np.zeros((capacity, num_actions), np.float32)
        self.ret = np.zeros(capacity, np.float32)

    def add(self, obs: Obs, policy: np.ndarray, ret: float) -> None:
        i = self.pos
        put_obs(self.obs, i, obs)
        self.policy[i], self.ret[i] = policy, ret
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, n: int, rng: np.random.Generator) -> tuple[Obs, np.ndarray, np.ndarray]:
        idx = rng.integers(self.size, size=n)
        return map_obs(lambda v: v[idx], self.obs), self.policy[idx], self.ret[idx]


class MCTS(Agent):
    name = "mcts"
    summary = "AlphaZero-style MCTS: PUCT/Gumbel search through the simulator + policy/value net"
    Config = MCTSConfig
    #: ``act`` plans from the envs' states: callers pass the envs (``act(obs, envs=...)``).
    uses_simulator: ClassVar[bool] = True

    def __init__(self, env_id: str, config: MCTSConfig | None = None, **kwargs: Any) -> None:
        super().__init__(env_id, config, **kwargs)
        cfg = self.config
        self.num_actions = int(self.action_space.n)
        self.net = ActorCritic(
            self.observation_space, self.action_space, cfg.hidden, cfg.activation
        ).to(self.device)
        self.optimizer = torch.optim.AdamW(
            self.net.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay
        )
        self.evaluator = NetworkEvaluator(self.net.policy_value, self.device)
        self.last_search = None  # the latest act() search, for watch's overlay

    def check_env(self, env: gym.Env) -> None:
        """Search needs discrete actions and state snapshots of the simulator."""
        if not isinstance(env.action_space, gym.spaces.Discrete):
            raise UserError(f"mcts needs discrete actions; {self.env_id} has {env.action_space}")
        try:
            snapshot_env(env)
        except TypeError as exc:
            raise UserError(f"mcts cannot plan in {self.env_id}: {exc}") from None

    def modules(self) -> dict[str, nn.Module]:
        return {"net": self.net}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"optimizer": self.optimizer}

    # --- playing -----------------------------------------------------------------------------
    def _search(
        self,
        obs: Obs,
        model: SimulatorModel,
        explore: bool,
        simulations: int | None = None,
        previous=None,
    ):
        """Search from the envs' current states (planning in the envs themselves), then
        put every env back where it was."""
        states = model.roots()
        logits, values = self.evaluator(obs, states)
        cfg = self.config.search
        if simulations is not None and simulations != cfg.num_simulations:
            cfg = dataclasses.replace(cfg, num_simulations=simulations)
        try:
            return search(
                model,
                self.evaluator,
                Root(logits, values, states),
                cfg,
                self.rng,
                previous,
                explore,
            )
        finally:
            model.restore(states)

    def act(self, obs: Obs, deterministic: bool = True, envs: list[gym.Env] | None = None):
        """Plan from each env's current state and play the search's choice. Without
        ``envs`` (no simulator at hand) the network's policy alone decides."""
        if envs is None:
            return self.net.actions(to_tensor(obs, self.device), self.rng, deterministic)
        model = SimulatorModel(envs, in_place=True)
        out = self._search(obs, model, explore=False, simulations=self.config.eval_simulations)
        self.last_search = out
        if deterministic or self.config.search.root_selection == "gumbel":
            return out.action
        return self._sample(out.action_weights, 1.0)

    def action_scores(self, obs: Obs) -> torch.Tensor:
        """The network's policy logits (the search, which picks the action, is not
        differentiable; its prior is)."""
        return self.net.action_scores(obs)

    def action_distribution(self, obs: Obs) -> np.ndarray | None:
        """The last search's policy (visit counts or Gumbel's improved policy)."""
        if self.last_search is not None:
            return self.last_search.action_weights
        probs = self.net.probs(to_tensor(obs, self.device))
        return None if probs is None else probs.detach().cpu().numpy()

    def _sample(self, weights: np.ndarray, temperature: float) -> np.ndarray:
        w = np.power(np.maximum(weights, 0.0), 1.0 / temperature)
        w = w / w.sum(axis=1, keepdims=True)
        u = self.rng.random((len(w), 1))
        return np.minimum((w.cumsum(axis=1) < u).sum(axis=1), w.shape[1] - 1)

    # --- the training loop ----------------------------------------------------------------
    def _make_envs(self) -> SyncVecEnv:
        """In-process envs (search snapshots each one): Atari through the Gymnasium backend."""
        cfg = self.config
        kwargs = {**cfg.env, "backend": "gym"} if is_atari(self.env_id) else cfg.env
        return make_vec_env(self.env_id, cfg.n_envs, seed=self.seed, training=True, **kwargs)

    def learn(self, total_steps: int, recorder: Any) -> None:
        """Search → act → targets → update → log, until ``self.step`` reaches ``total_steps``."""
        cfg = self.config
        gamma = cfg.search.discount
        envs = self._make_envs()
        model = SimulatorModel(envs.envs, in_place=True)
        replay = SearchReplay(cfg.buffer_size, self.observation_space, self.num_actions)
        pending: list[deque] = [deque() for _ in range(envs.num_envs)]
        moves = np.zeros(envs.num_envs, dtype=np.int64)
        obs = envs.reset()
        previous = None
        stats: dict[str, float] = {}
        try:
            while self.step < total_steps:
                out = self._search(obs, model, explore=True, previous=previous)
                actions = out.action
                if cfg.search.root_selection == "puct":
                    early = moves < cfg.explore_moves
                    if early.any():
                        sampled = self._sample(out.action_weights, cfg.temperature)
                        actions = np.where(early, sampled, actions)
                next_obs, rewards, terminated, truncated, info = envs.step(actions)
                self.check_finite(next_obs, rewards)
                done = terminated | truncated
                for i in range(envs.num_envs):
                    pending[i].append(
                        (
                            index_obs(obs, i),
                            out.action_weights[i],
                            float(rewards[i]),
                            float(out.root_value[i]),
                        )
                    )
                    if done[i]:
                        tail = 0.0
                        if truncated[i] and not terminated[i]:
                            tail = self._value(info.final_obs[i])
                        self._flush(pending[i], replay, gamma, tail)
                    elif len(pending[i]) > cfg.n_step:
                        self._emit(pending[i], replay, gamma, cfg.n_step)
                moves = np.where(done, 0, moves + 1)
                previous = (out.tree, actions, ~done) if cfg.reuse_tree else None
                obs = next_obs
                self.step += envs.num_envs
                if info.episodes:
                    recorder.episodes(self.step, info.episodes)

                if self.step >= cfg.learning_starts and replay.size >= cfg.batch_size:
                    for _ in range(cfg.updates_per_step):
                        stats = self._update(replay)
                if self.log_due(envs.num_envs) and stats:
                    stats["search/simulator_steps"] = float(model.steps)
                    stats["search/root_value"] = float(out.root_value.mean())
                    recorder.log(self.step, stats)
                recorder.progress(self.step)
                recorder.maybe_checkpoint(self)
        finally:
            envs.close()

    # --- targets ------------------------------------------------------------------------------
    @staticmethod
    def _emit(queue: deque, replay: SearchReplay, gamma: float, n: int) -> None:
        """The oldest move's n-step return, bootstrapped from the search value n moves on."""
        obs, policy, _, _ = queue[0]
        ret = sum(gamma**k * queue[k][2] for k in range(n)) + gamma**n * queue[n][3]
        replay.add(obs, policy, ret)
        queue.popleft()

    @staticmethod
    def _flush(queue: deque, replay: SearchReplay, gamma: float, tail: float) -> None:
        """An episode ended: every waiting move gets its return up to the end (+ ``tail``,
        the value after a truncation)."""
        ret = tail
        for obs, policy, reward, _ in reversed(queue):
            ret = reward + gamma * ret
            replay.add(obs, policy, ret)
        queue.clear()

    @torch.no_grad()
    def _value(self, obs: Obs) -> float:
        batch = stack_obs([obs], self.observation_space)
        return float(self.net.value(to_tensor(batch, self.device))[0])

    # --- update ---------------------------------------------------------------------------------
    def _update(self, replay: SearchReplay) -> dict[str, float]:
        cfg = self.config
        obs, policy, ret = replay.sample(cfg.batch_size, self.rng)
        log_probs, values = self.net.policy_value(to_tensor(obs, self.device))
        target_pi = torch.as_tensor(policy, device=self.device)
        target_v = torch.as_tensor(ret, device=self.device)
        policy_loss = -(target_pi * log_probs).sum(dim=1).mean()
        value_loss = nn.functional.mse_loss(values, target_v)
        loss = policy_loss + cfg.value_coef * value_loss
        if not torch.isfinite(loss):
            raise TrainingDiverged(f"loss became {loss.item()} at step {self.step}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = nn.utils.clip_grad_norm_(self.net.parameters(), cfg.max_grad_norm)
        self.optimizer.step()
        return {
            "train/policy_loss": policy_loss.item(),
            "train/value_loss": value_loss.item(),
            "train/grad_norm": grad_norm.item(),
        }
