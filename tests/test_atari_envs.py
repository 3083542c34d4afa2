"""Atari worlds: registration, the Gymnasium and SB3 contracts, the two protocols,
episodic life, and the two vector backends (ALE's C++ vector env and our single envs).

Scores are checked against ALE's raw ``AtariVectorEnv`` (no life signal, no clipping) fed
the same seed and actions: it plays the very same games, so its sums are the real scores.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from ale_py.vector_env import AtariVectorEnv

from pilot.envs import list_envs
from pilot.envs.atari import ATARI_GAMES, ROMS, atari_id, make_atari_vec
from pilot.errors import UserError

IDS = [atari_id(game) for game in ATARI_GAMES]
OBS_SPACE = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)


def random_actions(n_actions: int, steps: int, n_envs: int | None = None, seed: int = 0):
    shape = (steps,) if n_envs is None else (steps, n_envs)
    return np.random.default_rng(seed).integers(0, n_actions, shape)


# ------------------------------------------------------------------ registration / contracts
def test_every_game_is_registered_with_string_entry_point_limit_and_description():
    assert set(ATARI_GAMES) == {
        "Breakout", "Pong", "SpaceInvaders", "Seaquest", "BeamRider", "Qbert", "Enduro"
    }  # fmt: skip
    descriptions = list_envs()
    for env_id in IDS:
        spec = gym.spec(env_id)
        assert spec.entry_point == "pilot.envs.atari.env:AtariEnv"
        assert spec.max_episode_steps == 27_000  # 108k frames at frame skip 4
        assert descriptions[env_id].strip() and "\n" not in descriptions[env_id]


def test_observation_space_is_the_deepmind_stack():
    # Gymnasium's and SB3's check_env run over every registered id in test_envs.py.
    for env_id in IDS:
        env = gym.make(env_id)
        assert env.observation_space == OBS_SPACE
        env.close()


def test_rgb_array_render_is_the_full_colour_screen():
    env = gym.make("pilot/Atari-Pong-v0", render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (210, 160, 3) and frame.dtype == np.uint8
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) > 2  # a real picture, not a fill
    assert env.metadata["render_modes"] == ["rgb_array", "human"]
    assert env.metadata["render_fps"] == 15  # 60 Hz emulator, 4 frames per step
    env.close()


# ------------------------------------------------------------------ protocols
def test_deepmind_protocol_uses_minimal_actions_and_no_sticky_actions():
    env = gym.make("pilot/Atari-Breakout-v0").unwrapped
    assert env.action_space == gym.spaces.Discrete(4)
    assert env.action_meanings == ["NOOP", "FIRE", "RIGHT", "LEFT"]
    assert env.ale.getFloat("repeat_action_probability") == 0.0
    assert env.settings.noop_max == 30 and env.settings.fire_reset
    assert gym.make("pilot/Atari-Pong-v0").action_space.n == 6


def test_machado_protocol_uses_full_actions_and_sticky_actions():
    env = gym.make("pilot/Atari-Breakout-v0", protocol="machado").unwrapped
    assert env.action_space == gym.spaces.Discrete(18)
    assert env.ale.getFloat("repeat_action_probability") == pytest.approx(0.25)
    assert env.settings.noop_max == 0 and not env.settings.fire_reset
    vec = make_atari_vec("pilot/Atari-Breakout-v0", 1, seed=0, protocol="machado")
    assert vec.single_action_space == gym.spaces.Discrete(18)
    assert vec.settings.repeat_action_probability == pytest.approx(0.25)
    vec.close()


@pytest.mark.parametrize("game", ["Breakout", "Pong", "Seaquest"])
def test_minimal_actions_map_to_the_same_ale_actions_in_the_full_set(game):
    minimal = gym.make(atari_id(game)).unwrapped
    full = gym.make(atari_id(game), protocol="machado").unwrapped
    assert len(full.action_meanings) == 18
    index = full.minimal_action_indices
    assert [full.action_meanings[i] for i in index] == minimal.action_meanings
    np.testing.assert_array_equal(minimal.minimal_action_indices, np.arange(minimal.action_space.n))
    # the mapped actions on the full set play the minimal set's game, frame for frame
    actions = random_actions(minimal.action_space.n, 60, seed=3)
    on_full = gym.make(atari_id(game), full_action_space=True).unwrapped
    a = [minimal.reset(seed=5)[0]] + [minimal.step(x)[0] for x in actions]
    b = [on_full.reset(seed=5)[0]] + [on_full.step(index[x])[0] for x in actions]
    np.testing.assert_array_equal(np.stack(a), np.stack(b))


@pytest.mark.parametrize(
    ("protocol", "training"), [("machado", True), ("deepmind", False)], ids=["machado", "eval"]
)
def test_lives_are_lost_without_termination_unless_training_deepmind(protocol, training):
    env = gym.make("pilot/Atari-Breakout-v0", protocol=protocol, training=training)
    _, info = env.reset(seed=1)
    lives = [info["lives"]]
    for action in random_actions(18 if protocol == "machado" else 4, 1500):
        _, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            break
        lives.append(info["lives"])
    assert terminated and info["game_over"] and info["lives"] == 0
    assert lives[0] == 5 and lives[-1] == 1  # four lives lost inside one episode


# ------------------------------------------------------------------ determinism
def rollout(env: gym.Env, seed: int, actions: np.ndarray):
    obs, _ = env.reset(seed=seed)
    observations, rewards = [obs], []
    for action in actions:
        obs, reward, terminated, truncated, _ = env.step(action)
        observations.append(obs)
        rewards.append(reward)
        if terminated or truncated:
            observations.append(env.reset()[0])
    return np.stack(observations), np.array(rewards)


@pytest.mark.parametrize("protocol", ["deepmind", "machado"])
def test_single_env_same_seed_same_actions_same_trajectory(protocol):
    env_id = "pilot/Atari-Breakout-v0"
    a = gym.make(env_id, protocol=protocol, training=True)
    b = gym.make(env_id, protocol=protocol, training=True)
    actions = random_actions(a.action_space.n, 400)
    obs_a, rew_a = rollout(a, 7, actions)
    obs_b, rew_b = rollout(b, 7, actions)
    assert np.array_equal(obs_a, obs_b) and np.array_equal(rew_a, rew_b)
    obs_c, _ = rollout(b, 8, actions)  # another seed: other no-op start / sticky actions
    assert obs_c.shape != obs_a.shape or not np.array_equal(obs_a, obs_c)


def test_no_op_starts_depend_on_the_seed():
    env = gym.make("pilot/Atari-Pong-v0")
    starts = {env.reset(seed=s)[1]["episode_frame_number"] for s in range(8)}
    assert len(starts) >= 3  # 1..30 no-op frames drawn from np_random


@pytest.mark.parametrize("protocol", ["deepmind", "machado"])
def test_ale_vec_same_seed_same_actions_same_trajectory(protocol):
    runs = []
    for _ in range(2):
        vec = make_atari_vec("pilot/Atari-Breakout-v0", 2, seed=3, protocol=protocol)
        obs = [vec.reset()]
        rewards, dones = [], []
        for actions in random_actions(vec.single_action_space.n, 250, 2):
            o, r, term, trunc, _ = vec.step(actions)
            obs.append(o)
            rewards.append(r)
            dones.append(term | trunc)
        vec.close()
        runs.append((np.stack(obs), np.stack(rewards), np.stack(dones)))
    for x, y in zip(runs[0], runs[1], strict=True):
        assert np.array_equal(x, y)
    assert runs[0][2].any()  # the run crossed at least one episode end


# ------------------------------------------------------------------ episodic life (single env)
def test_episodic_life_ends_episodes_at_life_loss_but_keeps_the_game():
    env = gym.make("pilot/Atari-Breakout-v0", training=True)
    env.reset(seed=0)
    life_losses = []
    for action in random_actions(4, 2000):
        obs, reward, terminated, truncated, info = env.step(action)
        assert reward >= 0 and not truncated
        if not terminated:
            continue
        if info["game_over"]:
            break
        life_losses.append(info["lives"])
        next_obs, next_info = env.reset()  # the game goes on from the same screen
        assert np.array_equal(next_obs, obs)
        assert next_info["lives"] == info["lives"]
        assert next_info["episode_frame_number"] == info["episode_frame_number"]
    assert life_losses == [4, 3, 2, 1]
    assert info["game_over"] and info["lives"] == 0
    obs, info = env.reset()  # after the real game over, a new game
    assert info["lives"] == 5 and info["episode_frame_number"] <= 32
    assert not obs[:3].any() and obs[3].any()  # fresh frame stack


def test_single_env_rewards_are_never_clipped():
    env = gym.make("pilot/Atari-SpaceInvaders-v0", training=True)
    env.reset(seed=0)
    rewards = []
    for action in random_actions(6, 300):
        _, reward, terminated, truncated, _ = env.step(action)
        rewards.append(reward)
        if terminated or truncated:
            env.reset()
    assert max(rewards) >= 5  # invaders are worth 5 to 30 points


# ------------------------------------------------------------------ vector envs
@pytest.mark.parametrize(
    ("game", "lives", "steps"), [("Breakout", 5, 350), ("SpaceInvaders", 3, 500)]
)
def test_ale_vec_reports_whole_games_in_real_score(game, lives, steps):
    """Training envs end an episode per life and clip rewards; episodes are whole games."""
    n = 2
    vec = make_atari_vec(atari_id(game), n, seed=11, training=True)
    truth = AtariVectorEnv(
        ROMS[game], n, autoreset_mode="SameStep", reward_clipping=False, num_threads=1
    )
    obs = vec.reset()
    truth_obs, _ = truth.reset(seed=11)
    assert np.array_equal(obs, truth_obs)
    returns, lengths = np.zeros(n), np.zeros(n, int)
    games, episodes = [], []
    terminations = np.zeros(n, int)  # terminated steps in the current game of each env
    terminations_per_game, raw_rewards = [], []
    for actions in random_actions(vec.single_action_space.n, steps, n):
        obs, rewards, terminated, truncated, info = vec.step(actions)
        truth_obs, raw, truth_term, truth_trunc, _ = truth.step(actions)
        assert np.array_equal(obs, truth_obs)  # the same games are played
        assert np.array_equal(rewards, np.sign(raw)) and rewards.dtype == np.float32
        raw_rewards.append(raw)
        returns += raw
        lengths += 1
        terminations += terminated
        for i in np.flatnonzero(truth_term | truth_trunc):
            games.append((int(i), float(returns[i]), int(lengths[i])))
            terminations_per_game.append(int(terminations[i]))
            returns[i], lengths[i], terminations[i] = 0, 0, 0
        episodes += [(e.env_index, e.ret, e.length) for e in info.episodes]
        assert set(info.final_obs) == set(np.flatnonzero(terminated | truncated))
    vec.close()
    assert len(games) >= 2 and episodes == games
    assert set(terminations_per_game) == {lives}  # one terminated step per life
    if game == "SpaceInvaders":
        assert np.max(raw_rewards) >= 5 and any(ret > 1 for _, ret, _ in episodes)


@pytest.mark.parametrize("limit", [None, 202], ids=["full", "truncated"])
def test_backends_agree_bit_for_bit(limit):
    """Without no-op starts the two backends play identical games; compare everything."""
    kwargs = {"noop_max": 0} if limit is None else {"noop_max": 0, "max_episode_frames": limit}
    ale = make_atari_vec("pilot/Atari-Breakout-v0", 2, seed=0, training=True, **kwargs)
    ref = make_atari_vec(
        "pilot/Atari-Breakout-v0", 2, seed=5, training=True, backend="gym", **kwargs
    )
    assert ale.single_observation_space == ref.single_observation_space == OBS_SPACE
    assert ale.single_action_space == ref.single_action_space
    obs_a, obs_r = ale.reset(), ref.reset()
    assert obs_a.shape == obs_r.shape == (2, 4, 84, 84) and obs_a.dtype == obs_r.dtype == np.uint8
    assert np.array_equal(obs_a, obs_r)
    counts = {"life_loss": 0, "game_end": 0, "truncated": 0}
    episodes = []
    for actions in random_actions(4, 150 if limit else 350, 2):
        obs_a, rew_a, term_a, trunc_a, info_a = ale.step(actions)
        obs_r, rew_r, term_r, trunc_r, info_r = ref.step(actions)
        for x, y in [(obs_a, obs_r), (rew_a, rew_r), (term_a, term_r), (trunc_a, trunc_r)]:
            assert np.array_equal(x, y)
        assert set(info_a.final_obs) == set(info_r.final_obs)
        assert set(info_a.final_obs) == set(np.flatnonzero(term_a | trunc_a))
        ended = {e.env_index for e in info_a.episodes}
        for i, final in info_a.final_obs.items():
            assert np.array_equal(final, info_r.final_obs[i])
            if i in ended:  # a new game: the returned obs starts a fresh frame stack
                assert not obs_a[i][:3].any() and not np.array_equal(final, obs_a[i])
                counts["truncated" if trunc_a[i] else "game_end"] += 1
            else:  # a life loss: the game goes on from the same observation
                assert np.array_equal(final, obs_a[i])
                counts["life_loss"] += 1
        assert [(e.env_index, e.ret, e.length) for e in info_a.episodes] == [
            (e.env_index, e.ret, e.length) for e in info_r.episodes
        ]
        episodes += info_a.episodes
    ale.close()
    ref.close()
    if limit is None:
        assert counts["game_end"] >= 2 and counts["life_loss"] >= 4 * counts["game_end"]
    else:  # 202 frames = the 51st step of every game that survives that long
        assert counts["truncated"] >= 4
        assert all(e.length == 51 for e in episodes if e.length > 50)
        assert max(e.length for e in episodes) == 51


def test_eval_vec_rewards_are_raw_and_episodes_end_only_at_game_over():
    vec = make_atari_vec("pilot/Atari-SpaceInvaders-v0", 2, seed=2, training=False)
    vec.reset()
    rewards, terminated_steps, episodes = [], 0, []
    for actions in random_actions(6, 500, 2):
        _, r, term, _, info = vec.step(actions)
        rewards.append(r)
        terminated_steps += int(term.sum())
        episodes += info.episodes
    vec.close()
    assert np.max(rewards) >= 5
    assert terminated_steps == len(episodes) >= 1


# ------------------------------------------------------------------ user errors
def test_user_errors_are_one_line():
    cases = [
        lambda: gym.make("pilot/Atari-Pong-v0", protocol="atari2600"),
        lambda: make_atari_vec("pilot/Atari-Pong-v0", 1, seed=0, protocol="machdo"),
        lambda: make_atari_vec("pilot/Atari-Pong-v0", 1, seed=0, backend="envpool"),
        lambda: make_atari_vec("pilot/Atari-Pong-v0", 1, seed=0, sticky=True),
        lambda: make_atari_vec("pilot/Atari-Tetris-v0", 1, seed=0),
    ]
    for make in cases:
        with pytest.raises(UserError) as err:
            make()
        assert "\n" not in str(err.value)
    with pytest.raises(UserError, match="machado"):
        make_atari_vec("pilot/Atari-Pong-v0", 1, seed=0, protocol="machdo")
