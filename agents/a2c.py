"""Advantage actor-critic, synchronous (A2C; Mnih et al. 2016, the batched variant of A3C).

Each update is one gradient step on a short rollout from every env: n-step returns
(``gae_lambda`` 1, the default) or GAE for ``gae_lambda`` < 1, with RMSprop as in the
paper or Adam. Collection, targets and the loop are shared with PPO and REINFORCE
(:class:`~pilot.agents.common.rollout.PGAgent`).
"""

from __future__ import annotations

import torch

from .common.rollout import Batch, PGAgent
from .configs import A2CConfig


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
