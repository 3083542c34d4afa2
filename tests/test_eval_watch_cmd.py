"""`pilot eval` and `pilot watch` as a new user meets them: the Atari protocol's ε, a video
that ends, progress in a log, how many episodes run and why they ended, pictures whose
captions cover nothing, and every bad argument refused at once, before torch loads."""

from __future__ import annotations

import csv
import functools
import json
import subprocess
import sys
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest

import pilot.envs  # noqa: F401 - registers the pilot/... ids
from pilot import progress, video
from pilot.cli import main
from pilot.eval.evaluate import EpsilonGreedy, run_episodes

BREAKOUT, LANEKEEP = "pilot/Atari-Breakout-v0", "pilot/Driving-LaneKeep-v0"


def _save(folder: Path, algo: str, env_id: str, **overrides) -> Path:
    """An untrained agent's checkpoint: enough to play, and quick to make."""
    from pilot.agents import build_config, get_algorithm, save_agent

    config = build_config(algo, env_id, overrides=overrides)
    agent = get_algorithm(algo)(env_id, config, seed=0, device="cpu")
    save_agent(agent, folder)
    return folder


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ckpts")
    return {
        "breakout": _save(root / "dqn_breakout", "dqn", BREAKOUT, buffer_size=1000),
        "cartpole": _save(root / "ppo_cartpole", "ppo", "CartPole-v1"),
        "lanekeep": _save(
            root / "ppo_lanekeep", "ppo", LANEKEEP, env={"sensors": ["state", "lidar"]}
        ),
    }


def cli(args, capsys) -> tuple[int, str, str]:
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


# --------------------------------------------------------------------- 1, 5: Atari protocol
def _noop(obs, envs):
    return np.zeros(len(envs), np.int64)


def test_epsilon_greedy_ends_a_game_a_never_firing_agent_would_play_to_the_time_limit():
    """NOOP forever never launches Breakout's ball; ε = 0.05 presses FIRE now and then, so
    the game ends in a few thousand steps instead of 27,000."""
    stuck = run_episodes(_noop, BREAKOUT, [0], 1, max_steps=3000)
    assert stuck[0].end == "max_steps" and stuck[0].length == 3000
    played = run_episodes(_noop, BREAKOUT, [0], 1, epsilon=0.05)
    assert played[0].end == "terminated" and played[0].length < 10_000


def test_epsilon_draws_are_reproducible_from_each_seed_alone():
    both = run_episodes(_noop, BREAKOUT, [3, 4], 1, epsilon=0.05)
    again = run_episodes(_noop, BREAKOUT, [3, 4], 1, epsilon=0.05)
    alone = run_episodes(_noop, BREAKOUT, [4], 1, epsilon=0.05)
    assert [(r.ret, r.length) for r in both] == [(r.ret, r.length) for r in again]
    assert (both[1].ret, both[1].length) == (alone[0].ret, alone[0].length)
    assert both[0].length != both[1].length  # each seed has its own stream


def test_epsilon_greedy_replaces_the_share_epsilon_of_actions():
    explore = EpsilonGreedy(0.25, 18, seed=7)
    actions = np.array([explore(3) for _ in range(4000)])
    # a random action is 3 one time in 18, so 0.25 · 17/18 of the actions change
    assert np.mean(actions != 3) == pytest.approx(0.25 * 17 / 18, abs=0.02)
    assert set(np.unique(actions)) == set(range(18))
    assert all(EpsilonGreedy(0.0, 18, seed=7)(5) == 5 for _ in range(50))


def test_eval_on_atari_plays_the_protocols_epsilon_and_says_so(ckpts, tmp_path, capsys):
    rc, out, _ = cli(
        [
            "eval",
            ckpts["breakout"],
            "--episodes",
            1,
            "--seeds",
            0,
            "--max-steps",
            400,
            "--out",
            tmp_path / "a",
        ],
        capsys,
    )
    assert rc == 0
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["epsilon"] == 0.05 and summary["protocol"] == "deepmind"
    assert not summary["deterministic"] and not summary["sampled"]
    assert "ε-greedy, ε = 0.05 (deepmind protocol)" in out.splitlines()[0]
    assert "ε-greedy, ε = 0.05 (deepmind protocol):" in out  # the results' line too
    rc, out, _ = cli(
        ["eval", ckpts["breakout"], "--episodes", 1, "--seeds", 0, "--max-steps", 20]
        + ["--deterministic", "--out", tmp_path / "b"],
        capsys,
    )
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert rc == 0 and summary["epsilon"] == 0 and summary["deterministic"]
    assert "greedy actions" in out


