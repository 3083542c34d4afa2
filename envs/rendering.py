"""Rendering conventions shared by our envs."""

from __future__ import annotations

import gymnasium as gym


def warn_no_render_mode(env: gym.Env) -> None:
    """Gymnasium's convention: ``render()`` without a render mode warns and returns None."""
    env_id = env.spec.id if env.spec is not None else type(env).__name__
    gym.logger.warn(
        "render() was called without a render_mode and returns nothing; make the env "
        f'with one, e.g. gym.make("{env_id}", render_mode="rgb_array")'
    )
