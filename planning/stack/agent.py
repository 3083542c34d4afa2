"""The modular stack as an agent that ``pilot eval`` and ``pilot watch`` play like the
trained ones: ``act(obs, deterministic, envs=...)`` reads the live envs (privileged
perception and the known map, as on the CARLA leaderboard's map track)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from pilot.errors import UserError

from .config import ModularConfig, build_config
from .perception import privileged
from .stack import ModularStack


class ModularAgent:
    """Perception → prediction → behaviour → Frenet lattice → tracker; nothing to train."""

    name: ClassVar[str] = "modular"
    summary: ClassVar[str] = (
        "modular driving stack: privileged perception, Frenet lattice, trackers"
    )
    uses_simulator: ClassVar[bool] = True

    def __init__(self, env_id: str, config: ModularConfig | None = None, **_: Any) -> None:
        if not env_id.startswith("pilot/Driving-") or "Meta" in env_id:
            raise UserError(
                f"the modular stack drives the Box(2) driving envs, not {env_id}; "
                "see `pilot list` for pilot/Driving-* ids"
            )
        self.env_id = env_id
        self.config = config if config is not None else build_config(env_id)
        self.step = 0
        self._stacks: dict[int, ModularStack] = {}
        self._perceive = privileged
        if self.config.perception != "privileged":  # one network for every env's stack
            from .learned import LearnedPerception

            self._perceive = LearnedPerception(
                self.config.perception,
                smoothing=self.config.perception_smoothing,
                threshold=self.config.perception_threshold,
                hold=self.config.perception_hold,
                exclusive=self.config.perception_exclusive,
                rear=self.config.perception_rear,
            )
        self.last_plans: list = []
        self.timings_ms: list[dict[str, float]] = []

    @staticmethod
    def configure(env_id: str, overrides: dict[str, Any]) -> ModularConfig:
        """The preset for ``env_id`` with ``--set`` overrides (checked, torch-free)."""
        return build_config(env_id, overrides)

    def act(self, obs: Any, deterministic: bool = True, envs: list | None = None) -> np.ndarray:
        """``[steer, throttle]`` per env in ``envs`` (the batch's envs, in order)."""
        if envs is None:
            raise UserError("the modular stack plans from the live env: pass envs=[...]")
        actions, self.last_plans = [], []
        for env in envs:
            stack = self._stacks.get(id(env))
            if stack is None:
                stack = self._stacks[id(env)] = ModularStack(self.config, self._perceive)
            action, plan = stack.step(env)
            actions.append(action)
            self.last_plans.append(plan)
            self.timings_ms.append(plan.timings_ms)
        self.step += len(envs)
        return np.stack(actions)

    def action_distribution(self, obs: Any) -> None:
        return None