def test_machado_plays_the_full_action_set_with_the_agents_actions_mapped(ckpts, tmp_path, capsys):
    rc, out, _ = cli(
        ["eval", ckpts["breakout"], "--protocol", "machado", "--episodes", 1, "--seeds", 0]
        + ["--max-steps", 50, "--out", tmp_path / "m"],
        capsys,
    )
    assert rc == 0
    summary = json.loads((tmp_path / "m" / "summary.json").read_text())
    assert summary["full_action_space"] is True and summary["env_kwargs"]["full_action_space"]
    assert summary["action_mapping"] == "minimal->full"
    assert summary["epsilon"] == 0.001  # Dopamine's evaluation ε under sticky actions
    assert "full 18-action set" in out and "4 minimal actions" in out


def test_eval_stochastic_samples_from_the_policy(ckpts, tmp_path, capsys):
    rc, out, _ = cli(
        ["eval", ckpts["cartpole"], "--stochastic", "--episodes", 1, "--seeds", 0]
        + ["--out", tmp_path / "s"],
        capsys,
    )
    summary = json.loads((tmp_path / "s" / "summary.json").read_text())
    assert rc == 0 and summary["sampled"] and summary["epsilon"] == 0
    assert "actions sampled from the policy" in out


# ----------------------------------------------------------------- 2: watch length cap
def test_watch_cuts_an_endless_episode_at_max_seconds_and_says_so(ckpts, tmp_path, capsys):
    path = tmp_path / "w.gif"
    rc, out, _ = cli(
        ["watch", ckpts["breakout"], "--deterministic", "--max-seconds", 2, "--fps", 5]
        + ["--out", path],
        capsys,
    )
    assert rc == 0
    assert len(imageio.mimread(path)) == 10
    assert "episode 1: return 0.00, 10 steps, cut at 10 frames (2 s at 5 fps; --max-seconds)" in out
    assert f"video: {path} (10 frames, 2.0 s)" in out


def test_watch_on_atari_defaults_to_the_protocols_epsilon(ckpts, tmp_path, capsys):
    rc, out, _ = cli(
        ["watch", ckpts["breakout"], "--max-steps", 3, "--out", tmp_path / "e.gif"], capsys
    )
    assert rc == 0 and "ε-greedy, ε = 0.05 (deepmind protocol)" in out


# ---------------------------------------------------------------------- 3: progress
def test_eval_and_watch_report_progress_in_a_log(ckpts, tmp_path, capsys, monkeypatch):
    # a line at every update instead of every few seconds, to see them mid-episode
    monkeypatch.setattr(
        progress.Progress,
        "__init__",
        functools.partialmethod(progress.Progress.__init__, interval=0.0),
    )
    rc, _, err = cli(
        ["eval", ckpts["cartpole"], "--episodes", 2, "--seeds", 0, "--out", tmp_path / "p"],
        capsys,
    )
    lines = err.splitlines()
    assert rc == 0 and lines[-1].startswith("eval: 2/2 ep (100%)")
    assert any(line.startswith("eval: 0/2 ep") and " steps" in line for line in lines)
    rc, _, err = cli(
        ["watch", ckpts["cartpole"], "--max-steps", 4, "--out", tmp_path / "p.gif"], capsys
    )
    assert rc == 0 and err.splitlines()[-1].startswith("watch: 4/4 frame (100%)")


# ------------------------------------------------------- 4, 11: how many, said plainly
def test_eval_says_how_many_episodes_before_it_starts(ckpts, tmp_path, capsys):
    rc, out, _ = cli(
        ["eval", ckpts["cartpole"], "--episodes", 1, "--seeds", 0, 1, "--out", tmp_path / "n"],
        capsys,
    )
    first = out.splitlines()[0]
    assert rc == 0 and "1 episode per seed × 2 seeds (0, 1) = 2 episodes" in first
    rc, out, _ = cli(
        ["eval", ckpts["cartpole"], "--episodes", 1, "--seeds", 5, "--out", tmp_path / "o"],
        capsys,
    )
    assert "1 episode per seed × 1 seed (5) = 1 episode;" in out
    assert "1 episode over seeds [5]" in out and "1 episodes" not in out


