"""On-policy machinery shared by PPO, A2C and REINFORCE: config, buffer, GAE, collection.

The three algorithms differ only in their targets and their update, so everything else
lives here once:

* :class:`PGConfig` / :class:`ActorCriticConfig`: the config fields they share;
* :class:`RolloutBuffer`: (time, env) storage in numpy, dict-aware for multi-sensor
  observations, growing when a rollout runs to the end of episodes (REINFORCE);
* :func:`compute_gae`: advantages and returns that keep ``terminated`` and ``truncated``
  apart (bootstrap on truncation, never on termination);
* :class:`PGAgent`: the policy, ``act``/``action_distribution``, the training loop
  :meth:`PGAgent.learn` (collect → targets → update → log) and the one collection routine
  :meth:`PGAgent.collect`. An algorithm supplies ``update`` and, where they differ from
  GAE over fixed-length rollouts, ``targets`` and ``rollout_length``.

Truncation is handled where the information exists: when an env reports a truncated step,
collection evaluates V on ``StepInfo.final_obs`` (the real last observation; the returned
one already starts the next episode) and stores it as that step's next-state value.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Iterator
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from pilot.envs import make_vec_env
from pilot.envs.vector import StepInfo, VecEnv, stack_obs
from pilot.errors import TrainingDiverged

from ..base import Agent
from ..configs import PGConfig
from .networks import to_tensor
from .policies import ActorCritic, NumpyActorCritic, TorchActing
from .schedules import linear

Obs = Any  # np.ndarray, or dict[str, np.ndarray] for Dict observation spaces


def compute_gae(
    rewards: np.ndarray,
    values: np.ndarray,
    next_values: np.ndarray,
    terminated: np.ndarray,
    truncated: np.ndarray,
    gamma: float,
    lam: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Generalized advantage estimation (Schulman et al. 2016) over (T, N) arrays.

    ``next_values[t]`` is V of the state that follows step t *in the same episode*: V of
    the next observation within a rollout, V(final_obs) on a truncated step, V of the
    observation after the rollout on its last step. Termination zeroes the bootstrap;
    termination and truncation both end the λ-trace, since the next row belongs to another
    episode. ``lam = 1`` gives Monte-Carlo returns over whole episodes.

    Returns ``(advantages, returns)`` with ``returns = advantages + values``.
    """
    nonterminal = 1.0 - terminated.astype(np.float32)
    continues = nonterminal * (1.0 - truncated.astype(np.float32))
    deltas = rewards + gamma * nonterminal * next_values - values
    advantages = np.zeros_like(deltas, dtype=np.float32)
    last = np.zeros(deltas.shape[1:], dtype=np.float32)
    for t in range(deltas.shape[0] - 1, -1, -1):
        last = deltas[t] + gamma * lam * continues[t] * last
        advantages[t] = last
    return advantages, advantages + values


def explained_variance(predicted: np.ndarray, target: np.ndarray) -> float:
    """1 − Var(target − predicted) / Var(target): 1 is a perfect critic, ≤ 0 a useless one.

    Constant targets (a probe env) give 0 rather than NaN, which the recorder would take
    for divergence.
    """
    var = float(np.var(target))
    return 0.0 if var == 0 else 1.0 - float(np.var(target - predicted)) / var


