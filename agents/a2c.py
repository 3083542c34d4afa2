"""Advantage actor-critic, synchronous (A2C; Mnih et al. 2016, the batched variant of A3C).

Each update is one gradient step on a short rollout from every env: n-step returns
(``gae_lambda`` 1, the default) or GAE for ``gae_lambda`` < 1, with RMSprop as in the
paper or Adam. Collection, targets and the loop are shared with PPO and REINFORCE
(:class:`~pilot.agents.common.rollout.PGAgent`).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch

from pilot.config import field

from .common.rollout import ActorCriticConfig, Batch, PGAgent


@dataclasses.dataclass(frozen=True)
class A2CConfig(ActorCriticConfig):
    """A2C hyperparameters (defaults: Stable-Baselines3's A2C)."""

    n_steps: int = field(5, "steps per env in each rollout (the n of n-step returns)")
    gae_lambda: float = field(1.0, "GAE lambda (1: plain n-step returns)")
    learning_rate: float = field(7e-4, "learning rate (initial value when annealed)")
    anneal_lr: bool = field(False, "decay the learning rate linearly to 0 over the step budget")
    normalize_advantages: bool = field(False, "standardize advantages over each rollout")
    optimizer: Literal["rmsprop", "adam"] = field("rmsprop", "rmsprop (as in the paper) or adam")
    rms_alpha: float = field(0.99, "RMSprop smoothing constant")


class A2C(PGAgent):
    name = "a2c"
    summary = "A2C: synchronous advantage actor-critic with n-step GAE"
    Config = A2CConfig

    def make_optimizer(self) -> torch.optim.Optimizer:
        cfg = self.config
        if cfg.optimizer == "rmsprop":
            return torch.optim.RMSprop(
                self.policy.parameters(),
                lr=cfg.learning_rate,
                alpha=cfg.rms_alpha,
                eps=cfg.optimizer_eps,
                foreach=True,  # one batched update instead of a Python loop over tensors
            )
        return super().make_optimizer()

    def update(self, batch: Batch) -> dict[str, float]:
        """One gradient step on the whole rollout."""
        return self.policy_gradient_step(batch)
