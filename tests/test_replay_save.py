"""Saving the replay buffer beside a checkpoint and resuming with it (--save-replay)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from pilot.agents import build_config, load_agent, restore_replay, save_agent
from pilot.agents.common import checkpoint as ckpt
from pilot.agents.common.recorder import Recorder
from pilot.agents.common.replay import PrioritizedReplayBuffer, ReplayBuffer
from pilot.agents.dqn import DQN
from pilot.cli import main
from pilot.errors import UserError

FRAMES = gym.spaces.Box(0, 255, (4, 6, 5), np.uint8)
VEC = gym.spaces.Box(-1, 1, (3,), np.float32)
DICT = gym.spaces.Dict({"camera": gym.spaces.Box(0, 255, (3, 6, 5), np.uint8), "state": VEC})


def _obs(space: gym.Space, n: int, rng: np.random.Generator):
    if isinstance(space, gym.spaces.Dict):
        return {k: _obs(s, n, rng) for k, s in space.spaces.items()}
    if space.dtype == np.uint8:
        return rng.integers(0, 256, (n, *space.shape), np.uint8)
    return rng.random((n, *space.shape), dtype=np.float32)


def _fill(buf: ReplayBuffer, space: gym.Space, steps: int, seed: int = 0) -> None:
    """Random transitions; frame stacks shift by one frame per step, as envs make them."""
    rng = np.random.default_rng(seed)
    n = buf.n_envs
    obs = _obs(space, n, rng)
    for _ in range(steps):
        if space is FRAMES:
            nxt = np.concatenate([obs[:, 1:], rng.integers(0, 256, (n, 1, 6, 5), np.uint8)], 1)
        else:
            nxt = _obs(space, n, rng)
        ended = rng.random(n) < 0.05
        buf.add(obs, nxt, rng.integers(0, 4, n), rng.random(n), ended, np.zeros(n, bool))
        obs = nxt


def _roundtrip(arrays: dict) -> dict:
    """Through an .npz as the checkpoint writes it, loaded as it loads it."""
    f = io.BytesIO()
    np.savez(f, **arrays)
    f.seek(0)
    with np.load(f, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


@pytest.mark.parametrize("space", [VEC, FRAMES, DICT], ids=["vector", "frames", "dict"])
@pytest.mark.parametrize("cls", [ReplayBuffer, PrioritizedReplayBuffer])
def test_saved_buffer_samples_exactly_like_the_original(space, cls):
    buf = cls(space, capacity=400, n_envs=2, n_step=3, gamma=0.9)
    _fill(buf, space, steps=150)
    state = buf.state()
    if space is FRAMES:  # the frame ring is saved only as far as it was written
        ring = buf.stores[None].ring_size
        assert state["obs.frames"].shape[1] < ring
    copy = cls(space, capacity=400, n_envs=2, n_step=3, gamma=0.9)
    copy.load_state(_roundtrip(state))
    assert len(copy) == len(buf) > 0
    a, b = buf.sample(64, np.random.default_rng(5)), copy.sample(64, np.random.default_rng(5))
    for name in ("actions", "rewards", "discounts", "weights", "indices"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    for x, y in [(a.obs, b.obs), (a.next_obs, b.next_obs)]:
        for k in x if isinstance(x, dict) else [None]:
            np.testing.assert_array_equal(x if k is None else x[k], y if k is None else y[k])
    # it goes on storing where the original left off, less the n-step windows of the
    # episodes running at the save (a resumed run starts new episodes)
    pending = sum(len(w) for w in buf._windows)
    _fill(buf, space, steps=20, seed=1)
    _fill(copy, space, steps=20, seed=1)
    assert len(buf) - len(copy) == pending > 0


def test_a_buffer_of_another_shape_is_refused():
    buf = ReplayBuffer(VEC, capacity=100, n_envs=2)
    _fill(buf, VEC, 10)
    other = ReplayBuffer(gym.spaces.Box(-1, 1, (4,), np.float32), capacity=100, n_envs=2)
    with pytest.raises(ValueError, match="obs.obs"):
        other.load_state(_roundtrip(buf.state()))
    with pytest.raises(ValueError, match="differ"):
        PrioritizedReplayBuffer(VEC, 100, n_envs=2).load_state(_roundtrip(buf.state()))


PROBE = "pilot/Probe-Constant-v0"


def _agent(**overrides) -> DQN:
    values = {"learning_starts": 100, "log_every": 10, **overrides}
    return DQN(PROBE, build_config("dqn", PROBE, overrides=values), seed=0, device="cpu")


def test_resumed_dqn_with_its_replay_updates_at_once(tmp_path):
    """Without the replay a resume waits learning_starts (100) steps before updating
    (tests/test_dqn.py); with it, the first 50 steps after the resume already update."""
    first = _agent()
    first.learn(300, Recorder(None, 300))
    save_agent(first, tmp_path, replay=True)
    meta = ckpt.read_meta(tmp_path)
    assert meta["replay"]["collected"] == 300 and (tmp_path / meta["replay"]["file"]).is_file()

    resumed, loaded = load_agent(tmp_path, device="cpu", weights_only=False)
    assert restore_replay(resumed, loaded) == len(first.replay)
    before = [p.clone() for p in resumed.q.parameters()]
    rec = Recorder(None, 350)
    resumed.learn(350, rec)
    assert rec.metrics["train/loss"], "updates began right after the resume"
    assert not all(torch.equal(x, y) for x, y in zip(before, resumed.q.parameters(), strict=True))
    assert rec.metrics["train/buffer_size"][0][1] > 300  # the old transitions are still there


def test_exploration_random_stream_continues_across_a_resume(tmp_path):
    agent = _agent()
    agent.learn(50, Recorder(None, 50))
    save_agent(agent, tmp_path)
    resumed, _ = load_agent(tmp_path, device="cpu", weights_only=False)
    assert resumed.rng.random() == agent.rng.random()


def test_only_the_newest_replay_is_kept(tmp_path):
    agent = _agent(checkpoint_every=0)
    for total in (120, 160, 200):
        agent.learn(total, Recorder(None, total))
        save_agent(agent, tmp_path, replay=True)
    assert sorted(p.name for p in tmp_path.glob("*.replay.npz")) == ["step_000000200.replay.npz"]
    assert len(list(tmp_path.glob("step_*.pt"))) == 3


def test_damaged_or_pickled_replays_are_refused(tmp_path):
    agent = _agent()
    agent.learn(150, Recorder(None, 150))
    pt = save_agent(agent, tmp_path, replay=True)
    meta = ckpt.read_meta(tmp_path)
    path = tmp_path / meta["replay"]["file"]
    data = path.read_bytes()
    path.write_bytes(data[:1000])
    with pytest.raises(UserError, match="truncated"):
        ckpt.load_replay(pt, meta)
    # an object array with a matching hash: read without unpickling, refused
    f = io.BytesIO()
    np.savez(f, written=np.array([object()], dtype=object))
    path.write_bytes(f.getvalue())
    meta["replay"]["sha256"] = ckpt._file_digest(path)
    meta["replay"]["bytes"] = path.stat().st_size
    with pytest.raises(UserError, match="plain numpy arrays"):
        ckpt.load_replay(pt, meta)


def _cli(args, capsys):
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_cli_save_replay_then_resume_goes_on_learning(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    small = ["--set", "learning_starts=200", "--set", "log_every=64", "--set", "train_freq=32"]
    rc, out, _ = _cli(
        ["train", "dqn", "--env", "CartPole-v1", "--steps", 512, "--save-replay", "--no-progress"]
        + small,
        capsys,
    )
    assert rc == 0
    run = tmp_path / Path(next(x for x in out.splitlines() if x.startswith("run dir")).split()[-1])
    assert json.loads((run / "run.json").read_text())["save_replay"] is True
    # the resume keeps saving the replay (the run was made with it) and restores it
    rc, out, err = _cli(["train", "--resume", run, "--steps", 640, "--no-progress"], capsys)
    assert rc == 0 and err == "" and "replay buffer restored: " in out
    with (run / "metrics.csv").open() as f:
        losses = [int(r.split(",")[0]) for r in f if ",train/loss," in r]
    assert any(512 < s <= 640 for s in losses), "updates went on within 200 steps of the resume"
    assert ckpt.read_meta(run)["replay"]["collected"] == 640
    # a damaged replay does not stop the resume: the buffer starts empty, said in one line
    replay = run / "checkpoints" / "step_000000640.replay.npz"
    replay.write_bytes(replay.read_bytes()[:500])
    rc, out, err = _cli(["train", "--resume", run, "--steps", 704, "--no-progress"], capsys)
    assert rc == 0 and "replay buffer restored" not in out
    assert err.startswith("pilot: warning: ") and "truncated" in err and "empty buffer" in err
