"""The CLI as a user drives it: train → watch → eval, resume, and every kind of bad input."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest

from pilot.agents.common import checkpoint as ckpt
from pilot.cli import main

FAST_PPO = ["--set", "n_envs=4", "--set", "n_steps=64", "--no-progress"]


def run_cli(args, capsys):
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _run_dir(out: str) -> Path:
    line = next(x for x in out.splitlines() if x.startswith("run directory:"))
    return Path(line.split(":", 1)[1].strip())


def _metric_steps(run_dir: Path, name: str) -> list[int]:
    with (run_dir / "metrics.csv").open() as f:
        return [int(r["step"]) for r in csv.DictReader(f) if r["name"] == name]


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "ppp", "--env", "CartPole-v1"], "unknown algorithm 'ppp' (did you mean: ppo"),
        (
            ["train", "ppo", "--env", "CartPol-v1"],
            "unknown environment 'CartPol-v1' (did you mean: CartPole-v1",
        ),
        (
            ["train", "ppo", "--env", "CartPole-v1", "--set", "learning_rat=1"],
            "did you mean: learning_rate",
        ),
        (["train", "ppo", "--env", "CartPole-v1", "--set", "n_envs=two"], "must be an integer"),
        (
            ["train", "ppo", "--env", "CartPole-v1", "--config", "missing.yaml"],
            "config file not found",
        ),
        (["train", "ppo", "--env", "CartPole-v1", "--device", "cuda"], None),
        (["train", "ppo", "--env", "CartPole-v1", "--steps", "ten"], "invalid int value"),
        (["train", "ppo"], "train needs ALGO and --env"),
        (
            ["train", "ppo", "--env", "CartPole-v1", "--threads", "0"],
            "--threads must be at least 1",
        ),
        (["watch", "no/such/run"], "no such run directory"),
        (["eval", "no/such/run"], "no such run directory"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_user_errors_are_one_line_exit_2(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if args[-1] == "cuda":
        import torch

        if torch.cuda.is_available():
            pytest.skip("a CUDA device is present")
        message = "no CUDA device"
    rc, out, err = run_cli(args, capsys)
    assert rc == 2
    assert err.startswith("pilot: error: ") and err.count("\n") == 1, err
    assert message in err
    assert not (tmp_path / "runs").exists(), "a failed command must not leave a run behind"


def test_malformed_config_file_names_the_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("learning_rate: 0.001\nn_steps: [1,\n")
    rc, _, err = run_cli(["train", "ppo", "--env", "CartPole-v1", "--config", bad], capsys)
    assert rc == 2 and "malformed YAML" in err and "line" in err


def test_list_shows_envs_and_algorithms(capsys):
    rc, out, _ = run_cli(["list"], capsys)
    assert rc == 0
    for name in ("CartPole-v1", "pilot/Probe-Identity-v0", "ppo", "dqn", "a2c", "reinforce"):
        assert name in out


def test_train_watch_eval_resume_cartpole(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, out, _ = run_cli(
        [
            "train",
            "ppo",
            "--env",
            "CartPole-v1",
            "--steps",
            2048,
            "--seed",
            3,
            *FAST_PPO,
            "--set",
            "checkpoint_every=1024",
        ],
        capsys,
    )
    assert rc == 0, out
    run = _run_dir(out)
    run = tmp_path / run
    assert run.parent == tmp_path / "runs" and run.name.startswith("CartPole-v1__ppo__3__")
    info = json.loads((run / "run.json").read_text())
    assert info["algo"] == "ppo" and info["seed"] == 3 and info["total_steps"] == 2048
    assert "git_commit" in info and info["versions"]["torch"]
    assert "n_steps: 64" in (run / "config.yaml").read_text()
    assert list((run / "tb").glob("events.out.tfevents.*"))
    meta = ckpt.read_meta(run)
    assert meta["step"] == 2048 and meta["algo"] == "ppo" and meta["env_id"] == "CartPole-v1"
    first_steps = _metric_steps(run, "perf/steps_per_s")
    assert first_steps and first_steps[-1] == 2048

    # resume: same directory, the step counter continues, curves are unbroken
    rc, out, _ = run_cli(["train", "--resume", run, "--steps", 4096, "--no-progress"], capsys)
    assert rc == 0, out
    assert "resuming" in out and "at step 2,048" in out
    steps = _metric_steps(run, "perf/steps_per_s")
    assert steps[: len(first_steps)] == first_steps
    assert steps == sorted(steps) and len(set(steps)) == len(steps) and steps[-1] == 4096
    assert ckpt.read_meta(run)["step"] == 4096
    assert json.loads((run / "run.json").read_text())["resumed"] == [2048]

    # watch writes a video with non-blank frames and prints its path
    rc, out, _ = run_cli(["watch", run, "--max-steps", 40, "--format", "both"], capsys)
    assert rc == 0
    paths = [Path(line.split()[1]) for line in out.splitlines() if line.startswith("video:")]
    assert {p.suffix for p in paths} == {".mp4", ".gif"} and all(
        p.parent == run / "videos" for p in paths
    )
    frames = imageio.mimread(paths[0], memtest=False)
    assert len(frames) == 40
    assert all(np.asarray(f).std() > 5 for f in frames), "frames must not be blank"

    # eval: per-episode results for leaderboards, summary with a CI
    rc, out, _ = run_cli(
        ["eval", run, "--episodes", 2, "--seeds", 0, 1, "--out", tmp_path / "ev"], capsys
    )
    assert rc == 0
    assert "95% CI" in out and "4 episodes over seeds [0, 1]" in out
    with (tmp_path / "ev" / "episodes.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(int(r["seed"]), int(r["episode"])) for r in rows] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    summary = json.loads((tmp_path / "ev" / "summary.json").read_text())
    returns = [float(r["return"]) for r in rows]
    assert summary["summary"]["mean"] == pytest.approx(np.mean(returns))
    assert summary["checkpoint_step"] == 4096

    # the same seeds give the same results
    rc, _, _ = run_cli(
        ["eval", run, "--episodes", 2, "--seeds", 0, 1, "--out", tmp_path / "ev2"], capsys
    )
    again = json.loads((tmp_path / "ev2" / "summary.json").read_text())["summary"]["mean"]
    assert again == summary["summary"]["mean"]


def test_tampered_checkpoint_refused_by_cli(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, out, _ = run_cli(
        ["train", "ppo", "--env", "CartPole-v1", "--steps", 256, *FAST_PPO], capsys
    )
    run = _run_dir(out)
    pt = ckpt.resolve(run)
    data = bytearray(pt.read_bytes())
    data[-100] ^= 0x55
    pt.write_bytes(bytes(data))
    for command in (["watch", run], ["eval", run], ["train", "--resume", run, "--steps", 512]):
        rc, _, err = run_cli(command, capsys)
        assert rc == 2 and "tampered" in err and err.count("\n") == 1


def test_diverging_training_stops_and_keeps_last_good_checkpoint(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, out, _ = run_cli(
        ["train", "ppo", "--env", "CartPole-v1", "--steps", 512, *FAST_PPO], capsys
    )
    run = _run_dir(out)
    good = ckpt.read_meta(run)["sha256"]
    # resuming with a poisoned config is refused, so poison the weights the resume loads
    loaded = ckpt.load(run)
    state = loaded.state
    for tensor in state["modules"]["policy"].values():
        if tensor.is_floating_point():
            tensor.fill_(float("nan"))
    ckpt.save(tmp_path / "poisoned", state, loaded.meta)
    import shutil

    shutil.copytree(run, tmp_path / "run2")
    shutil.rmtree(tmp_path / "run2" / "checkpoints")
    shutil.copytree(tmp_path / "poisoned", tmp_path / "run2" / "checkpoints")
    rc, _, err = run_cli(
        ["train", "--resume", tmp_path / "run2", "--steps", 2048, "--no-progress"], capsys
    )
    assert rc == 1
    assert "training stopped" in err and "last good checkpoint" in err
    assert err.count("\n") == 1
    # the original run's checkpoint is untouched
    assert ckpt.read_meta(run)["sha256"] == good


def test_sigkill_mid_training_then_resume(tmp_path):
    """Kill `pilot train` at an arbitrary moment; resume continues from the last good checkpoint."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "pilot",
        "train",
        "ppo",
        "--env",
        "CartPole-v1",
        "--steps",
        "1000000",
        "--no-progress",
        "--set",
        "n_envs=4",
        "--set",
        "n_steps=64",
        "--set",
        "checkpoint_every=256",
    ]
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    run = Path(tmp_path / _run_dir(proc.stdout.readline()))
    deadline = time.time() + 60
    while time.time() < deadline:
        latest = run / "checkpoints" / "latest.json"
        if latest.exists() and ckpt.read_meta(run)["step"] >= 2048:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    step = ckpt.load(run).meta["step"]  # hash-checked: the latest is intact
    assert step >= 2048
    resume = subprocess.run(
        [
            sys.executable,
            "-m",
            "pilot",
            "train",
            "--resume",
            str(run),
            "--steps",
            str(step + 512),
            "--no-progress",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resume.returncode == 0, resume.stderr
    assert f"at step {step:,}" in resume.stdout
    assert ckpt.read_meta(run)["step"] == step + 512
    steps = _metric_steps(run, "perf/steps_per_s")
    assert steps == sorted(steps) and len(set(steps)) == len(steps)


def test_cli_has_no_traceback_on_user_error():
    proc = subprocess.run(
        [sys.executable, "-m", "pilot", "train", "ppo", "--env", "NoSuchEnv-v9"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.startswith(
        "pilot: error: unknown environment"
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "algo, fast",
    [
        ("ppo", ["--set", "n_envs=4", "--set", "n_steps=128", "--set", "n_epochs=1"]),
        ("dqn", ["--set", "learning_starts=500", "--set", "buffer_size=5000"]),
    ],
)
def test_atari_train_watch_eval_end_to_end(algo, fast, tmp_path, capsys, monkeypatch):
    """A few thousand real ALE steps through the CLI, a video of real frames, real scores."""
    monkeypatch.chdir(tmp_path)
    rc, out, _ = run_cli(
        [
            "train",
            algo,
            "--env",
            "pilot/Atari-Breakout-v0",
            "--steps",
            2048,
            "--no-progress",
            *fast,
        ],
        capsys,
    )
    assert rc == 0, out
    run = _run_dir(out)
    assert ckpt.read_meta(run)["step"] == 2048
    with (run / "episodes.csv").open() as f:
        episodes = list(csv.DictReader(f))
    assert episodes, "a few thousand Breakout steps finish at least one whole game"
    assert all(
        float(e["return"]) >= 0 and float(e["return"]) == int(float(e["return"])) for e in episodes
    )

    rc, out, _ = run_cli(["watch", run, "--max-steps", 60, "--show-probs"], capsys)
    assert rc == 0
    path = Path(next(line.split()[1] for line in out.splitlines() if line.startswith("video:")))
    frames = [np.asarray(f) for f in imageio.mimread(path, memtest=False)]
    assert len(frames) == 60
    first = frames[0]
    assert first.shape[0] >= 420 and first.shape[2] == 3  # 210×160 upscaled, plus the action bars
    assert all(f.std() > 10 for f in frames), "frames must show the game, not a blank screen"
    assert any(not np.array_equal(frames[0], f) for f in frames[1:]), "the picture must change"

    rc, out, _ = run_cli(
        ["eval", run, "--episodes", 1, "--seeds", 0, 1, "--max-steps", 300], capsys
    )
    assert rc == 0 and "2 episodes over seeds [0, 1]" in out
    results = next(Path(run / "eval").iterdir())
    summary = json.loads((results / "summary.json").read_text())
    assert summary["env_id"] == "pilot/Atari-Breakout-v0" and len(summary["episodes"]) == 2


def test_eval_reports_success_rate_where_the_env_defines_success(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, out, _ = run_cli(
        ["train", "ppo", "--env", "pilot/Nav-Grid-v0", "--steps", 512, *FAST_PPO], capsys
    )
    assert rc == 0
    run = tmp_path / _run_dir(out)
    # training logs the env's verdict per episode too, and says the recent rate at the end
    with (run / "episodes.csv").open() as f:
        trained = [r["success"] for r in csv.DictReader(f)]
    assert trained and set(trained) <= {"0", "1"}
    recent = [int(x) for x in trained[-100:]]
    assert f"success {sum(recent) / len(recent):.0%} of the last {len(recent)}" in out
    rc, out, _ = run_cli(
        ["eval", run, "--episodes", 3, "--seeds", 5, 6, "--out", tmp_path / "ev"], capsys
    )
    assert rc == 0
    with (tmp_path / "ev" / "episodes.csv").open() as f:
        flags = [int(r["success"]) for r in csv.DictReader(f)]
    rate = json.loads((tmp_path / "ev" / "summary.json").read_text())["success_rate"]
    assert len(flags) == 6 and rate == pytest.approx(sum(flags) / 6)
    assert f"success {rate:.1%} ({sum(flags)}/6)" in out
    # CartPole has no notion of success: no rate is invented for it
    rc, out, _ = run_cli(
        ["train", "ppo", "--env", "CartPole-v1", "--steps", 256, *FAST_PPO], capsys
    )
    assert "success" not in out
    run = tmp_path / _run_dir(out)
    with (run / "episodes.csv").open() as f:
        assert {r["success"] for r in csv.DictReader(f)} == {""}
    rc, out, _ = run_cli(
        ["eval", run, "--episodes", 1, "--seeds", 0, "--out", tmp_path / "ev2"], capsys
    )
    assert "  success " not in out
    assert json.loads((tmp_path / "ev2" / "summary.json").read_text())["success_rate"] is None


def test_watch_on_navigation_draws_the_plan(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, out, _ = run_cli(
        ["train", "ppo", "--env", "pilot/Nav-Grid-v0", "--steps", 256, *FAST_PPO], capsys
    )
    run = tmp_path / _run_dir(out)
    rc, out, _ = run_cli(["watch", run, "--max-steps", 3, "--format", "gif"], capsys)
    assert rc == 0
    path = Path(next(line.split()[1] for line in out.splitlines() if line.startswith("video:")))
    frame = np.asarray(imageio.mimread(path)[0])[..., :3].astype(int)
    plan_colour = np.array([240, 140, 20])  # the env draws overlay paths in this orange
    near = np.abs(frame - plan_colour).sum(axis=2) < 60
    assert near.sum() > 100, "the A* plan from start to goal is drawn"


def test_train_picks_one_thread_for_vector_nets_unless_told(tmp_path, capsys, monkeypatch):
    """Two intra-op threads on two busy cores slowed PPO on CartPole ~50x here."""
    import torch

    monkeypatch.chdir(tmp_path)
    before = torch.get_num_threads()
    try:
        base = ["train", "ppo", "--env", "CartPole-v1", "--steps", 256, *FAST_PPO]
        assert run_cli([*base, "--threads", 2], capsys)[0] == 0
        assert torch.get_num_threads() == 2
        assert run_cli(base, capsys)[0] == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_bench_lists_and_runs_the_benchmark_scripts(capsys):
    rc, out, _ = run_cli(["bench"], capsys)
    assert rc == 0
    listed = {line.split()[0] for line in out.splitlines() if line and not line.startswith("run")}
    assert {"spine", "planning", "mcts"} <= listed
    rc, _, err = run_cli(["bench", "mctss"], capsys)
    assert rc == 2 and "did you mean: mcts" in err
    rc, _, err = run_cli(["bench", "spine", "--device", "tpu"], capsys)
    assert rc == 2 and err.startswith("pilot: error: argument --device") and err.count("\n") == 1
    args = ["--sections", "speed", "--seconds", "0.02", "--simulations", "2"]
    rc, out, _ = run_cli(["bench", "mcts", *args], capsys)
    assert rc == 0
    rows = [line for line in out.splitlines() if line.startswith("| learned latent model | 64")]
    assert len(rows) == 1 and rows[0].rstrip().endswith("× |")


def test_eval_on_driving_reports_the_leaderboard_scores(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["train", "ppo", "--env", "pilot/Driving-LaneKeep-v0", "--steps", 256, *FAST_PPO]
    rc, out, _ = run_cli([*args, "--set", "env.sensors=[state,lidar]"], capsys)
    assert rc == 0
    run = tmp_path / _run_dir(out)
    rc, out, _ = run_cli(
        ["eval", run, "--episodes", 1, "--seeds", 3, 4, "--out", tmp_path / "ev"], capsys
    )
    assert rc == 0 and "  success " in out and "Driving Score" in out
    summary = json.loads((tmp_path / "ev" / "summary.json").read_text())
    rows = summary["episodes"]
    # an untrained car leaves the road early: the score is its route completion × penalties
    for r in rows:
        d = r["driving"]
        assert d["driving_score"] == pytest.approx(d["route_completion"] * d["infraction_penalty"])
    mean_ds = np.mean([r["driving"]["driving_score"] for r in rows])
    assert summary["driving"]["driving_score"] == pytest.approx(mean_ds)
    with (tmp_path / "ev" / "episodes.csv").open() as f:
        assert "driving_score" in next(csv.reader(f))


def test_progress_bar_stays_a_bar_when_rollouts_end_past_the_steps(tmp_path, capsys, monkeypatch):
    """Rollouts are whole (4 envs x 64 steps), so --steps 600 trains 768 steps; the bar
    then ends full at 768/768 instead of turning into a bare count."""
    monkeypatch.chdir(tmp_path)
    rc, _, err = run_cli(
        ["train", "ppo", "--env", "CartPole-v1", "--steps", 600, "--set", "n_envs=4"]
        + ["--set", "n_steps=64"],
        capsys,
    )
    assert rc == 0
    last = err.replace("\r", "\n").strip().splitlines()[-1]
    assert "100%" in last and "768/768" in last, last