# --------------------------------------------------------------------- 6: end reasons
def test_episodes_record_why_they_ended():
    def hard_left(obs, envs):
        return np.array([[1.0, 1.0]] * len(envs), np.float32)

    def follow(obs, envs):
        return np.stack([e.unwrapped.follow_route() for e in envs])

    (crash,) = run_episodes(hard_left, LANEKEEP, [0], 1)
    assert crash.end in ("off_road", "route_deviation") and crash.terminated
    (timed,) = run_episodes(follow, LANEKEEP, [0], 1, env_kwargs={"max_episode_steps": 5})
    assert (timed.end, timed.length) == ("time_limit", 5)
    (cut,) = run_episodes(follow, LANEKEEP, [0], 1, max_steps=4)
    assert (cut.end, cut.length) == ("max_steps", 4)


def test_driving_eval_counts_the_end_reasons(ckpts, tmp_path, capsys):
    rc, out, _ = cli(
        ["eval", ckpts["lanekeep"], "--episodes", 1, "--seeds", 3, 4, "--max-steps", 40]
        + ["--out", tmp_path / "d"],
        capsys,
    )
    assert rc == 0
    summary = json.loads((tmp_path / "d" / "summary.json").read_text())
    with (tmp_path / "d" / "episodes.csv").open() as f:
        ends = [r["end"] for r in csv.DictReader(f)]
    assert sum(summary["end_reasons"].values()) == 2 == len(ends)
    assert {e: ends.count(e) for e in ends} == summary["end_reasons"]
    known = {"route_completed", "collision", "off_road", "route_deviation", "agent_blocked"}
    assert set(ends) <= known | {"time_limit", "max_steps"}
    shown = ", ".join(f"{k.replace('_', ' ')} {n}" for k, n in summary["end_reasons"].items())
    assert f"  ended: {shown}" in out


# ------------------------------------------------------------------------ 7: pictures
def test_caption_goes_above_the_picture_and_covers_none_of_it():
    frame = np.random.default_rng(0).integers(0, 255, (420, 320, 3), dtype=np.uint8)
    out = video.caption(frame, ["line one", "line two"])
    band = out.shape[0] - frame.shape[0]
    assert band >= 36 and out.shape[1:] == frame.shape[1:]
    np.testing.assert_array_equal(out[band:], frame)
    assert out[:band].max() > 200  # the text is written on the band


def test_watch_frames_show_the_whole_atari_screen_under_the_caption(ckpts, tmp_path, capsys):
    path = tmp_path / "s.gif"
    assert cli(["watch", ckpts["breakout"], "--max-steps", 1, "--out", path], capsys)[0] == 0
    frame = np.asarray(imageio.mimread(path)[0])[..., :3]
    from pilot.envs import make_env

    env = make_env(BREAKOUT, render_mode="rgb_array")
    env.reset(seed=0)
    screen = video.fit_frame(env.render())
    env.close()
    # the score and lives sit in the screen's top rows: they are below the band, intact
    top = frame[frame.shape[0] - screen.shape[0] :][:40].astype(int)
    assert np.abs(top - screen[:40].astype(int)).mean() < 3.0  # GIF palette rounding


