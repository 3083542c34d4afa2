"""ALE's C++ ``AtariVectorEnv`` behind the :class:`~pilot.envs.vector.VecEnv` contract.

``AtariVectorEnv`` steps many games on C++ threads with the same preprocessing as
:class:`~pilot.envs.atari.env.AtariEnv`. Three of its behaviours shape this adapter:

* Its ``episodic_life`` option restarts the *whole game* at every life loss, so a game
  would never reach its real end. We use ``life_loss_info`` instead: a life loss reports
  ``terminated`` while the game keeps running (the episodic-life trick).
* Its rewards carry no raw score once ``reward_clipping`` is on (there is no info key for
  it), so we ask for raw rewards and clip them here, which keeps the real score.
* In ``SameStep`` autoreset mode ``info["final_obs"]`` holds the last observation of the
  envs it restarted on this step; the rows of other envs are not meaningful. A step that
  lost a life without ending the game is not restarted: its returned observation is both
  the last one of the learner's episode and the first one of the next.

Which envs were restarted is not reported either. Info carries ``lives`` and
``episode_frame_number`` (frames since the game started, reset by a restart). A game goes
on after a terminated step exactly when the life counter dropped to a positive value and
the episode frame number advanced by one step's frames; any other terminated or truncated
step restarted the game.

Without no-op starts the two backends play bit-identical games (tested). With them, ALE
draws the start from its own generator (0 to ``noop_max - 1`` frames, FIRE included)
where :class:`~pilot.envs.atari.env.AtariEnv` draws 1 to ``noop_max`` frames after FIRE
from ``np_random``: the same protocol, different random starts.
"""

from __future__ import annotations

import numpy as np
from ale_py.vector_env import AtariVectorEnv

from ..vector import Episode, StepInfo
from .env import FRAME_SIZE, FRAME_SKIP, STACK, AtariSettings


class AleVecEnv:
    """``n_envs`` games on ALE's C++ threads, with the ``VecEnv`` contract of ``pilot.envs``.

    Env ``i`` is seeded with ``seed + i`` at the first :meth:`reset`; later resets continue
    each env's own generators. Rewards are clipped to their sign when ``clip_reward`` is
    set, while :class:`~pilot.envs.vector.Episode` records carry the real score of whole
    games and their length in agent steps.
    """

    def __init__(
        self,
        game: str,
        n_envs: int,
        seed: int,
        settings: AtariSettings,
        clip_reward: bool = True,
        num_threads: int = 0,
    ) -> None:
        self.settings = settings
        self.clip_reward = clip_reward
        self.num_envs = n_envs
        self.seed = seed
        self._env = AtariVectorEnv(
            game,
            n_envs,
            num_threads=num_threads,
            autoreset_mode="SameStep",
            max_num_frames_per_episode=settings.max_episode_frames,
            repeat_action_probability=settings.repeat_action_probability,
            full_action_space=settings.full_action_space,
            img_height=FRAME_SIZE,
            img_width=FRAME_SIZE,
            grayscale=True,
            stack_num=STACK,
            frameskip=FRAME_SKIP,
            maxpool=True,
            noop_max=settings.noop_max,
            episodic_life=False,  # would restart the game at each life loss; see module doc
            life_loss_info=settings.episodic_life,
            reward_clipping=False,  # clipped here so that the real score stays known
            use_fire_reset=settings.fire_reset,
        )
        self.single_observation_space = self._env.single_observation_space
        self.single_action_space = self._env.single_action_space
        self._seeded = False
        self._returns = np.zeros(n_envs, np.float64)
        self._lengths = np.zeros(n_envs, np.int64)
        self._lives = np.zeros(n_envs, np.int32)
        self._frame = np.zeros(n_envs, np.int32)

    def reset(self) -> np.ndarray:
        obs, info = self._env.reset(seed=None if self._seeded else self.seed)
        self._seeded = True
        self._returns[:] = 0
        self._lengths[:] = 0
        self._lives = info["lives"]
        self._frame = info["episode_frame_number"]
        return obs

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, StepInfo]:
        actions = np.asarray(actions)
        if actions.dtype != np.int64 and actions.dtype != np.int32:
            actions = actions.astype(np.int64)
        obs, raw, terminated, truncated, info = self._env.step(actions)
        rewards = raw.astype(np.float32)
        self._returns += rewards
        self._lengths += 1
        lives, frame = info["lives"], info["episode_frame_number"]
        step_info = StepInfo()
        done = terminated | truncated
        if done.any():
            ended = done
            if self.settings.episodic_life:
                went_on = (
                    terminated
                    & ~truncated
                    & (lives > 0)
                    & (lives < self._lives)
                    & (frame == self._frame + FRAME_SKIP)
                )
                ended = done & ~went_on
                for i in np.flatnonzero(went_on):
                    step_info.final_obs[int(i)] = obs[i].copy()
            if ended.any():
                final = info["final_obs"]
                for i in np.flatnonzero(ended):
                    step_info.final_obs[int(i)] = final[i].copy()
                    step_info.episodes.append(
                        Episode(int(i), float(self._returns[i]), int(self._lengths[i]))
                    )
                self._returns[ended] = 0
                self._lengths[ended] = 0
        self._lives, self._frame = lives, frame
        if self.clip_reward:
            rewards = np.sign(rewards)
        return obs, rewards, terminated, truncated, step_info

    def close(self) -> None:
        self._env.close()
