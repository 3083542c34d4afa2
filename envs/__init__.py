"""Environments: registration of every ``pilot/...`` id and the factories agents use.

Importing ``pilot.envs`` registers all ids with Gymnasium (string entry points, time limits
through ``max_episode_steps``), so ``gymnasium.make("pilot/Atari-Pong-v0")`` works too.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import load_env_creator

from pilot.errors import UserError, close_matches

from .atari import ATARI_GAMES, make_atari_vec, register_atari
from .driving import register_driving
from .navigation import register_navigation
from .probes import register_probes
from .vector import SyncVecEnv, VecEnv

#: id -> one-line description, for `pilot list`
DESCRIPTIONS: dict[str, str] = {}

register_probes(DESCRIPTIONS)
register_atari(DESCRIPTIONS)
register_navigation(DESCRIPTIONS)
register_driving(DESCRIPTIONS)

#: Gymnasium ids we document as supported beyond our own (any registered id works).
CLASSIC = {
    "CartPole-v1": "Gymnasium classic control: balance a pole on a cart (discrete, 500 steps)",
    "Acrobot-v1": "Gymnasium classic control: swing a two-link arm up (discrete)",
    "MountainCar-v0": "Gymnasium classic control: drive up a hill with momentum (discrete)",
    "Pendulum-v1": "Gymnasium classic control: swing up a pendulum (continuous torque)",
    "MountainCarContinuous-v0": "Gymnasium classic control: mountain car with continuous force",
}


def is_atari(env_id: str) -> bool:
    return env_id.startswith("pilot/Atari-")


def check_id(env_id: str) -> None:
    """Raise a :class:`UserError` naming close matches when ``env_id`` is not registered."""
    if env_id not in gym.registry:
        raise UserError(
            f"unknown environment '{env_id}'{close_matches(env_id, list(gym.registry))}; see `pilot list`"
        )


def make_env(env_id: str, render_mode: str | None = None, **kwargs: Any) -> gym.Env:
    """One env by id. ``training=True`` (Atari) adds episodic life; rewards are never
    clipped here (the vector layer clips training rewards and keeps the real score).

    Unknown keyword arguments are a :class:`UserError`, not a traceback.
    """
    check_id(env_id)
    if render_mode is not None:
        _check_render_mode(env_id, render_mode)
    if not is_atari(env_id):
        kwargs.pop("training", None)
    try:
        return gym.make(env_id, render_mode=render_mode, **kwargs)
    except TypeError as exc:
        raise UserError(f"bad options for {env_id}: {exc}") from None


def _check_render_mode(env_id: str, render_mode: str) -> None:
    """Refuse a render mode the env does not declare before ``gym.make`` sees it:
    Gymnasium would print a warning first, and the error would no longer be one line."""
    entry = gym.spec(env_id).entry_point
    creator = load_env_creator(entry) if isinstance(entry, str) else entry
    modes = list(getattr(creator, "metadata", {}).get("render_modes", []))
    if render_mode not in modes:
        raise UserError(
            f"{env_id} cannot render as '{render_mode}'; its render modes: "
            f"{', '.join(modes) if modes else 'none (it draws nothing)'}"
        )


def make_vec_env(
    env_id: str, n_envs: int, seed: int, training: bool = True, **kwargs: Any
) -> VecEnv:
    """Batched envs with the :class:`~pilot.envs.vector.VecEnv` contract.

    Atari ids use ALE's C++ ``AtariVectorEnv`` (threads, same preprocessing); everything
    else runs Gymnasium envs in-process.
    """
    check_id(env_id)
    if is_atari(env_id):
        return make_atari_vec(env_id, n_envs, seed=seed, training=training, **kwargs)
    return SyncVecEnv([lambda: make_env(env_id, **kwargs) for _ in range(n_envs)], seed=seed)


def list_envs() -> dict[str, str]:
    """Our ids and the documented Gymnasium ids with a one-line description each."""
    return {**DESCRIPTIONS, **CLASSIC}


__all__ = ["ATARI_GAMES", "VecEnv", "is_atari", "list_envs", "make_env", "make_vec_env"]
