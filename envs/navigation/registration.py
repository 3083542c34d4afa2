"""Registration of the navigation ids (string entry points, time limits, descriptions)."""

from __future__ import annotations

import gymnasium as gym

#: id -> (entry point, max_episode_steps, one-line description)
NAVIGATION: dict[str, tuple[str, int, str]] = {
    "pilot/Nav-Grid-v0": (
        "pilot.envs.navigation.env:GridNavEnv",
        100,
        "navigation: 8-connected grid robot to a goal on seeded maps (local windows + goal vector)",
    ),
    "pilot/Nav-Continuous-v0": (
        "pilot.envs.navigation.env:ContinuousNavEnv",
        400,
        "navigation: unicycle robot with a range sensor to a goal on seeded maps (Box actions)",
    ),
}


def register_navigation(descriptions: dict[str, str]) -> None:
    """Register the navigation ids with Gymnasium and add their descriptions."""
    for env_id, (entry_point, steps, text) in NAVIGATION.items():
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=entry_point, max_episode_steps=steps)
        descriptions[env_id] = text