def clip_grad_norm(params: list[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Scale gradients so their global L2 norm is at most ``max_norm``; returns the norm.

    Same result as ``torch.nn.utils.clip_grad_norm_`` in a handful of batched calls: the
    PPO update runs it every minibatch, where the general version's bookkeeping dominates.
    """
    grads = [p.grad for p in params if p.grad is not None]
    norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    torch._foreach_mul_(grads, (max_norm / (norm + 1e-6)).clamp(max=1.0))
    return norm


def map_obs(fn, obs: Obs) -> Obs:
    """``fn`` applied to an observation array, or to each array of a dict observation."""
    return {k: fn(v) for k, v in obs.items()} if isinstance(obs, dict) else fn(obs)


def put_obs(store: Obs, index: Any, obs: Obs) -> None:
    """``store[index] = obs`` for an observation store from :func:`alloc_obs`."""
    if isinstance(store, dict):
        for k, v in obs.items():
            store[k][index] = v
    else:
        store[index] = obs


@dataclasses.dataclass
class Batch:
    """Flat training samples on the agent's device; ``batch[idx]`` selects a minibatch."""

    obs: Any  # torch.Tensor or dict[str, torch.Tensor]
    actions: torch.Tensor
    log_probs: torch.Tensor
    values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor

    def __len__(self) -> int:
        return self.actions.shape[0]

    def minibatches(self, size: int) -> Iterator[Batch]:
        """The batch reshuffled and cut into minibatches of ``size`` (the last may be smaller).

        One gather per field, then contiguous views: cheaper than a gather per minibatch.
        """
        shuffled = self[torch.randperm(len(self), device=self.actions.device)]
        for start in range(0, len(self), size):
            yield shuffled[start : start + size]

    def __getitem__(self, idx: torch.Tensor | slice) -> Batch:
        def pick(v: torch.Tensor) -> torch.Tensor:
            # index_select: advanced indexing of image batches is an order of magnitude slower
            return v[idx] if isinstance(idx, slice) else v.index_select(0, idx)

        return Batch(
            map_obs(pick, self.obs),
            pick(self.actions),
            pick(self.log_probs),
            pick(self.values),
            pick(self.advantages),
            pick(self.returns),
        )


@dataclasses.dataclass
class Rollout:
    """One collected rollout as (T, N, ...) numpy arrays (views into the buffer)."""

    obs: Obs
    actions: np.ndarray
    log_probs: np.ndarray
    values: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    next_values: np.ndarray

    def gae(self, gamma: float, lam: float) -> tuple[np.ndarray, np.ndarray]:
        """:func:`compute_gae` over this rollout: ``(advantages, returns)``."""
        return compute_gae(
            self.rewards,
            self.values,
            self.next_values,
            self.terminated,
            self.truncated,
            gamma,
            lam,
        )

    def first_episode_mask(self) -> np.ndarray:
        """True for each env's steps up to and including the end of its first episode."""
        ends = (self.terminated | self.truncated).astype(np.int64)
        return (np.cumsum(ends, axis=0) - ends) == 0

    def batch(
        self,
        advantages: np.ndarray,
        returns: np.ndarray,
        device: torch.device,
        mask: np.ndarray | None = None,
    ) -> Batch:
        """Flatten time and envs (keeping only ``mask`` when given) into a :class:`Batch`."""

        def flat(x: np.ndarray) -> torch.Tensor:
            x = x[mask] if mask is not None else x.reshape(-1, *x.shape[2:])
            return torch.as_tensor(x).to(device)

        return Batch(
            map_obs(flat, self.obs),
            flat(self.actions),
            flat(self.log_probs),
            flat(self.values),
            flat(advantages),
            flat(returns),
        )


def alloc_obs(space: gym.Space, lead: tuple[int, ...]) -> Obs:
    """Zeroed storage of shape ``lead + space.shape`` (a dict of them for Dict spaces)."""
    if isinstance(space, gym.spaces.Dict):
        return {k: alloc_obs(s, lead) for k, s in space.spaces.items()}
    return np.zeros(lead + space.shape, dtype=space.dtype)


class RolloutBuffer:
    """Preallocated (T, N) storage for one rollout.

    Kept in numpy rather than on the device: each env step writes a few small rows, which
    is cheapest in numpy, and the whole rollout moves to the device once per update.
    ``add`` grows the buffer when full, for rollouts that run until episodes end.
    """

    def __init__(
        self, n_steps: int, n_envs: int, observation_space: gym.Space, action_space: gym.Space
    ) -> None:
        self.observation_space = observation_space
        self.n_envs = n_envs
        self.capacity = n_steps
        lead = (n_steps, n_envs)
        self.obs = alloc_obs(observation_space, lead)
        if isinstance(action_space, gym.spaces.Discrete):
            self.actions = np.zeros(lead, dtype=np.int64)
        else:
            self.actions = np.zeros((*lead, int(np.prod(action_space.shape))), dtype=np.float32)
        self.log_probs = np.zeros(lead, dtype=np.float32)
        self.values = np.zeros(lead, dtype=np.float32)
        self.rewards = np.zeros(lead, dtype=np.float32)
        self.terminated = np.zeros(lead, dtype=bool)
        self.truncated = np.zeros(lead, dtype=bool)
        self.final_values = np.zeros(lead, dtype=np.float32)  # V(final_obs) on truncation
        self.size = 0

    @property
    def full(self) -> bool:
        return self.size == self.capacity

    def _grow(self) -> None:
        def double(x: np.ndarray) -> np.ndarray:
            return np.concatenate([x, np.zeros_like(x)])

        for name in ("actions", "log_probs", "values", "rewards", "terminated", "truncated"):
            setattr(self, name, double(getattr(self, name)))
        self.final_values = double(self.final_values)
        self.obs = map_obs(double, self.obs)
        self.capacity *= 2

    def add(
        self,
        obs: Obs,
        actions: np.ndarray,
        log_probs: np.ndarray,
        values: np.ndarray,
        rewards: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
    ) -> int:
        """Store one step of every env; returns its row index."""
        if self.full:
            self._grow()
        t = self.size
        put_obs(self.obs, t, obs)
        self.actions[t] = actions
        self.log_probs[t] = log_probs
        self.values[t] = values
        self.rewards[t] = rewards
        self.terminated[t] = terminated
        self.truncated[t] = truncated
        self.final_values[t] = 0.0
        self.size = t + 1
        return t

    def finish(self, last_values: np.ndarray) -> Rollout:
        """Close the rollout: ``last_values`` is V of the observation after its last step."""
        T = self.size
        values, terminated, truncated = self.values[:T], self.terminated[:T], self.truncated[:T]
        next_values = np.concatenate([values[1:], last_values[None]])
        next_values = np.where(truncated, self.final_values[:T], next_values)
        next_values = np.where(terminated, 0.0, next_values).astype(np.float32)
        self.size = 0
        return Rollout(
            map_obs(lambda v: v[:T], self.obs),
            self.actions[:T],
            self.log_probs[:T],
            values,
            self.rewards[:T],
            terminated,
            truncated,
            next_values,
        )


class PGAgent(Agent):
    """What PPO, A2C and REINFORCE share: the actor-critic, acting, and collection."""

    Config: ClassVar[type[PGConfig]]

    def __init__(
        self,
        env_id: str,
        config: PGConfig | None = None,
        *,
        seed: int = 0,
        device: str | torch.device = "auto",
    ) -> None:
        super().__init__(env_id, config, seed=seed, device=device)
        cfg = self.config
        self.policy = ActorCritic(
            self.observation_space,
            self.action_space,
            hidden=cfg.hidden,
            activation=cfg.activation,
            shared_torso=cfg.shared_torso,
            log_std_init=cfg.log_std_init,
        ).to(self.device)
        self.optimizer = self.make_optimizer()
        self._params = [p for p in self.policy.parameters() if p.requires_grad]
        self._box = self.action_space if isinstance(self.action_space, gym.spaces.Box) else None

    def make_optimizer(self) -> torch.optim.Optimizer:
        """Adam by default (A2C overrides this to offer RMSprop).

        The fused kernel updates all tensors in one call; with the many small tensors of
        an MLP policy the per-tensor loop of the default kernel costs more than the math.
        """
        return torch.optim.Adam(
            self.policy.parameters(),
            lr=self.config.learning_rate,
            eps=self.config.optimizer_eps,
            fused=True,
        )

    # --- the Agent contract ------------------------------------------------------------
    def modules(self) -> dict[str, nn.Module]:
        return {"policy": self.policy}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"policy": self.optimizer}

    @torch.no_grad()
    def act(self, obs: Obs, deterministic: bool = True) -> np.ndarray:
        actions = self.policy.actions(to_tensor(obs, self.device), self.rng, deterministic)
        return self.env_actions(actions)

    def action_scores(self, obs: Obs) -> torch.Tensor:
        return self.policy.action_scores(obs)

    @torch.no_grad()
    def action_distribution(self, obs: Obs) -> np.ndarray | None:
        probs = self.policy.probs(to_tensor(obs, self.device))
        return None if probs is None else probs.cpu().numpy()

    def env_actions(self, actions: np.ndarray) -> np.ndarray:
        """Policy samples → what the env accepts: Gaussian samples clipped to the bounds.

        Non-finite continuous actions raise :class:`TrainingDiverged` here, before an env
        sees them (a NaN torque would otherwise corrupt the simulation silently).
        """
        if self._box is None:
            return actions
        if not np.isfinite(actions).all():
            raise TrainingDiverged(f"policy produced non-finite actions at step {self.step}")
        actions = np.clip(actions, self._box.low.reshape(-1), self._box.high.reshape(-1))
        return actions.astype(self._box.dtype).reshape(-1, *self._box.shape)

    # --- the training loop -------------------------------------------------------------
    def learn(self, total_steps: int, recorder: Any) -> None:
        """Collect → targets → update → log, until ``self.step`` reaches ``total_steps``."""
        cfg = self.config
        envs = make_vec_env(self.env_id, cfg.n_envs, seed=self.seed, training=True, **cfg.env)
        length = self.rollout_length()
        buffer = RolloutBuffer(
            length or 256, envs.num_envs, envs.single_observation_space, self.action_space
        )
        obs = None
        try:
            while self.step < total_steps:
                start = self.step
                lr = self.anneal_lr(total_steps)
                if obs is None or length is None:
                    obs = envs.reset()  # whole-episode rollouts start every env afresh
                rollout, obs = self.collect(
                    envs, obs, buffer, recorder, until_episode_end=length is None
                )
                advantages, returns, mask = self.targets(rollout)
                batch = rollout.batch(advantages, returns, self.device, mask)
                stats = self.update(batch)
                if self.log_due(self.step - start):
                    stats["train/lr"] = lr
                    stats["train/explained_variance"] = explained_variance(
                        batch.values.cpu().numpy(), batch.returns.cpu().numpy()
                    )
                    recorder.log(self.step, stats)
                recorder.progress(self.step)
                recorder.maybe_checkpoint(self)
        finally:
            envs.close()

    # --- what the algorithms define ----------------------------------------------------
    def rollout_length(self) -> int | None:
        """Steps per env in a rollout; None collects until every env ends an episode."""
        return self.config.n_steps

    def targets(self, rollout: Rollout) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """``(advantages, returns, mask)``: GAE by default; ``mask`` selects the steps to train on."""
        advantages, returns = rollout.gae(self.config.gamma, self.config.gae_lambda)
        return advantages, returns, None

    @abc.abstractmethod
    def update(self, batch: Batch) -> dict[str, float]:
        """Improve the policy and value function on ``batch``; returns metrics to log."""

    # --- pieces of the training loop ---------------------------------------------------

    @torch.no_grad()
    def collect(
        self,
        envs: VecEnv,
        obs: Obs,
        buffer: RolloutBuffer,
        recorder: Any,
        until_episode_end: bool = False,
    ) -> tuple[Rollout, Obs]:
        """Step ``envs`` with the current policy and return the rollout and the next obs.

        Collects ``buffer.capacity`` steps per env, or with ``until_episode_end`` until
        every env has finished at least one episode. Advances ``self.step`` and reports
        finished episodes as they happen.
        """
        finished = np.zeros(envs.num_envs, dtype=bool)
        acting = self.policy.acting(self.device)  # the weights as they are for this rollout
        while True:
            actions, log_probs, values = acting.act(obs, self.rng)
            next_obs, rewards, terminated, truncated, info = envs.step(self.env_actions(actions))
            t = buffer.add(obs, actions, log_probs, values, rewards, terminated, truncated)
            if info.final_obs:
                self._bootstrap_truncated(acting, buffer, t, info, terminated, truncated)
            self.step += envs.num_envs
            if info.episodes:
                recorder.episodes(self.step, info.episodes)
            obs = next_obs
            if until_episode_end:
                finished |= terminated | truncated
                if finished.all():
                    break
            elif buffer.full:
                break
        last_values = acting.value(obs)
        rollout = buffer.finish(last_values)
        self.check_finite(rollout.obs, rollout.rewards)
        return rollout, obs

    def _bootstrap_truncated(
        self,
        acting: TorchActing | NumpyActorCritic,
        buffer: RolloutBuffer,
        t: int,
        info: StepInfo,
        terminated: np.ndarray,
        truncated: np.ndarray,
    ) -> None:
        """Store V(final_obs) for envs truncated (and not terminated) at row ``t``."""
        idx = [i for i in info.final_obs if truncated[i] and not terminated[i]]
        if not idx:
            return
        final = stack_obs([info.final_obs[i] for i in idx], buffer.observation_space)
        buffer.final_values[t, idx] = acting.value(final)

    def anneal_lr(self, total_steps: int) -> float:
        """Set and return the learning rate for this iteration (linear decay to 0).

        Uses ``self.step / total_steps`` so a resumed run continues the same schedule.
        """
        cfg = self.config
        lr = (
            linear(cfg.learning_rate, 0.0, 1.0, self.step / total_steps)
            if cfg.anneal_lr
            else cfg.learning_rate
        )
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def gradient_step(self, loss: torch.Tensor) -> torch.Tensor:
        """Backprop ``loss``, clip the global gradient norm, step; returns the norm.

        A non-finite loss stops training here, before it reaches the weights.
        """
        if not torch.isfinite(loss):
            raise TrainingDiverged(f"loss became {loss.item()} at step {self.step}")
        for p in self._params:
            p.grad = None
        loss.backward()
        norm = clip_grad_norm(self._params, self.config.max_grad_norm)
        self.optimizer.step()
        return norm

    def policy_gradient_step(self, batch: Batch) -> dict[str, float]:
        """One step on the advantage actor-critic loss over the whole batch (A2C, REINFORCE).

        loss = −mean(A · log π(a|s)) − ent_coef · H + vf_coef · mean((V(s) − R)²)
        """
        cfg = self.config
        log_probs, entropy, values = self.policy.evaluate(batch.obs, batch.actions)
        advantages = batch.advantages
        if cfg.normalize_advantages and len(batch) > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        policy_loss = -(advantages * log_probs).mean()
        value_loss = nn.functional.mse_loss(values, batch.returns)
        entropy = entropy.mean()
        loss = policy_loss + cfg.vf_coef * value_loss
        if cfg.ent_coef:  # skipped at 0 so backward does not traverse the entropy
            loss = loss - cfg.ent_coef * entropy
        grad_norm = self.gradient_step(loss)
        return {
            "train/policy_loss": policy_loss.item(),
            "train/value_loss": value_loss.item(),
            "train/entropy": entropy.item(),
            "train/grad_norm": grad_norm.item(),
        }
