"""One Atari game with DeepMind preprocessing, written directly on ``ale_py.ALEInterface``.

Why not a chain of Gymnasium wrappers: frame skip, max-pooling, grayscale, resizing,
stacking, no-op/fire starts and episodic life all touch the same emulator state, and the
episodic-life trick needs to know whether the *game* is over, which a wrapper chain hides
behind ``terminated``. One class keeps these rules in one place, does the per-frame work
in preallocated buffers, and mirrors ALE's C++ ``AtariVectorEnv`` (the training path) step
for step, so both backends of :func:`pilot.envs.atari.make_atari_vec` report the same
episodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ale_py
import cv2
import gymnasium as gym
import numpy as np
from ale_py import roms
from gymnasium import spaces

from pilot.errors import UserError, close_matches

#: Emulator frames per agent step (both protocols; Mnih et al. 2015, Machado et al. 2018).
FRAME_SKIP = 4
#: Preprocessed frame side (Mnih et al. 2015).
FRAME_SIZE = 84
#: Frames stacked into one observation.
STACK = 4
#: A game is cut after 108,000 frames (30 minutes of play) = 27,000 agent steps.
MAX_EPISODE_FRAMES = 108_000

PROTOCOLS = ("deepmind", "machado")

#: ε of the ε-greedy policy each protocol evaluates with. A greedy agent that never
#: presses FIRE after losing a life would otherwise play until the 27,000-step cut.
#: ``deepmind``: 0.05 (Mnih et al. 2015, Methods: "ε-greedy policy with ε = 0.05").
#: ``machado``: Machado et al. (2018) score the agent's own training episodes and name no
#: evaluation ε; Dopamine's DQN, which follows their sticky actions, evaluates with
#: ε = 0.001 (dopamine/agents/dqn/configs/dqn.gin: ``DQNAgent.epsilon_eval = 0.001``).
EVAL_EPSILON = {"deepmind": 0.05, "machado": 0.001}


@dataclass(frozen=True)
class AtariSettings:
    """Emulator and preprocessing settings that a protocol (and overrides) resolve to."""

    protocol: str
    """``deepmind`` (Mnih et al. 2015) or ``machado`` (Machado et al. 2018)."""
    repeat_action_probability: float
    """Sticky actions: chance that the emulator repeats the previous action on a frame."""
    full_action_space: bool
    """All 18 joystick actions instead of the game's minimal set."""
    noop_max: int
    """A new game starts with 1..noop_max no-op frames (0 disables no-op starts)."""
    fire_reset: bool
    """Press FIRE once at the start of each game when the action set has FIRE."""
    episodic_life: bool
    """A life loss ends the learner's episode (terminated) but not the game."""
    max_episode_frames: int
    """Frames of play after which a game is truncated."""


def resolve_settings(
    protocol: str = "deepmind",
    training: bool = False,
    noop_max: int | None = None,
    repeat_action_probability: float | None = None,
    full_action_space: bool | None = None,
    max_episode_frames: int = MAX_EPISODE_FRAMES,
) -> AtariSettings:
    """The settings of ``protocol``, with explicit overrides; bad values are a UserError.

    DeepMind (Mnih et al. 2015): minimal action set, up to 30 no-op starts, fire reset, no
    sticky actions, and (for training only) a life loss ends the learner's episode.
    Machado et al. (2018): sticky actions with probability 0.25, the full 18-action set,
    no no-op starts and no life-loss signal, in training and evaluation alike.
    """
    if protocol not in PROTOCOLS:
        raise UserError(
            f"unknown Atari protocol '{protocol}'{close_matches(str(protocol), PROTOCOLS)}; "
            f"choose one of {', '.join(PROTOCOLS)}"
        )
    deepmind = protocol == "deepmind"
    settings = AtariSettings(
        protocol=protocol,
        repeat_action_probability=(
            (0.0 if deepmind else 0.25)
            if repeat_action_probability is None
            else float(repeat_action_probability)
        ),
        full_action_space=(not deepmind) if full_action_space is None else bool(full_action_space),
        noop_max=(30 if deepmind else 0) if noop_max is None else int(noop_max),
        fire_reset=deepmind,
        episodic_life=deepmind and bool(training),
        max_episode_frames=int(max_episode_frames),
    )
    if not 0.0 <= settings.repeat_action_probability <= 1.0:
        raise UserError(
            f"repeat_action_probability must lie in [0, 1], got {settings.repeat_action_probability}"
        )
    if settings.noop_max < 0:
        raise UserError(f"noop_max must be >= 0, got {settings.noop_max}")
    if settings.max_episode_frames < 1:
        raise UserError(f"max_episode_frames must be >= 1, got {settings.max_episode_frames}")
    return settings


