"""Proximal Policy Optimization (Schulman et al. 2017) with the usual implementation details.

Clipped surrogate objective, GAE targets, optional value clipping, per-minibatch advantage
normalisation, global gradient-norm clipping, linear learning-rate annealing, an entropy
bonus, several epochs of minibatches per rollout and an optional target-KL early stop
(the details catalogued by Huang et al., "The 37 Implementation Details of PPO", 2022).
Collection, targets and the training loop are shared with A2C and REINFORCE
(:class:`~pilot.agents.common.rollout.PGAgent`); this module is the update.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .common.rollout import Batch, PGAgent
from .configs import PPOConfig


class PPO(PGAgent):
    name = "ppo"
    summary = "PPO: clipped objective, GAE, value clipping, LR annealing"
    Config = PPOConfig

    def update(self, batch: Batch) -> dict[str, float]:
        """``n_epochs`` passes of shuffled minibatches over the clipped PPO loss."""
        cfg = self.config
        size = max(len(batch) // cfg.n_minibatches, 1)
        records: list[torch.Tensor] = []
        epochs = 0
        for _ in range(cfg.n_epochs):
            stopped = False
            for mb in batch.minibatches(size):
                log_probs, entropy, values = self.policy.evaluate(mb.obs, mb.actions)
                log_ratio = log_probs - mb.log_probs
                ratio = log_ratio.exp()
                with torch.no_grad():
                    change = ratio - 1.0
                    approx_kl = (change - log_ratio).mean()  # k3 estimator, always >= 0
                    clipfrac = (change.abs() > cfg.clip_coef).float().mean()
                if cfg.target_kl is not None and approx_kl.item() > cfg.target_kl:
                    stopped = True
                    break

                advantages = mb.advantages
                if cfg.normalize_advantages and len(mb) > 1:
                    advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
                clipped_ratio = ratio.clamp(1.0 - cfg.clip_coef, 1.0 + cfg.clip_coef)
                policy_loss = -torch.min(advantages * ratio, advantages * clipped_ratio).mean()

                if cfg.vf_clip is None:
                    value_loss = F.mse_loss(values, mb.returns)
                else:
                    clipped = mb.values + (values - mb.values).clamp(-cfg.vf_clip, cfg.vf_clip)
                    value_loss = torch.max(
                        (values - mb.returns).square(), (clipped - mb.returns).square()
                    ).mean()

                entropy = entropy.mean()
                loss = policy_loss + cfg.vf_coef * value_loss
                if cfg.ent_coef:  # skipped at 0 so backward does not traverse the entropy
                    loss = loss - cfg.ent_coef * entropy
                grad_norm = self.gradient_step(loss)
                records.append(
                    torch.stack(
                        [policy_loss, value_loss, entropy, approx_kl, clipfrac, grad_norm]
                    ).detach()
                )
            epochs += 1
            if stopped:
                break
        means = torch.stack(records).mean(0).tolist() if records else [0.0] * 6
        names = ("policy_loss", "value_loss", "entropy", "approx_kl", "clipfrac", "grad_norm")
        stats = {f"train/{k}": v for k, v in zip(names, means, strict=True)}
        stats["train/epochs"] = float(epochs)
        return stats
