"""Loading a trained agent and acting with it, shared by `pilot watch` and `pilot eval`."""

from __future__ import annotations

from typing import Any


def load_for_playing(target: str, device: str):
    from pilot import runs
    from pilot.agents import load_agent

    agent, loaded = load_agent(target, device=device)
    run = runs.run_of_checkpoint(loaded.path)
    return agent, loaded, run


def act(agent: Any, batch: Any, deterministic: bool, envs: list) -> Any:
    """Actions for a batch; a searching agent (MCTS) also gets the live envs to plan from."""
    if agent.uses_simulator:
        return agent.act(batch, deterministic=deterministic, envs=envs)
    return agent.act(batch, deterministic=deterministic)


def batch1(obs: Any) -> Any:
    import numpy as np

    if isinstance(obs, dict):
        return {k: np.asarray(v)[None] for k, v in obs.items()}
    return np.asarray(obs)[None]
