"""The uniform random agent: the floor of every leaderboard (Atari's HNS is 0 at its score).

A built-in agent (``pilot eval random --env ID``): it needs no training and acts on any env
by sampling the env's own action space from a generator of its own, so its episodes are
reproducible from its seed and the env seeds alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from pilot.config import field, from_dict
from pilot.errors import UserError


@dataclass(frozen=True)
class RandomConfig:
    """Config of the random agent."""

    seed: int = field(0, "seed of the agent's own action generator")


class RandomAgent:
    """Uniform random actions from each env's action space."""

    name: ClassVar[str] = "random"
    summary: ClassVar[str] = "uniform random actions (the floor of every leaderboard)"
    uses_simulator: ClassVar[bool] = True  # it reads the action space of the live env

    def __init__(self, env_id: str, config: RandomConfig | None = None, **_: Any) -> None:
        self.env_id = env_id
        self.config = config if config is not None else RandomConfig()
        self.rng = np.random.default_rng([0x5A4D, int(self.config.seed)])
        self.step = 0

    @staticmethod
    def configure(env_id: str, overrides: dict[str, Any]) -> RandomConfig:
        """The config with ``--set`` overrides (checked, torch-free)."""
        return from_dict(RandomConfig, overrides)

    def act(self, obs: Any, deterministic: bool = True, envs: list | None = None) -> Any:
        """One uniform action per env in ``envs`` (the batch's envs, in order)."""
        if envs is None:
            raise UserError("the random agent samples the live env's action space: pass envs")
        actions = [_sample(env.action_space, self.rng) for env in envs]
        self.step += len(envs)
        return np.stack(actions)

    def action_distribution(self, obs: Any) -> None:
        return None


def _sample(space: Any, rng: np.random.Generator) -> np.ndarray:
    """A uniform sample of a Discrete or bounded Box space from ``rng``."""
    if hasattr(space, "n"):
        return np.asarray(rng.integers(int(space.n)))
    low, high = np.asarray(space.low, np.float64), np.asarray(space.high, np.float64)
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        raise UserError("the random agent needs a bounded Box or Discrete action space")
    return rng.uniform(low, high).astype(space.dtype)