def rom_path(game: str) -> str:
    """Path of a ROM shipped inside ale-py (``game`` in snake_case, e.g. ``space_invaders``)."""
    path = roms.get_rom_path(game) if game in roms.get_all_rom_ids() else None
    if path is None:
        raise UserError(f"unknown Atari ROM '{game}'{close_matches(game, roms.get_all_rom_ids())}")
    return str(path)


class AtariEnv(gym.Env):
    """An Atari 2600 game from the Arcade Learning Environment, preprocessed as in DQN.

    ## Description

    The ROM runs in ALE's Stella emulator. Each agent step repeats the chosen action for
    4 emulator frames, takes the pixel-wise maximum of the last two frames (Atari sprites
    flicker between frames), converts it to grayscale, resizes it to 84×84 with area
    interpolation and stacks the last 4 such frames, following Mnih et al. (2015). Two
    evaluation protocols exist: ``deepmind`` (Mnih et al. 2015: no-op starts, minimal
    action set) and ``machado`` (Machado et al. 2018: sticky actions 0.25, full action
    set, no life-loss signal, no no-op starts).

    ## Action Space

    ``Discrete(n)``: the game's minimal action set (e.g. 4 for Breakout, 6 for Pong) under
    ``deepmind``, all 18 joystick actions under ``machado``. The ALE actions behind the
    indices are in :attr:`action_meanings`.

    ## Observation Space

    ``Box(0, 255, (4, 84, 84), uint8)``, channel-first: the last 4 preprocessed frames,
    oldest first. At the start of a game the older slots are zero.

    ## Rewards

    The game's score change over the 4 frames, unclipped (the score the leaderboards
    report). Clipping to the sign for training is done by the vector layer, which keeps
    the real score for episode statistics.

    ## Starting State

    A new game starts with FIRE pressed once (``deepmind``, for games whose action set has
    FIRE, which some games need to start) and then 1 to 30 no-op frames drawn from
    ``self.np_random`` (``deepmind``), so that agents cannot replay one memorised start.

    ## Episode End

    Terminated when the game is over. With ``training=True`` under ``deepmind`` a life loss
    also terminates (``info["game_over"] = False``); the following ``reset()`` then keeps
    playing the same game from the current screen instead of starting a new one (the
    episodic-life trick of Mnih et al. 2015), and only the real end of a game carries
    ``info["game_over"] = True``. Truncated after 108,000 frames of play in one game
    (27,000 agent steps; the registered ``max_episode_steps`` agrees).

    ## Arguments

    ```python
    gymnasium.make("pilot/Atari-Breakout-v0", protocol="deepmind", training=False,
                   render_mode=None)
    ```

    * ``protocol``: ``"deepmind"`` or ``"machado"`` (anything else is a ``UserError``).
    * ``training``: under ``deepmind``, a life loss ends the learner's episode.
    * ``render_mode``: ``"rgb_array"`` returns the full-colour 210×160×3 screen;
      ``"human"`` shows it in ALE's own window.
    * ``noop_max``, ``repeat_action_probability``, ``full_action_space``,
      ``max_episode_frames``: override one setting of the protocol (e.g. evaluate a
      minimal-action agent with sticky actions).

    ## Version History

    * v0: first version.
    """

    metadata = {"render_modes": ["rgb_array", "human"], "render_fps": 60 // FRAME_SKIP}

    def __init__(
        self,
        game: str,
        protocol: str = "deepmind",
        training: bool = False,
        render_mode: str | None = None,
        noop_max: int | None = None,
        repeat_action_probability: float | None = None,
        full_action_space: bool | None = None,
        max_episode_frames: int = MAX_EPISODE_FRAMES,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise UserError(
                f"unknown render_mode '{render_mode}'; choose one of "
                f"{', '.join(self.metadata['render_modes'])}"
            )
        self.game = game
        self.render_mode = render_mode
        self.settings = resolve_settings(
            protocol,
            training,
            noop_max=noop_max,
            repeat_action_probability=repeat_action_probability,
            full_action_space=full_action_space,
            max_episode_frames=max_episode_frames,
        )
        self._rom = rom_path(game)

        ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)  # no banner per env
        self.ale = ale_py.ALEInterface()
        self.ale.setFloat("repeat_action_probability", self.settings.repeat_action_probability)
        if render_mode == "human":
            self.ale.setBool("display_screen", True)
        self.ale.loadROM(self._rom)
        self._ale_seeded = False  # ALE is (re)seeded from self.np_random at the first reset

        self._actions = (
            self.ale.getLegalActionSet()
            if self.settings.full_action_space
            else self.ale.getMinimalActionSet()
        )
        self._press_fire = self.settings.fire_reset and ale_py.Action.FIRE in self._actions
        self.action_space = spaces.Discrete(len(self._actions))
        self.observation_space = spaces.Box(0, 255, (STACK, FRAME_SIZE, FRAME_SIZE), np.uint8)

        height, width = self.ale.getScreenDims()
        self._raw = np.zeros((2, height, width), np.uint8)  # last two frames of a step
        self._stack = np.zeros((STACK, FRAME_SIZE, FRAME_SIZE), np.uint8)
        self._lives = 0
        self._game_frames = 0  # frames of play in the current game (no-op starts excluded)
        self._continue_game = False  # the last step lost a life: reset() keeps playing

    @property
    def action_meanings(self) -> list[str]:
        """Names of the ALE actions behind the action indices (e.g. ``NOOP``, ``FIRE``)."""
        return [a.name for a in self._actions]

    @property
    def minimal_action_indices(self) -> np.ndarray:
        """Where the game's minimal actions sit in this env's action set, in the minimal
        set's order: ``actions[minimal_action_indices[i]]`` is minimal action ``i``. On the
        full set this maps an agent trained on the minimal set to the full set's indices
        (ALE's minimal set is a subset of its 18 legal actions)."""
        here = list(self._actions)
        return np.array([here.index(a) for a in self.ale.getMinimalActionSet()], np.int64)

    # ------------------------------------------------------------------ gymnasium API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None or not self._ale_seeded:
            # ALE's own generator (sticky actions) is seeded from ours; it takes effect when
            # the ROM is loaded again.
            self.ale.setInt("random_seed", int(self.np_random.integers(0, 2**31 - 1)))
            self.ale.loadROM(self._rom)
            self._ale_seeded = True
            self._continue_game = False
        if self._continue_game:
            # Episodic life: the learner's episode ended with a life loss, the game did not.
            # Keep playing from the current screen (no emulator step, so no reward is lost).
            self._continue_game = False
            return self._stack.copy(), self._info(game_over=False)
        self._new_game()
        return self._stack.copy(), self._info(game_over=False)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        index = int(action)
        if not 0 <= index < len(self._actions):
            raise ValueError(f"action {action!r} outside Discrete({len(self._actions)})")
        ale_action = self._actions[index]
        ale = self.ale
        reward = 0
        game_over = truncated = False
        for k in range(FRAME_SKIP):
            reward += ale.act(ale_action)
            self._game_frames += 1
            game_over = ale.game_over(with_truncation=False)
            truncated = self._game_frames >= self.settings.max_episode_frames
            if game_over or truncated:
                # Like ALE's vector env, a game that ends within a step skips the rest of it
                # and does not capture its later frames: the final observation reuses the
                # last frames seen. Both backends then agree to the bit (the frame is never
                # bootstrapped from after a game over).
                break
            if k >= FRAME_SKIP - 2:  # the last two frames, newest in slot 0 (as ALE's)
                ale.getScreenGrayscale(self._raw[FRAME_SKIP - 1 - k])
        self._push_frame(np.maximum(self._raw[0], self._raw[1]))
        lives = ale.lives()
        # A life counts as lost when the counter drops and lives remain (the last one ends
        # the game); the same rule as ALE's vector env and OpenAI Baselines.
        life_lost = self.settings.episodic_life and 0 < lives < self._lives
        self._lives = lives
        truncated = truncated and not game_over
        self._continue_game = life_lost and not (game_over or truncated)
        terminated = game_over or life_lost
        return (
            self._stack.copy(),
            float(reward),
            terminated,
            truncated,
            self._info(game_over=game_over or truncated),
        )

    def render(self) -> np.ndarray | None:
        """The full-colour 210×160×3 screen (``rgb_array``); ALE draws it in ``human`` mode."""
        if self.render_mode == "rgb_array":
            return self.ale.getScreenRGB()
        return None

    def close(self) -> None:
        """Nothing to release: the emulator is freed with the object."""

    # ------------------------------------------------------------------ snapshots
    def get_state(self) -> tuple:
        """A snapshot of the whole game for planning through the simulator: the emulator
        (``cloneState``, which carries ALE's sticky-action generator) and the frame stack,
        lives and counters that :meth:`step` reads. Restore it with :meth:`set_state`."""
        return (
            self.ale.cloneState(include_rng=True),
            self._raw.copy(),
            self._stack.copy(),
            self._lives,
            self._game_frames,
            self._continue_game,
        )

    def set_state(self, state: tuple) -> None:
        """Put the game back where :meth:`get_state` found it (same ROM and settings)."""
        ale_state, raw, stack, self._lives, self._game_frames, self._continue_game = state
        self.ale.restoreState(ale_state)
        self._raw[:] = raw
        self._stack[:] = stack

    def observation(self) -> np.ndarray:
        """The current observation (the frame stack), e.g. after :meth:`set_state`."""
        return self._stack.copy()

    # ------------------------------------------------------------------ internals
    def _new_game(self) -> None:
        ale = self.ale
        ale.reset_game()
        if self._press_fire:
            ale.act(ale_py.Action.FIRE)
        noops = (
            int(self.np_random.integers(1, self.settings.noop_max + 1))
            if self.settings.noop_max > 0
            else 0
        )
        for _ in range(noops):
            ale.act(ale_py.Action.NOOP)
            if ale.game_over(with_truncation=False):
                ale.reset_game()
        self._game_frames = 0
        self._lives = ale.lives()
        self._continue_game = False
        self._stack[:] = 0
        ale.getScreenGrayscale(self._raw[0])
        self._raw[1] = 0
        self._push_frame(self._raw[0])

    def _push_frame(self, frame: np.ndarray) -> None:
        self._stack[:-1] = self._stack[1:]
        cv2.resize(
            frame, (FRAME_SIZE, FRAME_SIZE), dst=self._stack[-1], interpolation=cv2.INTER_AREA
        )

    def _info(self, game_over: bool) -> dict[str, Any]:
        return {
            "lives": self._lives,
            "game_over": game_over,
            "episode_frame_number": self.ale.getEpisodeFrameNumber(),
        }