# --------------------------------------------------------- 8, 9, 10: bad arguments
def _bad_cases(ckpts: dict[str, Path], tmp: Path) -> list[tuple[list, str]]:
    (tmp / "notes.txt").write_text("not a checkpoint")
    (tmp / "blob.json").write_bytes(bytes(range(256)))
    (tmp / "empty").mkdir(exist_ok=True)
    (tmp / "video.mp4").mkdir(exist_ok=True)
    run = tmp / "a_run"
    run.mkdir(exist_ok=True)
    (run / "episodes.csv").write_text("step,time,return,length\n")
    bo, cp = ckpts["breakout"], ckpts["cartpole"]
    return [
        (["eval", bo, "--seeds", "-1"], "--seeds must be >= 0, got -1"),
        (["eval", bo, "--seeds", "2", "2"], "--seeds lists 2 more than once"),
        (["eval", bo, "--episodes", "0"], "--episodes must be at least 1"),
        (["eval", bo, "--max-steps", "0"], "--max-steps must be at least 1"),
        (["eval", bo, "--epsilon", "1.5"], "--epsilon must lie in [0, 1]"),
        (["eval", bo, "--epsilon", "-0.1"], "--epsilon must lie in [0, 1]"),
        (["eval", bo, "--deterministic", "--stochastic"], "not allowed with"),
        (["eval", bo, "--device", "cudaa"], "unknown device 'cudaa'"),
        (["eval", bo, "--device", "gpu0"], "unknown device 'gpu0'"),
        (["eval", cp, "--protocol", "machado"], "--protocol applies to Atari envs"),
        (["eval", tmp / "missing"], "no such run directory"),
        (["eval", tmp / "notes.txt"], "not a pilot checkpoint"),
        (["eval", tmp / "blob.json"], "not valid JSON"),
        (["eval", tmp / "empty"], "holds no pilot checkpoint"),
        (["eval", bo, "--out", tmp / "notes.txt"], "is a file"),
        (["eval", bo, "--out", tmp / "notes.txt" / "sub"], "is a file, not a folder"),
        (["eval", bo, "--out", run], "not an evaluation's"),
        (["eval", bo, "--out", "/sys/pilot-eval"], "not writable"),
        (["eval", ckpts["lanekeep"], "--epsilon", "0.1"], "needs discrete actions"),
        (["watch", bo, "--out", tmp / "x.avi"], "unknown video format '.avi'"),
        (["watch", bo, "--out", tmp / "x"], "unknown video format no suffix"),
        (["watch", bo, "--out", tmp / "video.mp4"], "is a folder"),
        (["watch", bo, "--out", tmp / "x.mp4", "--format", "gif"], "does not match"),
        (["watch", bo, "--out", "/sys/pilot-watch/x.mp4"], "not writable"),
        (["watch", bo, "--episodes", "0"], "--episodes must be at least 1"),
        (["watch", bo, "--seed", "-3"], "--seed must be at least 0"),
        (["watch", bo, "--fps", "0"], "--fps must be at least 1"),
        (["watch", bo, "--max-steps", "0"], "--max-steps must be at least 1"),
        (["watch", bo, "--max-seconds", "0"], "--max-seconds must be a positive number"),
        (["watch", bo, "--max-seconds", "nan"], "--max-seconds must be a positive number"),
        (["watch", bo, "--epsilon", "2"], "--epsilon must lie in [0, 1]"),
        (["watch", bo, "--live", "yes"], "--live yes needs a display"),
        (["watch", bo, "--device", "cuda:x"], "unknown device"),
        (["watch", tmp / "missing"], "no such run directory"),
        (["watch", tmp / "notes.txt"], "not a pilot checkpoint"),
    ]


def test_every_bad_argument_is_one_line_exit_2(ckpts, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    cases = _bad_cases(ckpts, tmp_path)
    import torch

    if not torch.cuda.is_available():
        cases.append((["eval", ckpts["breakout"], "--device", "cuda"], "no CUDA device"))
    for args, message in cases:
        rc, out, err = cli(args, capsys)
        assert rc == 2, (args, out, err)
        assert err.startswith("pilot: error: ") and err.count("\n") == 1, (args, err)
        assert message in err, (args, err)
        assert "Traceback" not in err and "episode" not in out, (args, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a_run",
        "blob.json",
        "empty",
        "notes.txt",
        "video.mp4",
    ], "a refused command leaves nothing behind"
    assert (tmp_path / "a_run" / "episodes.csv").read_text() == "step,time,return,length\n"


def test_bad_arguments_are_refused_before_torch_is_imported(ckpts, tmp_path):
    """Each mistake is answered without torch's 1.5-2 s import (asked of the process,
    not timed)."""
    cases = [[str(a) for a in args] for args, _ in _bad_cases(ckpts, tmp_path)]
    script = (
        "import json, os, sys\n"
        "os.environ.pop('DISPLAY', None); os.environ.pop('WAYLAND_DISPLAY', None)\n"
        "from pilot.cli import main\n"
        "out = []\n"
        f"for args in {cases!r}:\n"
        "    out.append((args, main(args), 'torch' in sys.modules))\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    results = json.loads(proc.stdout.splitlines()[-1])
    assert len(results) == len(cases)
    for args, rc, torch_loaded in results:
        assert rc == 2 and not torch_loaded, args


def test_an_interrupted_video_leaves_the_earlier_one_intact(tmp_path):
    path = tmp_path / "old.gif"
    path.write_bytes(b"an earlier video")
    writer = video.VideoWriter([path], fps=10)
    writer.append(np.zeros((32, 32, 3), np.uint8))
    writer.close(keep=False)
    assert path.read_bytes() == b"an earlier video"
    assert [p.name for p in tmp_path.iterdir()] == ["old.gif"]
