"""DQN and its family in one module, each improvement a config switch.

Mnih et al. (2015) DQN, plus Double DQN (van Hasselt et al., 2016), dueling heads (Wang
et al., 2016), proportional prioritized replay (Schaul et al., 2016), n-step returns, and
distributional C51 (Bellemare et al., 2017). With every switch on it is close to Rainbow
without noisy nets.

The training loop in :meth:`DQN.learn` reads top to bottom: collect one vectorized step
→ store it → (when due) sample a batch, build TD targets, update → sync the target
network → log. Targets bootstrap on truncation (from ``StepInfo.final_obs``) and never on
termination; the replay buffer carries that distinction into n-step returns.

Step counting: ``self.step``, ``train_freq``, ``target_update_interval``,
``learning_starts`` and ``log_every`` are all in agent steps summed over the parallel
envs, so a config means the same replay ratio whatever ``n_envs`` is.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pilot.envs import make_vec_env
from pilot.errors import UserError

from .base import Agent
from .common.networks import layer_init, make_torso, to_tensor
from .common.replay import Batch, PrioritizedReplayBuffer, ReplayBuffer, with_final_obs
from .common.schedules import linear
from .configs import DQNConfig


class QNetwork(nn.Module):
    """Torso (MLP, Nature CNN or multi-input) with a Q head: plain or dueling, scalar or C51.

    Returns Q-values ``(B, A)``, or logits ``(B, A, atoms)`` when ``n_atoms > 1``. The
    dueling streams are linear layers on the shared torso features; the mean advantage is
    subtracted so V and A are identifiable.
    """

    def __init__(
        self,
        observation_space: gym.Space,
        n_actions: int,
        hidden: tuple[int, ...],
        activation: str,
        dueling: bool,
        n_atoms: int = 1,
    ) -> None:
        super().__init__()
        self.torso = make_torso(observation_space, hidden, activation)
        self.n_actions, self.n_atoms, self.dueling = n_actions, n_atoms, dueling
        features = self.torso.out_dim
        if dueling:
            self.value = layer_init(nn.Linear(features, n_atoms), gain=1.0)
            self.advantage = layer_init(nn.Linear(features, n_actions * n_atoms), gain=1.0)
        else:
            self.head = layer_init(nn.Linear(features, n_actions * n_atoms), gain=1.0)

    def forward(self, obs: Any) -> torch.Tensor:
        h = self.torso(obs)
        if self.dueling:
            value = self.value(h).view(-1, 1, self.n_atoms)
            advantage = self.advantage(h).view(-1, self.n_actions, self.n_atoms)
            out = value + advantage - advantage.mean(dim=1, keepdim=True)
        else:
            out = self.head(h).view(-1, self.n_actions, self.n_atoms)
        return out.squeeze(-1) if self.n_atoms == 1 else out


def project_distribution(
    probs: torch.Tensor, rewards: torch.Tensor, discounts: torch.Tensor, support: torch.Tensor
) -> torch.Tensor:
    """C51's target: the distribution ``rewards + discounts * Z`` projected onto ``support``.

    Each atom z_j, with probability ``probs[:, j]``, moves to r + d·z_j (clamped to the
    support) and its mass is split between the two nearest atoms in proportion to
    closeness, so total mass is kept and, inside the support, so is the mean.
    """
    n_atoms = len(support)
    tz = (rewards[:, None] + discounts[:, None] * support[None]).clamp(support[0], support[-1])
    b = (tz - support[0]) / (support[1] - support[0])
    lower, upper = b.floor().long(), b.ceil().long()
    # An atom landing exactly on the grid (lower == upper) gives all its mass to that atom.
    lower[(upper > 0) & (lower == upper)] -= 1
    upper[(lower < n_atoms - 1) & (lower == upper)] += 1
    target = torch.zeros_like(probs)
    target.scatter_add_(1, lower, probs * (upper.float() - b))
    target.scatter_add_(1, upper, probs * (b - lower.float()))
    return target


def _crossings(before: int, after: int, every: int) -> int:
    """How many multiples of ``every`` the step counter passed going from ``before`` to ``after``."""
    return after // every - before // every


def _batch_size(obs: Any) -> int:
    if isinstance(obs, dict):
        return len(next(iter(obs.values())))
    return len(obs)


class _Means:
    """Means of the update metrics between two logs.

    Values stay tensors until :meth:`pop`, so a GPU run does not wait for the device after
    every gradient step just to read a number nobody looks at until the next log.
    """

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0

    def add(self, metrics: dict[str, torch.Tensor]) -> None:
        for k, v in metrics.items():
            self.sums[k] = self.sums[k] + v if k in self.sums else v
        self.count += 1

    def pop(self) -> dict[str, float]:
        out = {k: float(v) / self.count for k, v in self.sums.items()}
        self.sums, self.count = {}, 0
        return out


class DQN(Agent):
    """Deep Q-learning with Double, dueling, prioritized, n-step and C51 switches."""

    name = "dqn"
    summary = "DQN family: double, dueling, prioritized replay, n-step, C51"
    Config = DQNConfig
    has_replay = True

    def __init__(
        self,
        env_id: str,
        config: DQNConfig | None = None,
        *,
        seed: int = 0,
        device: str | torch.device = "auto",
    ) -> None:
        super().__init__(env_id, config, seed=seed, device=device)
        if not isinstance(self.action_space, gym.spaces.Discrete):
            raise UserError(f"dqn needs a discrete action space; {env_id} has {self.action_space}")
        cfg: DQNConfig = self.config
        self.n_actions = int(self.action_space.n)
        atoms = cfg.n_atoms if cfg.distributional else 1
        args = (
            self.observation_space,
            self.n_actions,
            cfg.hidden,
            cfg.activation,
            cfg.dueling,
            atoms,
        )
        self.q = QNetwork(*args).to(self.device)
        self.q_target = QNetwork(*args).to(self.device)
        self.q_target.load_state_dict(self.q.state_dict())
        self.q_target.requires_grad_(False)
        # The fused kernel is markedly faster for the small nets of vector tasks on a CPU.
        self.optimizer = torch.optim.Adam(
            self.q.parameters(), lr=cfg.learning_rate, eps=cfg.adam_eps, fused=True
        )
        self.support = torch.linspace(cfg.v_min, cfg.v_max, cfg.n_atoms, device=self.device)
        self.replay: ReplayBuffer | None = None  # the buffer of the latest learn()
        self._replay_start = 0  # the step at which self.replay began collecting
        self._restored: tuple[ReplayBuffer, int] | None = None  # (buffer, steps it holds)

    # --- checkpoint contract -------------------------------------------------------------
    def modules(self) -> dict[str, nn.Module]:
        return {"q": self.q, "q_target": self.q_target}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"q": self.optimizer}

    def _replay_info(self) -> dict[str, Any]:
        """What a saved buffer must agree on with this agent (the arrays' shapes say the
        rest): returns stored n-step with this discount, priorities or none."""
        cfg: DQNConfig = self.config
        keys = ("buffer_size", "n_envs", "n_step", "gamma", "prioritized")
        return {k: getattr(cfg, k) for k in keys}

    def replay_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        arrays = self.replay.state() if self.replay is not None else {}
        if not arrays:
            return None
        info = {**self._replay_info(), "collected": self.step - self._replay_start}
        return arrays, info

    def load_replay_state(self, arrays: dict[str, np.ndarray], info: dict[str, Any]) -> int:
        """The next :meth:`learn` continues with this buffer, and counts ``learning_starts``
        from when it began collecting, so a resumed run goes on updating at once."""
        for key, value in self._replay_info().items():
            if info.get(key) != value:
                raise ValueError(f"the replay was saved with {key} {info.get(key)}, not {value}")
        buffer = self._make_buffer()
        buffer.load_state(arrays)
        self._restored = (buffer, int(info.get("collected", 0)))
        return len(buffer)

    # --- acting ----------------------------------------------------------------------------
    def q_values(self, obs: Any, net: nn.Module | None = None) -> torch.Tensor:
        """Q-values ``(B, A)`` of a tensor batch (the mean of the C51 distribution)."""
        out = (net or self.q)(obs)
        if self.config.distributional:
            return (out.softmax(dim=-1) * self.support).sum(dim=-1)
        return out

    @torch.no_grad()
    def _greedy(self, obs: Any) -> np.ndarray:
        if not isinstance(obs, dict):
            obs = np.asarray(obs)
        return self.q_values(to_tensor(obs, self.device)).argmax(dim=1).cpu().numpy()

    def _epsilon_greedy(self, obs: Any, epsilon: float) -> np.ndarray:
        n = _batch_size(obs)
        explore = self.rng.random(n) < epsilon
        actions = self.rng.integers(self.n_actions, size=n)
        if not explore.all():
            actions = np.where(explore, actions, self._greedy(obs))
        return actions.astype(np.int64)

    def act(self, obs: Any, deterministic: bool = True) -> np.ndarray:
        """Greedy actions, or epsilon-greedy with ``eval_epsilon`` when not deterministic."""
        if deterministic:
            return self._greedy(obs).astype(np.int64)
        return self._epsilon_greedy(obs, self.config.eval_epsilon)

    def action_scores(self, obs: Any) -> torch.Tensor:
        return self.q_values(obs)

    def action_distribution(self, obs: Any) -> np.ndarray:
        """Probabilities of the evaluation epsilon-greedy policy, for overlays."""
        eps = self.config.eval_epsilon
        probs = np.full((_batch_size(obs), self.n_actions), eps / self.n_actions)
        probs[np.arange(len(probs)), self._greedy(obs)] += 1.0 - eps
        return probs

    # --- learning ----------------------------------------------------------------------------
    def _make_buffer(self) -> ReplayBuffer:
        cfg: DQNConfig = self.config
        args = (self.observation_space, cfg.buffer_size, cfg.n_envs, cfg.n_step, cfg.gamma)
        if cfg.prioritized:
            return PrioritizedReplayBuffer(*args, alpha=cfg.priority_alpha, eps=cfg.priority_eps)
        return ReplayBuffer(*args)

    def learn(self, total_steps: int, recorder: Any) -> None:
        """Train until ``self.step >= total_steps``.

        Each call starts with an empty replay buffer and collects ``learning_starts`` steps,
        with the epsilon its schedule has reached, before updating — unless a saved buffer
        was handed over with :meth:`load_replay_state` (``pilot train --save-replay``):
        then it continues with that buffer, counting ``learning_starts`` from when that
        buffer began.
        """
        cfg: DQNConfig = self.config
        envs = make_vec_env(self.env_id, cfg.n_envs, seed=self.seed, training=True, **cfg.env)
        buffer, held = self._restored or (self._make_buffer(), 0)
        self._restored = None
        self.replay, self._replay_start = buffer, self.step - held
        resume_step = self._replay_start
        means = _Means()
        updates_since_sync = 0  # a hard copy with no update since the last one changes nothing
        obs = envs.reset()
        try:
            while self.step < total_steps:
                progress = self.step / total_steps
                epsilon = linear(
                    cfg.exploration_initial_eps,
                    cfg.exploration_final_eps,
                    cfg.exploration_fraction,
                    progress,
                )
                lr = (
                    cfg.learning_rate
                    if cfg.lr_end is None
                    else linear(cfg.learning_rate, cfg.lr_end, 1.0, progress)
                )
                beta = linear(cfg.priority_beta, 1.0, 1.0, progress)

                # collect
                actions = self._epsilon_greedy(obs, epsilon)
                next_obs, rewards, terminated, truncated, info = envs.step(actions)
                before, self.step = self.step, self.step + envs.num_envs
                recorder.episodes(self.step, info.episodes)

                # store (ended envs carry their final observation as the true next one)
                real_next = with_final_obs(next_obs, info.final_obs)
                buffer.add(obs, real_next, actions, rewards, terminated, truncated)
                obs = next_obs

                # sample targets → update
                if self.step - resume_step >= cfg.learning_starts:
                    for group in self.optimizer.param_groups:
                        group["lr"] = lr
                    for _ in range(
                        _crossings(before, self.step, cfg.train_freq) * cfg.gradient_steps
                    ):
                        means.add(self._update(buffer, beta))
                        updates_since_sync += 1
                if _crossings(before, self.step, cfg.target_update_interval) and (
                    updates_since_sync or cfg.tau < 1.0
                ):
                    self._update_target()
                    updates_since_sync = 0

                # log
                if self.log_due(self.step - before):
                    stats = {
                        "train/epsilon": epsilon,
                        "train/lr": lr,
                        "train/buffer_size": len(buffer),
                    }
                    if cfg.prioritized:
                        stats["train/beta"] = beta
                    recorder.log(self.step, {**stats, **means.pop()})
                recorder.progress(self.step)
                recorder.maybe_checkpoint(self)
        finally:
            envs.close()

    def _update(self, buffer: ReplayBuffer, beta: float) -> dict[str, torch.Tensor]:
        """One gradient step on a sampled batch; returns the metrics to log (as tensors)."""
        cfg: DQNConfig = self.config
        if isinstance(buffer, PrioritizedReplayBuffer):
            batch = buffer.sample(cfg.batch_size, self.rng, beta=beta)
        else:
            batch = buffer.sample(cfg.batch_size, self.rng)
        batch = batch.to(self.device)
        if cfg.distributional:
            per_sample, q_taken = self._c51_loss(batch)
            priority = per_sample.detach()
        else:
            per_sample, q_taken, td = self._td_loss(batch)
            priority = td.abs()
        loss = (batch.weights * per_sample).mean()

        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        max_norm = cfg.max_grad_norm if cfg.max_grad_norm > 0 else float("inf")
        grad_norm = nn.utils.clip_grad_norm_(self.q.parameters(), max_norm)
        self.optimizer.step()

        if isinstance(buffer, PrioritizedReplayBuffer):
            buffer.update_priorities(batch.indices, priority.cpu().numpy())
        return {
            "train/loss": loss.detach(),
            "train/q_mean": q_taken.mean(),
            "train/q_max": q_taken.max(),
            "train/td_abs": priority.mean(),
            "train/grad_norm": grad_norm,
        }

    def _td_loss(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-sample loss, Q(s, a) and TD error for scalar Q-learning."""
        q_taken = self.q(batch.obs).gather(1, batch.actions.long()[:, None]).squeeze(1)
        with torch.no_grad():
            next_q = self.q_target(batch.next_obs)
            if self.config.double_q:
                next_actions = self.q(batch.next_obs).argmax(dim=1, keepdim=True)
                next_v = next_q.gather(1, next_actions).squeeze(1)
            else:
                next_v = next_q.max(dim=1).values
            target = batch.rewards + batch.discounts * next_v
        if self.config.loss == "huber":
            per_sample = F.smooth_l1_loss(q_taken, target, reduction="none")
        else:
            per_sample = F.mse_loss(q_taken, target, reduction="none")
        return per_sample, q_taken.detach(), (target - q_taken).detach()

    def _c51_loss(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample cross-entropy to the projected target distribution, and Q(s, a)."""
        cfg: DQNConfig = self.config
        z = self.support
        n = len(batch.actions)
        rows = torch.arange(n, device=self.device)
        with torch.no_grad():
            next_probs = self.q_target(batch.next_obs).softmax(dim=-1)  # (B, A, N)
            if cfg.double_q:
                next_actions = self.q_values(batch.next_obs).argmax(dim=1)
            else:
                next_actions = (next_probs * z).sum(dim=-1).argmax(dim=1)
            target = project_distribution(
                next_probs[rows, next_actions], batch.rewards, batch.discounts, z
            )
        logits = self.q(batch.obs)[rows, batch.actions.long()]  # (B, N)
        per_sample = -(target * logits.log_softmax(dim=-1)).sum(dim=-1)
        q_taken = (logits.detach().softmax(dim=-1) * z).sum(dim=-1)
        return per_sample, q_taken

    @torch.no_grad()
    def _update_target(self) -> None:
        """Copy (tau = 1) or Polyak-average (tau < 1) the online weights into the target net."""
        tau = self.config.tau
        if tau >= 1.0:
            self.q_target.load_state_dict(self.q.state_dict())
            return
        for target, online in zip(self.q_target.parameters(), self.q.parameters(), strict=True):
            target.lerp_(online, tau)
