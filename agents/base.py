"""The agent contract shared by every algorithm, and the config fields every algorithm has.

An algorithm is a subclass of :class:`Agent` with a frozen ``Config`` dataclass. Its
``learn`` loop reads top to bottom (collect → targets → update → log) and reports to a
:class:`~pilot.agents.common.recorder.Recorder`; ``act`` maps a batch of observations to a
batch of actions for ``watch`` and ``eval``; ``modules``/``optimizers`` name what a
checkpoint must hold.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import numpy as np
import torch

from pilot.envs import make_env
from pilot.errors import TrainingDiverged

from .common.device import resolve_device
from .configs import BaseConfig


class Agent(abc.ABC):
    """Base class of every algorithm. Subclasses set ``name``, ``summary`` and ``Config``."""

    name: ClassVar[str]
    summary: ClassVar[str]
    Config: ClassVar[type[BaseConfig]]
    #: True for agents that plan through the simulator: ``act`` then takes ``envs=[...]``,
    #: the live envs whose states it searches from (``watch`` and ``eval`` pass them).
    uses_simulator: ClassVar[bool] = False
    #: True for agents whose replay buffer a checkpoint can carry (``--save-replay``).
    has_replay: ClassVar[bool] = False

    def __init__(
        self,
        env_id: str,
        config: BaseConfig | None = None,
        *,
        seed: int = 0,
        device: str | torch.device = "auto",
    ) -> None:
        self.env_id = env_id
        self.config = config if config is not None else self.Config()
        self.seed = seed
        self.device = resolve_device(device)
        self.step = 0  # agent steps taken so far, summed over parallel envs
        self.rng = np.random.default_rng(seed)
        torch.manual_seed(seed)
        probe = make_env(env_id, **self.config.env)
        try:
            self.observation_space = probe.observation_space
            self.action_space = probe.action_space
            self.check_env(probe)
        finally:
            probe.close()

    # --- what an algorithm implements -------------------------------------------------
    @abc.abstractmethod
    def learn(self, total_steps: int, recorder: Any) -> None:
        """Train until ``self.step >= total_steps``, reporting to ``recorder``."""

    @abc.abstractmethod
    def act(self, obs: Any, deterministic: bool = True) -> np.ndarray:
        """Actions for a batch of observations (numpy in, numpy out)."""

    @abc.abstractmethod
    def modules(self) -> dict[str, torch.nn.Module]:
        """Networks a checkpoint holds, by name."""

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Optimizers a checkpoint holds, by name (so --resume continues Adam's moments)."""
        return {}

    def check_env(self, env: Any) -> None:
        """Refuse (:class:`UserError`) an env the algorithm cannot work with; the base
        accepts every env. Called once, on the env made to read the spaces."""
        return None

    # --- helpers every training loop uses -------------------------------------------------
    def log_due(self, steps_this_iteration: int) -> bool:
        """True when this iteration crossed a multiple of ``log_every`` (0: every update)."""
        every = self.config.log_every
        return every <= 0 or self.step // every > (self.step - steps_this_iteration) // every

    def check_finite(self, obs: Any, rewards: np.ndarray) -> None:
        """Env outputs must be finite: a NaN observation or reward is reported, not learned."""
        arrays = list(obs.values()) if isinstance(obs, dict) else [obs]
        for x in [*arrays, rewards]:
            if x.dtype.kind == "f" and not np.isfinite(x).all():
                raise TrainingDiverged(
                    f"environment returned non-finite observations or rewards by step {self.step}"
                )

    def action_distribution(self, obs: Any) -> np.ndarray | None:
        """Action probabilities for a batch (discrete policies), for ``watch`` overlays."""
        return None

    def action_scores(self, obs: Any) -> torch.Tensor | None:
        """Differentiable per-action scores of a *tensor* batch, (B, n) — policy logits,
        Q-values, or a continuous policy's means — computed by the networks of
        :meth:`modules`, so saliency maps can say which inputs the chosen action depends
        on (``watch --explain``). None where the agent has no such scores."""
        return None

    # --- checkpoint state ----------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "modules": {k: m.state_dict() for k, m in self.modules().items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers().items()},
            "step": self.step,
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": self.rng.bit_generator.state,  # exploration, sampling, minibatches
        }

    def replay_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        """``(arrays, info)`` of the replay buffer for a checkpoint, or None (no buffer,
        or nothing collected yet)."""
        return None

    def load_replay_state(self, arrays: dict[str, np.ndarray], info: dict[str, Any]) -> int:
        """Continue the next :meth:`learn` with a saved replay buffer; returns the
        transitions it holds (``ValueError`` when it does not fit this agent)."""
        raise ValueError(f"{self.name} has no replay buffer")

    def load_state_dict(self, state: dict[str, Any], weights_only: bool = False) -> None:
        """Restore networks (and, unless ``weights_only``, optimizers and the step counter)."""
        mods = self.modules()
        missing = set(mods) - set(state.get("modules", {}))
        if missing:
            raise KeyError(f"checkpoint lacks networks {sorted(missing)}")
        for k, m in mods.items():
            m.load_state_dict(state["modules"][k])
        if weights_only:
            return
        for k, o in self.optimizers().items():
            if k in state.get("optimizers", {}):
                o.load_state_dict(state["optimizers"][k])
        self.step = int(state.get("step", 0))
        if "torch_rng" in state:
            torch.set_rng_state(state["torch_rng"])
        if "numpy_rng" in state:
            self.rng.bit_generator.state = state["numpy_rng"]
