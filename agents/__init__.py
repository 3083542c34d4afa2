"""Agents: the algorithm registry and config presets.

Algorithms are imported lazily by name so ``pilot list`` stays fast.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from pilot.config import from_dict, load_yaml, merge
from pilot.errors import UserError, close_matches

#: name -> (module:class, one-line description)
ALGORITHMS: dict[str, tuple[str, str]] = {
    "dqn": ("pilot.agents.dqn:DQN", "DQN family: double, dueling, prioritized replay, n-step, C51"),
    "ppo": ("pilot.agents.ppo:PPO", "PPO: clipped objective, GAE, value clipping, LR annealing"),
    "a2c": ("pilot.agents.a2c:A2C", "A2C: synchronous advantage actor-critic with n-step GAE"),
    "reinforce": ("pilot.agents.reinforce:REINFORCE", "REINFORCE with a learned value baseline"),
    "mcts": (
        "pilot.agents.mcts:MCTS",
        "AlphaZero-style MCTS: PUCT/Gumbel search through the simulator + policy/value net",
    ),
}

#: Built-in agents that need no training, played by name (``pilot eval modular --env ID``):
#: name -> (module:class, one-line description). The class builds its config with
#: ``configure(env_id, overrides)`` without importing torch.
BUILTIN: dict[str, tuple[str, str]] = {
    "random": (
        "pilot.agents.random_agent:RandomAgent",
        "uniform random actions on any env (the floor of every leaderboard)",
    ),
    "astar": (
        "pilot.planning.grid_agent:AStarAgent",
        "A* on the known grid map, first move of the path (Nav-Grid's optimal planner)",
    ),
    "modular": (
        "pilot.planning.stack.agent:ModularAgent",
        "modular driving stack (no training): privileged perception, prediction, "
        "behaviour, Frenet lattice planner, pure pursuit / Stanley / MPC tracking",
    ),
    "route": (
        "pilot.planning.route_follower:RouteFollower",
        "route follower (no training, the driving floor): pure pursuit on the route's lane "
        "centre at a fixed speed, ignoring lights, traffic and pedestrians",
    ),
}

#: name -> its config class in :mod:`pilot.agents.configs`, which loads without torch
CONFIGS: dict[str, str] = {
    "dqn": "DQNConfig",
    "ppo": "PPOConfig",
    "a2c": "A2CConfig",
    "reinforce": "REINFORCEConfig",
    "mcts": "MCTSConfig",
}

PRESETS = Path(__file__).parent / "presets"


def algorithm_name(name: str) -> str:
    """The registered name meant by ``name``; an unknown one is a :class:`UserError`."""
    key = name.lower()
    if key not in ALGORITHMS:
        raise UserError(
            f"unknown algorithm '{name}'{close_matches(key, ALGORITHMS)}; see `pilot list`"
        )
    return key


def get_algorithm(name: str) -> type:
    """The agent class for ``name`` (this imports torch)."""
    module, cls = ALGORITHMS[algorithm_name(name)][0].split(":")
    return getattr(importlib.import_module(module), cls)


def get_builtin(name: str) -> type:
    """The class of built-in agent ``name`` (a key of :data:`BUILTIN`)."""
    module, cls = BUILTIN[name][0].split(":")
    return getattr(importlib.import_module(module), cls)


def config_class(name: str) -> type:
    """The config dataclass of algorithm ``name``, without importing torch."""
    from . import configs

    return getattr(configs, CONFIGS[algorithm_name(name)])


def env_family(env_id: str) -> str:
    """Preset family of an env id (``atari`` for ``pilot/Atari-*``)."""
    if env_id.startswith("pilot/Atari-"):
        return "atari"
    if env_id.startswith("pilot/Driving-"):
        return "driving"
    if env_id.startswith("pilot/Probe-"):
        return "probe"
    if env_id.startswith("pilot/Nav-"):
        return "navigation"
    return env_id


def preset(algo: str, env_id: str) -> dict[str, Any]:
    """Hyperparameters for (algo, env): ``default`` ← family (e.g. ``atari``) ← exact id."""
    path = PRESETS / f"{algo}.yaml"
    table = load_yaml(path) if path.exists() else {}
    out: dict[str, Any] = dict(table.get("default") or {})
    family = env_family(env_id)
    if family != env_id and family in table:
        out = merge(out, table[family] or {})
    if env_id in table:
        out = merge(out, table[env_id] or {})
    return out


def build_config(
    algo: str,
    env_id: str,
    file_values: dict[str, Any] | None = None,
    overrides: dict[str, Any] | None = None,
):
    """Resolve preset ← config file ← ``--set`` overrides into the algorithm's Config."""
    cls = config_class(algo)
    algo = algorithm_name(algo)
    values = merge(merge(preset(algo, env_id), file_values or {}), overrides or {})
    return from_dict(cls, values)


def load_agent(
    path: str | Path,
    device: str = "auto",
    weights_only: bool = True,
    name: str | None = None,
    config: Any = None,
):
    """Rebuild the agent saved at ``path`` (run dir, checkpoint folder or file; ``name``
    picks a checkpoint other than the latest).

    Returns ``(agent, checkpoint)``. The algorithm, env id and config come from the
    checkpoint's metadata (``config`` replaces the latter, e.g. with a new step budget); a
    file that is not a pilot checkpoint is a :class:`UserError`.
    """
    from .common import checkpoint as ckpt

    loaded = ckpt.load(path, name=name)
    meta = loaded.meta
    for key in ("algo", "env_id", "config"):
        if key not in meta:
            raise UserError(f"{loaded.path} metadata lacks '{key}': not a pilot agent checkpoint")
    cls = get_algorithm(meta["algo"])
    if config is None:
        config = from_dict(cls.Config, meta["config"])
    agent = cls(meta["env_id"], config, seed=int(meta.get("seed", 0)), device=device)
    try:
        agent.load_state_dict(loaded.state, weights_only=weights_only)
    except (KeyError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise UserError(
            f"{loaded.path} does not fit a {meta['algo']} agent for {meta['env_id']}: {first}"
        ) from None
    return agent, loaded


def restore_replay(agent, loaded) -> int:
    """Hand the replay buffer saved with checkpoint ``loaded`` to ``agent``; returns the
    transitions it holds. A damaged or unfitting replay is a :class:`UserError`."""
    from .common import checkpoint as ckpt

    arrays, info = ckpt.load_replay(loaded.path, loaded.meta)
    try:
        return agent.load_replay_state(arrays, info)
    except ValueError as exc:
        raise UserError(f"{loaded.meta['replay']['file']} does not fit this run: {exc}") from None


def save_agent(
    agent, folder: str | Path, keep: int = 3, replay: bool = False, **extra_meta: Any
) -> Path:
    """Checkpoint ``agent`` into ``folder`` — refusing to save non-finite weights; with
    ``replay``, its replay buffer too.

    The refusal is what keeps "the latest checkpoint" always a good one after a NaN.
    """
    import torch

    from pilot.config import to_dict
    from pilot.errors import TrainingDiverged

    from .common import checkpoint as ckpt

    for name, module in agent.modules().items():
        for pname, p in module.named_parameters():
            if not torch.isfinite(p).all():
                raise TrainingDiverged(
                    f"weights '{name}.{pname}' are not finite at step {agent.step}"
                )
    meta = {
        "algo": agent.name,
        "env_id": agent.env_id,
        "seed": agent.seed,
        "step": agent.step,
        "config": to_dict(agent.config),
        **extra_meta,
    }
    replay_state = agent.replay_state() if replay else None
    return ckpt.save(folder, agent.state_dict(), meta, keep=keep, replay=replay_state)
