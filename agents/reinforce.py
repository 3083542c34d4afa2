"""REINFORCE (Williams 1992) with a learned state-value baseline.

Every update uses whole episodes: the envs are reset, each runs to the end of one episode
(envs that finish early keep stepping, but those steps are not trained on), and each
step's target is its Monte-Carlo return to the end of its episode. Using only the first
episode of each env keeps the batch unbiased: keeping later episodes that happened to
finish before the slowest env would over-represent short episodes. A truncated episode
(time limit) is completed by γ·V(final observation), never a terminated one.
"""

from __future__ import annotations

import numpy as np

from .common.rollout import Batch, PGAgent, Rollout
from .configs import REINFORCEConfig


class REINFORCE(PGAgent):
    name = "reinforce"
    summary = "REINFORCE with a learned value baseline"
    Config = REINFORCEConfig

    def rollout_length(self) -> None:
        return None  # whole episodes

    def targets(self, rollout: Rollout) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Monte-Carlo returns (GAE with λ = 1 is exactly G_t − V(s_t)) of first episodes."""
        advantages, returns = rollout.gae(self.config.gamma, 1.0)
        return advantages, returns, rollout.first_episode_mask()

    def update(self, batch: Batch) -> dict[str, float]:
        """One gradient step on the batch of episodes."""
        return self.policy_gradient_step(batch)
