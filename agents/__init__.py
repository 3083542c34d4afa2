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
}

PRESETS = Path(__file__).parent / "presets"


def get_algorithm(name: str) -> type:
    """The agent class for ``name``; an unknown name is a :class:`UserError`."""
    key = name.lower()
    if key not in ALGORITHMS:
        raise UserError(f"unknown algorithm '{name}'{close_matches(key, ALGORITHMS)}; see `pilot list`")
    module, cls = ALGORITHMS[key][0].split(":")
    return getattr(importlib.import_module(module), cls)


def env_family(env_id: str) -> str:
    """Preset family of an env id (``atari`` for ``pilot/Atari-*``)."""
    if env_id.startswith("pilot/Atari-"):
        return "atari"
    if env_id.startswith("pilot/Probe-"):
        return "probe"
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
    cls = get_algorithm(algo)
    values = merge(merge(preset(algo, env_id), file_values or {}), overrides or {})
    return from_dict(cls.Config, values)
