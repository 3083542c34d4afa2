"""Atari worlds: ``pilot/Atari-<Game>-v0`` ids and the batched envs agents train on.

Every id is one :class:`~pilot.envs.atari.env.AtariEnv` with DeepMind preprocessing
(84×84 grayscale, frame skip 4 with max-pooling, 4 stacked frames, channel-first). Two
evaluation protocols are selected by ``protocol=``: ``deepmind`` (no-op starts, minimal
action set) and ``machado`` (sticky actions 0.25, full action set, no life-loss signal).

:func:`make_atari_vec` gives the training path: ALE's C++ ``AtariVectorEnv`` (``ale``
backend, threads, fastest) or our single envs run in-process (``gym`` backend, the
reference the fast one is tested against). Both satisfy :class:`~pilot.envs.vector.VecEnv`.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import gymnasium as gym

from pilot.errors import UserError, close_matches

from ..vector import SyncVecEnv, VecEnv
from .env import MAX_EPISODE_FRAMES, AtariEnv, AtariSettings, resolve_settings
from .vector import AleVecEnv

#: Game name (as in our ids and score tables) -> ROM id inside ale-py.
ROMS: dict[str, str] = {
    "Breakout": "breakout",
    "Pong": "pong",
    "SpaceInvaders": "space_invaders",
    "Seaquest": "seaquest",
    "BeamRider": "beam_rider",
    "Qbert": "qbert",
    "Enduro": "enduro",
}

#: The games we register, in the order `pilot list` shows them.
ATARI_GAMES: tuple[str, ...] = tuple(ROMS)

_DESCRIPTIONS: dict[str, str] = {
    "Breakout": "Atari Breakout: bounce the ball to break the bricks (5 lives)",
    "Pong": "Atari Pong: first to 21 points against the computer paddle",
    "SpaceInvaders": "Atari Space Invaders: shoot the descending aliens, dodge their shots",
    "Seaquest": "Atari Seaquest: submarine rescues divers, shoots sharks, surfaces for air",
    "BeamRider": "Atari Beam Rider: clear sectors of enemy saucers along light beams",
    "Qbert": "Atari Q*bert: hop on every cube to change its colour, avoid the enemies",
    "Enduro": "Atari Enduro: endurance car race, pass enough cars each day",
}

#: Registered agent-step limit: 108,000 frames at frame skip 4.
MAX_EPISODE_STEPS = MAX_EPISODE_FRAMES // 4

#: Keyword arguments both backends of :func:`make_atari_vec` accept.
VEC_KWARGS = (
    "protocol",
    "noop_max",
    "repeat_action_probability",
    "full_action_space",
    "max_episode_frames",
)

BACKENDS = ("ale", "gym")


def atari_id(game: str) -> str:
    """``pilot/Atari-<Game>-v0`` for a game name such as ``Breakout``."""
    return f"pilot/Atari-{game}-v0"


def atari_game(env_id: str) -> str:
    """The game name of one of our Atari ids (``pilot/Atari-Pong-v0`` -> ``Pong``)."""
    for game in ATARI_GAMES:
        if env_id == atari_id(game):
            return game
    ids = [atari_id(g) for g in ATARI_GAMES]
    raise UserError(f"unknown Atari environment '{env_id}'{close_matches(env_id, ids)}")


def register_atari(descriptions: dict[str, str]) -> None:
    """Register every game with Gymnasium (string entry point, 27,000-step limit)."""
    for game, rom in ROMS.items():
        env_id = atari_id(game)
        if env_id not in gym.registry:
            gym.register(
                env_id,
                entry_point="pilot.envs.atari.env:AtariEnv",
                kwargs={"game": rom},
                max_episode_steps=MAX_EPISODE_STEPS,
            )
        descriptions[env_id] = _DESCRIPTIONS[game]


def make_atari_vec(
    env_id: str,
    n_envs: int,
    seed: int,
    training: bool = True,
    backend: str = "ale",
    num_threads: int = 0,
    **kwargs: Any,
) -> VecEnv:
    """``n_envs`` copies of an Atari id with the :class:`~pilot.envs.vector.VecEnv` contract.

    ``training=True`` clips the returned rewards to their sign and, under the ``deepmind``
    protocol, ends the learner's episode at each life loss; episode statistics stay whole
    games in the real score either way. ``backend="ale"`` steps the games on ALE's C++
    threads (``num_threads=0``: one per core, at most ``n_envs``); ``backend="gym"`` runs
    our single envs in this process. ``kwargs``: see :data:`VEC_KWARGS`.
    """
    game = atari_game(env_id)
    if backend not in BACKENDS:
        raise UserError(
            f"unknown Atari backend '{backend}'{close_matches(str(backend), BACKENDS)}; "
            f"choose one of {', '.join(BACKENDS)}"
        )
    unknown = [k for k in kwargs if k not in VEC_KWARGS]
    if unknown:
        raise UserError(
            f"unknown Atari option '{unknown[0]}'{close_matches(unknown[0], VEC_KWARGS)}; "
            f"known: {', '.join(VEC_KWARGS)}"
        )
    if n_envs < 1:
        raise UserError(f"n_envs must be at least 1, got {n_envs}")
    settings = resolve_settings(training=training, **kwargs)
    if backend == "gym":
        make = partial(gym.make, env_id, training=training, **kwargs)
        return SyncVecEnv([make] * n_envs, seed=seed, clip_reward=training)
    return AleVecEnv(
        ROMS[game], n_envs, seed, settings, clip_reward=training, num_threads=num_threads
    )


__all__ = [
    "ATARI_GAMES",
    "AleVecEnv",
    "AtariEnv",
    "AtariSettings",
    "ROMS",
    "atari_game",
    "atari_id",
    "make_atari_vec",
    "register_atari",
    "resolve_settings",
]
