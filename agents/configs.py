"""Every algorithm's hyperparameters, as frozen dataclasses that need no torch.

The command line checks a whole configuration (preset, file, ``--set``) against these
classes before it imports torch, so a typo in a key costs a fraction of a second instead of
the seconds torch takes to load. Each algorithm module uses its class from here
(``DQN.Config is DQNConfig``); the fields' help texts are what ``pilot train ALGO
--help-config`` prints.

Each config also says how many agent steps a run collects before its first update
(:meth:`BaseConfig.steps_before_learning`), so ``pilot train`` can warn about a step budget
that would train nothing without knowing any algorithm's rules.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from pilot.config import field

from .search.core import SearchConfig


@dataclasses.dataclass(frozen=True)
class BaseConfig:
    """Fields every algorithm's config has (algorithm configs subclass this)."""

    steps: int = field(100_000, "step budget in agent steps (`pilot train --steps N` sets it)")
    n_envs: int = field(1, "parallel environments for collection")
    env: dict = field(None, "keyword arguments for the environment (e.g. protocol: machado)")
    checkpoint_every: int = field(50_000, "agent steps between checkpoints (0: only at the end)")
    log_every: int = field(1_000, "agent steps between metric logs")

    def __post_init__(self) -> None:
        if self.env is None:
            object.__setattr__(self, "env", {})
        for name in ("steps", "n_envs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        # fields most algorithms share, checked once here (torch would raise mid-setup)
        for name in ("checkpoint_every", "log_every", "learning_rate", "lr_end", "weight_decay"):
            if (getattr(self, name, 0) or 0) < 0:
                raise ValueError(f"{name} must be >= 0")
        for name in ("adam_eps", "optimizer_eps"):
            if getattr(self, name, 1) <= 0:
                raise ValueError(f"{name} must be > 0")
        if any(size < 1 for size in getattr(self, "hidden", ())):
            raise ValueError("hidden layer sizes must be >= 1")

    def steps_before_learning(self) -> int:
        """Agent steps a fresh run collects before its first update (at least one
        batched step of every env here; algorithms that wait longer say so)."""
        return self.n_envs


@dataclasses.dataclass(frozen=True)
class DQNConfig(BaseConfig):
    """Hyperparameters of the DQN family (defaults: Nature DQN with Adam)."""

    # network
    hidden: tuple[int, ...] = field(
        (64, 64), "hidden layer sizes of the MLP torso (vector observations)"
    )
    activation: Literal["tanh", "relu"] = field("relu", "activation of the MLP torso")
    dueling: bool = field(False, "dueling head: Q = V + A - mean(A) (Wang et al., 2016)")
    distributional: bool = field(
        False, "C51: learn a categorical return distribution (Bellemare et al., 2017)"
    )
    n_atoms: int = field(51, "C51: atoms of the return distribution")
    v_min: float = field(-10.0, "C51: smallest return the support represents")
    v_max: float = field(10.0, "C51: largest return the support represents")
    # optimisation
    learning_rate: float = field(1e-4, "Adam learning rate")
    lr_end: float | None = field(
        None, "if set, the learning rate decays linearly to this by the end of training"
    )
    adam_eps: float = field(1e-8, "Adam epsilon (1.5e-4 in Rainbow/Dopamine)")
    batch_size: int = field(32, "transitions per gradient step")
    loss: Literal["huber", "mse"] = field("huber", "TD loss: Huber (delta 1) or squared error")
    max_grad_norm: float = field(10.0, "clip the gradient's global norm to this (0: no clipping)")
    gamma: float = field(0.99, "discount factor")
    double_q: bool = field(
        False, "Double DQN: the online net picks the next action, the target net rates it"
    )
    # replay
    buffer_size: int = field(1_000_000, "replay capacity in transitions (split evenly over n_envs)")
    n_step: int = field(1, "n-step returns: sum n discounted rewards before bootstrapping")
    prioritized: bool = field(False, "proportional prioritized replay (Schaul et al., 2016)")
    priority_alpha: float = field(0.6, "prioritized replay: priority exponent alpha")
    priority_beta: float = field(
        0.4, "prioritized replay: initial IS exponent beta, annealed to 1 over training"
    )
    priority_eps: float = field(
        1e-6, "prioritized replay: added to |TD error| so no priority is zero"
    )
    # schedule
    learning_starts: int = field(
        50_000,
        "agent steps collected before the first update (counted from the start or the resume point)",
    )
    train_freq: int = field(4, "agent steps (summed over envs) between training phases")
    gradient_steps: int = field(1, "gradient steps per training phase")
    target_update_interval: int = field(10_000, "agent steps between target-network updates")
    tau: float = field(1.0, "target update rate: 1 copies the online net, < 1 is Polyak averaging")
    exploration_initial_eps: float = field(1.0, "epsilon at the start of training")
    exploration_final_eps: float = field(0.01, "epsilon after the exploration fraction")
    exploration_fraction: float = field(
        0.1, "share of the step budget over which epsilon decays linearly"
    )
    eval_epsilon: float = field(
        0.01, "epsilon of act(deterministic=False), e.g. 0.05 for Atari evaluation"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        positive = (
            "batch_size",
            "buffer_size",
            "n_step",
            "train_freq",
            "gradient_steps",
            "target_update_interval",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if not 0.0 < self.tau <= 1.0:
            raise ValueError("tau must be in (0, 1]")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError("gamma must be in [0, 1]")
        if self.distributional and (self.n_atoms < 2 or self.v_max <= self.v_min):
            raise ValueError("C51 needs n_atoms >= 2 and v_max > v_min")
        if self.buffer_size < self.n_envs:
            raise ValueError("buffer_size must be >= n_envs")

    def steps_before_learning(self) -> int:
        """``learning_starts``, then the first step that crosses a ``train_freq`` multiple."""
        n = self.n_envs
        step = -(-self.learning_starts // n) * n  # steps advance n_envs at a time
        while step // self.train_freq == (step - n) // self.train_freq:
            step += n
        return step


@dataclasses.dataclass(frozen=True)
class PGConfig(BaseConfig):
    """Fields shared by every policy-gradient agent."""

    n_envs: int = field(8, "parallel environments for collection")
    gamma: float = field(0.99, "discount factor")
    learning_rate: float = field(2.5e-4, "learning rate (initial value when annealed)")
    anneal_lr: bool = field(True, "decay the learning rate linearly to 0 over the step budget")
    optimizer_eps: float = field(1e-5, "epsilon of the optimizer's denominator")
    ent_coef: float = field(0.0, "weight of the entropy bonus")
    vf_coef: float = field(0.5, "weight of the value loss (mean squared error)")
    max_grad_norm: float = field(0.5, "clip the global gradient norm to this value")
    normalize_advantages: bool = field(True, "standardize advantages (per minibatch)")
    hidden: tuple[int, ...] = field((64, 64), "hidden layer sizes of the MLP torsos")
    activation: str = field("tanh", "activation of the MLP torsos: tanh or relu")
    shared_torso: bool = field(False, "one torso for policy and value (else one each)")
    log_std_init: float = field(0.0, "initial log standard deviation of Gaussian policies")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError("gamma must be in [0, 1]")
        if self.activation not in ("tanh", "relu"):
            raise ValueError("activation must be tanh or relu")


@dataclasses.dataclass(frozen=True)
class ActorCriticConfig(PGConfig):
    """Fields of the agents that learn from fixed-length rollouts (PPO, A2C)."""

    n_steps: int = field(128, "steps per env in each rollout")
    gae_lambda: float = field(0.95, "GAE lambda (1: n-step returns, 0: one-step TD)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_steps < 1:
            raise ValueError("n_steps must be >= 1")
        if not 0.0 <= self.gae_lambda <= 1.0:
            raise ValueError("gae_lambda must be in [0, 1]")

    def steps_before_learning(self) -> int:
        """One whole rollout: ``n_envs × n_steps``."""
        return self.n_envs * self.n_steps


@dataclasses.dataclass(frozen=True)
class PPOConfig(ActorCriticConfig):
    """PPO hyperparameters (defaults: CleanRL's ``ppo.py``)."""

    n_epochs: int = field(4, "passes over each rollout")
    n_minibatches: int = field(4, "minibatches per pass (minibatch = n_steps * n_envs / this)")
    clip_coef: float = field(0.2, "clip the probability ratio to [1 - clip_coef, 1 + clip_coef]")
    vf_clip: float | None = field(
        None, "clip the value change to ±vf_clip around the rollout's values (None: off)"
    )
    target_kl: float | None = field(
        None, "stop the update's remaining minibatches once approx. KL exceeds this (None: off)"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_epochs < 1 or self.n_minibatches < 1:
            raise ValueError("n_epochs and n_minibatches must be >= 1")
        if self.clip_coef <= 0:
            raise ValueError("clip_coef must be > 0")


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


@dataclasses.dataclass(frozen=True)
class REINFORCEConfig(PGConfig):
    """REINFORCE hyperparameters. One update per batch of ``n_envs`` whole episodes."""

    learning_rate: float = field(1e-3, "learning rate (initial value when annealed)")
    anneal_lr: bool = field(False, "decay the learning rate linearly to 0 over the step budget")


@dataclasses.dataclass(frozen=True)
class MCTSConfig(BaseConfig):
    """AlphaZero-style training (search settings in ``search``)."""

    n_envs: int = field(16, "self-play envs, searched together as one batch of trees")
    search: SearchConfig = field(
        SearchConfig(), "tree search settings (search.num_simulations, ...)"
    )
    hidden: tuple[int, ...] = field((64, 64), "policy and value MLP hidden sizes")
    activation: str = field("tanh", "hidden activation: tanh or relu")
    learning_rate: float = field(1e-3, "Adam learning rate")
    weight_decay: float = field(1e-4, "AdamW weight decay (AlphaZero's L2 term)")
    batch_size: int = field(256, "minibatch size of network updates")
    buffer_size: int = field(50_000, "replay capacity (search targets)")
    learning_starts: int = field(1_000, "env steps before the first update")
    updates_per_step: int = field(1, "network updates per batched env step")
    n_step: int = field(10, "value targets bootstrap from the search value this many moves on")
    value_coef: float = field(1.0, "weight of the value loss")
    max_grad_norm: float = field(1.0, "clip the global gradient norm")
    temperature: float = field(1.0, "PUCT: sample moves from visits^(1/T) while exploring")
    explore_moves: int = field(30, "PUCT: moves per episode played with the temperature")
    reuse_tree: bool = field(True, "keep the subtree below the played action for the next move")
    eval_simulations: int | None = field(
        None, "simulations per move in watch/eval (None: search.num_simulations)"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.activation not in ("tanh", "relu"):
            raise ValueError("activation must be tanh or relu")
        for name in ("batch_size", "buffer_size", "n_step"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.temperature <= 0:
            raise ValueError("temperature must be > 0")

    def steps_before_learning(self) -> int:
        """``learning_starts``, and a replay that holds one batch."""
        return max(self.learning_starts, self.batch_size)
