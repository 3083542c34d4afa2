"""`pilot train` as a user drives it: budgets, help, mistakes, resume from damage, threads."""

import csv
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from test_cli import _run_dir, run_cli

from pilot.agents import ALGORITHMS, config_class
from pilot.agents.common import checkpoint as ckpt
from pilot.agents.common.device import default_threads
from pilot.cli import _build_parser
from pilot.config import describe

FAST_PPO = ["--set", "n_envs=4", "--set", "n_steps=64", "--no-progress"]
README = Path(__file__).resolve().parent.parent / "README.md"


def _train_ppo(tmp_path, capsys, steps=512, *extra):
    rc, out, err = run_cli(
        ["train", "ppo", "--env", "CartPole-v1", "--steps", steps, *FAST_PPO, *extra], capsys
    )
    assert rc == 0, err
    return tmp_path / _run_dir(out), out, err


# --------------------------------------------------------------------- step budget
def test_short_budget_warns_once_and_the_budget_has_one_home(tmp_path, capsys, monkeypatch):
    """The DQN CartPole preset updates first at step 1,024 (learning_starts 1,000, then a
    train_freq-256 boundary): 500 steps learn nothing, and say so in one line."""
    monkeypatch.chdir(tmp_path)
    rc, out, err = run_cli(
        ["train", "dqn", "--env", "CartPole-v1", "--steps", 500, "--no-progress"], capsys
    )
    assert rc == 0
    assert err.count("\n") == 1 and err.startswith("pilot: warning: --steps 500 ends before")
    assert "after 1,024 steps" in err and "learn nothing" in err
    run = tmp_path / _run_dir(out)
    assert yaml.safe_load((run / "config.yaml").read_text())["steps"] == 500
    assert json.loads((run / "run.json").read_text())["total_steps"] == 500
    assert ckpt.read_meta(run)["config"]["steps"] == 500

    # a resume with a new budget moves all three records together
    rc, _, err = run_cli(["train", "--resume", run, "--steps", 700, "--no-progress"], capsys)
    assert rc == 0 and "from the resume" in err  # the buffer starts empty again
    assert yaml.safe_load((run / "config.yaml").read_text())["steps"] == 700
    assert json.loads((run / "run.json").read_text())["total_steps"] == 700
    assert ckpt.read_meta(run)["config"]["steps"] == 700


def test_rollout_agents_warn_below_one_rollout(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, _, err = run_cli(
        ["train", "ppo", "--env", "CartPole-v1", "--steps", 100, *FAST_PPO], capsys
    )
    assert rc == 0 and "ppo's first update, which comes after 256 steps" in err


def test_enough_steps_to_learn_but_not_to_log_warns_about_the_empty_metrics(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    _, _, err = _train_ppo(tmp_path, capsys, 256)
    assert "metrics.csv will stay empty" in err and "log_every 1,000" in err
    _, _, err = _train_ppo(tmp_path, capsys, 256, "--set", "log_every=256")
    assert err == ""


# --------------------------------------------------------------------------- help
def test_help_config_works_without_env_and_shows_the_preset_with_one(capsys):
    rc, out, _ = run_cli(["train", "ppo", "--help-config"], capsys)
    assert rc == 0
    row = next(line for line in out.splitlines() if line.split()[:1] == ["learning_rate"])
    assert "0.00025" in row  # PPOConfig's default
    rc, out, _ = run_cli(["train", "ppo", "--env", "CartPole-v1", "--help-config"], capsys)
    assert rc == 0
    row = next(line for line in out.splitlines() if line.split()[:1] == ["learning_rate"])
    assert "*0.001" in row  # the CartPole preset's value, marked as differing
    rc, out, _ = run_cli(["train", "mcts", "--help-config"], capsys)
    assert rc == 0 and re.search(r"^  search\.num_simulations\s+int\s+32", out, re.M)


def _keys(algo: str) -> set[str]:
    return {name for name, *_ in describe(config_class(algo))}


def test_every_set_example_in_help_texts_and_readme_is_a_real_key():
    parser = _build_parser()
    sub = next(a for a in parser._actions if a.choices and "train" in a.choices)
    # the agent commands; `pilot perception` has its own config, checked in its own tests
    agent_commands = ("train", "watch", "eval")
    texts = [parser.format_help()] + [sub.choices[c].format_help() for c in agent_commands]
    examples = [m for text in texts for m in re.findall(r"--set\s+([a-z_][a-z0-9_.]*)=", text)]
    assert examples, "the help shows at least one --set example"
    common = set.intersection(*(_keys(a) for a in ALGORITHMS))
    for key in examples:  # `train --help` does not name an algorithm: valid for all
        assert key in common, f"--help example --set {key}=... is not a config key"
    for line in README.read_text().splitlines():
        m = re.search(r"pilot train (\w+) .*", line)
        if m and m.group(1) in ALGORITHMS:
            for key in re.findall(r"--set\s+([a-z_][a-z0-9_.]*)=", line):
                known = key in _keys(m.group(1)) or key.startswith("env.")  # env kwargs
                assert known, f"README: --set {key} for {m.group(1)}"


# ----------------------------------------------------------------------- mistakes
def _setup(tmp_path):
    """Files the bad-argument cases point at."""
    (tmp_path / "binary.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    (tmp_path / "empty.yaml").write_text("# nothing here\n")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    (tmp_path / "folder.yaml").mkdir()
    (tmp_path / "afile").write_text("x")
    run = tmp_path / "killed"  # a run killed before its first checkpoint
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"command": "pilot train ppo --env CartPole-v1"}))
    (run / "config.yaml").write_text("steps: 1000\n")


ENV = ["--env", "CartPole-v1"]
BAD = [
    (["train", "ppo", *ENV, "--config", "binary.yaml"], "is not UTF-8 text"),
    (["train", "ppo", *ENV, "--config", "folder.yaml"], "is a directory"),
    (["train", "ppo", *ENV, "--config", "empty.yaml"], "is empty"),
    (["train", "ppo", *ENV, "--config", "list.yaml"], "must hold a mapping"),
    (["train", "ppo", *ENV, "--seed", "-1"], "--seed must lie in [0, 2**32)"),
    (["train", "ppo", *ENV, "--seed", str(2**32)], "--seed must lie in"),
    (["train", "ppo", *ENV, "--steps", "0"], "--steps must be at least 1"),
    (["train", "ppo", *ENV, "--steps", "-5"], "--steps must be at least 1"),
    (["train", "ppo", *ENV, "--device", "bogus"], "unknown device 'bogus'"),
    (["train", "ppo", *ENV, "--runs-dir", "afile"], "--runs-dir afile is a file"),
    (["train", "ppo", *ENV, "--runs-dir", "afile/runs"], "which is a file"),
    (["train", "--resume", "afile"], "afile is a file, not a run directory"),
    (["train", "--resume", "nowhere"], "no such run directory"),
    (["train", "--resume", "killed"], "has no checkpoint yet"),
    (["train", "--resume", "killed", "--set", "gamma=0.9"], "drop --set"),
    (["train", "ppo", *ENV, "--checkpoint", "step_000000256"], "add --resume"),
    (["train", "ppo", *ENV, "--set", "search.num_simulations=4"], "unknown config key 'search'"),
    (["train", "mcts", *ENV, "--set", "search.nope=4"], "unknown config key 'search.nope'"),
    (["train", "ppo", *ENV, "--set", "n_envs=2", "--set", "n_envs.x=3"], "not a mapping"),
    (["train", "ppo", *ENV, "--set", "=3"], "with a key name"),
    (["train", "ppo", *ENV, "--set", "learning_rate=.nan"], "must be a finite number"),
    (["train", "ppo", *ENV, "--set", "learning_rate=.inf"], "must be a finite number"),
    (["train", "ppo", *ENV, "--set", "max_grad_norm=1e999"], "must be a finite number"),
    (["train", "ppo", *ENV, "--set", "hidden=[64,-1]"], "hidden layer sizes must be >= 1"),
    (["train", "dqn", *ENV, "--set", "learning_rate=-0.1"], "learning_rate must be >= 0"),
    (["train", "ppo", *ENV, "--threads", str(10**6)], "more than 4 per core"),
    (["train", "ppo", *ENV, "--set", "env.nope=1"], "bad options for CartPole-v1"),
    (["train", "ppo", *ENV, "--save-replay"], "ppo keeps no replay buffer"),
    (["train", "ppo", *ENV, "--device", "cuda"], "no CUDA device"),
]
#: cases answered before torch is imported (all but the last three)
BEFORE_TORCH = BAD[:-3]


@pytest.mark.parametrize("args, message", BAD, ids=[" ".join(a[1:]) for a, _ in BAD])
def test_bad_arguments_are_one_line_exit_2(args, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _setup(tmp_path)
    if args[-1] == "cuda":
        import torch

        if torch.cuda.is_available():
            pytest.skip("a CUDA device is present")
    rc, out, err = run_cli(args, capsys)
    assert rc == 2
    assert err.startswith("pilot: error: ") and err.count("\n") == 1, err
    assert message in err
    assert "Traceback" not in err and not (tmp_path / "runs").exists()
    if "no checkpoint yet" in message:
        assert "start it again: pilot train ppo --env CartPole-v1" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_runs_dir(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    rc, _, err = run_cli(["train", "ppo", *ENV, "--runs-dir", locked / "runs"], capsys)
    assert rc == 2 and "permission denied" in err


CHECK = """
import json, os, sys
from pilot.cli import main
cases = json.loads(sys.argv[1])
for args in cases:
    pid = os.fork()
    if pid == 0:
        sys.stderr = open(os.devnull, "w")
        rc = main(args)
        os._exit(10 + rc + (100 if "torch" in sys.modules else 0))
    _, status = os.waitpid(pid, 0)
    print(json.dumps([args, os.waitstatus_to_exitcode(status)]))
"""


def test_mistakes_are_answered_before_torch_is_imported(tmp_path):
    """Each case runs main() in a fresh fork of a process that has not imported torch."""
    _setup(tmp_path)
    cases = [args for args, _ in BEFORE_TORCH]
    proc = subprocess.run(
        [sys.executable, "-c", CHECK, json.dumps(cases)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(results) == len(cases)
    for args, code in results:
        assert code == 12, f"{args}: exit {code - 10 - (100 if code >= 110 else 0)}, " + (
            "torch imported" if code >= 110 else "torch not imported"
        )


# ----------------------------------------------------------------- damaged resumes
def _two_checkpoints(tmp_path, capsys):
    run, _, _ = _train_ppo(tmp_path, capsys, 512, "--set", "checkpoint_every=256")
    names = sorted(p.stem for p in (run / "checkpoints").glob("step_*.pt"))
    assert names == ["step_000000256", "step_000000512"]
    return run


def test_truncated_latest_checkpoint_names_the_intact_one_and_the_way_back(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    run = _two_checkpoints(tmp_path, capsys)
    latest = run / "checkpoints" / "step_000000512.pt"
    data = latest.read_bytes()
    latest.write_bytes(data[: len(data) // 2])
    rc, _, err = run_cli(["train", "--resume", run, "--steps", 768, "--no-progress"], capsys)
    assert rc == 2 and err.count("\n") == 1
    assert f"is truncated: {len(data) // 2:,} of the {len(data):,} bytes" in err
    assert "weights_only" not in err and "more than tensors" not in err
    hint = f"pilot train --resume {run} --checkpoint step_000000256"
    assert hint in err
    # the advice works: the run continues from the intact checkpoint
    rc, out, _ = run_cli([*hint.split()[1:], "--steps", 768, "--no-progress"], capsys)
    assert rc == 0 and "at step 256" in out
    assert ckpt.read_meta(run)["step"] == 768


def test_checkpoint_flag_rejects_an_unknown_name(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = _two_checkpoints(tmp_path, capsys)
    rc, _, err = run_cli(["train", "--resume", run, "--checkpoint", "step_9"], capsys)
    assert rc == 2 and "no checkpoint 'step_9'" in err and "step_000000512" in err


def test_resume_removes_orphan_temporary_files_but_no_checkpoint(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = _two_checkpoints(tmp_path, capsys)
    folder = run / "checkpoints"
    orphans = [folder / ".step_000000768.pt.k2j3.tmp", folder / ".latest.json.x9.tmp"]
    orphans.append(run / "run.json.tmp")
    for p in orphans:
        p.write_bytes(b"half a save")
    keep = sorted(p.name for p in folder.iterdir() if not p.name.endswith(".tmp"))
    rc, out, _ = run_cli(["train", "--resume", run, "--steps", 768, "--no-progress"], capsys)
    assert rc == 0 and "removed 3 unfinished temporary file(s)" in out
    assert not any(p.exists() for p in orphans)
    left = {p.name for p in folder.iterdir()}
    assert set(keep) - {"step_000000256.pt", "step_000000256.json"} <= left


# ------------------------------------------------------------ closing line, threads
def test_closing_line_when_no_episode_finished(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, out, _ = run_cli(
        ["train", "ppo", *ENV, "--steps", 8, "--set", "n_envs=2", "--set", "n_steps=4"]
        + ["--no-progress"],
        capsys,
    )
    assert rc == 0 and "no episode finished" in out and "last 0" not in out


def test_resume_continues_the_returns_and_the_clock(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run, _, _ = _train_ppo(tmp_path, capsys, 512)
    with (run / "episodes.csv").open() as f:
        first = list(csv.DictReader(f))
    # one more rollout of 256 steps with no time limit reached: fewer new episodes than 100
    rc, out, _ = run_cli(["train", "--resume", run, "--steps", 768, "--no-progress"], capsys)
    assert rc == 0
    n = int(re.search(r"mean return of the last (\d+) episodes", out).group(1))
    with (run / "episodes.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert n == min(100, len(rows)) > len(rows) - len(first)  # old episodes count too
    times = [float(r["time"]) for r in rows]
    assert times == sorted(times) and times[len(first)] >= times[len(first) - 1]


def test_header_line_names_device_and_threads(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _, out, _ = _train_ppo(tmp_path, capsys, 256)
    lines = out.splitlines()
    assert lines[0].startswith("run directory:")
    assert lines[1] == (
        "ppo on CartPole-v1, seed 0: 256 steps on cpu, 1 torch thread (vector observations)"
    )


@pytest.mark.parametrize(
    "image, cores, busy, threads",
    [(False, 8, 0.0, 1), (True, 2, 0.0, 2), (True, 2, 0.1, 2), (True, 2, 1.0, 1)]
    + [(True, 2, 2.0, 1), (True, 16, 3.6, 12), (True, 1, 0.0, 1)],
)
def test_default_threads_leave_busy_cores_alone(image, cores, busy, threads):
    assert default_threads(image, cores, busy) == threads


WATCH_OMP = """
import importlib.abc, os, sys
seen = []
class Spy(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" and not seen:
            seen.append(os.environ.get("OMP_WAIT_POLICY"))
        return None
sys.meta_path.insert(0, Spy())
from pilot.cli import main
rc = main(ARGV)
print("policy at torch import:", seen[0], rc)
"""
#: commands whose torch runs beside other work: OpenMP's idle threads must sleep. RUN is
#: the run the first one trains (two leaderboard runs sharing a folder on 2 cores,
#: spinning: 5.2x slower, README, runtime)
OMP_COMMANDS = [
    ["train", "ppo", "--env", "CartPole-v1", "--steps", "8", "--set", "n_envs=2",
     "--set", "n_steps=4", "--no-progress"],
    ["eval", "RUN", "--episodes", "1", "--seeds", "0", "--max-steps", "5"],
    ["watch", "RUN", "--out", "v.gif", "--max-steps", "3", "--live", "no"],
    ["leaderboard", "run", "spec.yaml", "--no-report", "--no-progress"],
]  # fmt: skip
SPEC = "name: s\nseeds: 0\nepisodes: 1\nentries: [{name: r, builtin: random}]\n"
SPEC += "tracks: [{name: c, env: CartPole-v1}]\n"


def test_openmp_threads_sleep_when_idle_from_the_first_import_of_torch(tmp_path):
    """The CLI sets the policy before any command, so each one that loads torch has it."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    (tmp_path / "spec.yaml").write_text(SPEC)
    for argv in OMP_COMMANDS:
        runs = sorted(str(p) for p in tmp_path.glob("runs/*") if p.is_dir())
        argv = [runs[-1] if a == "RUN" else a for a in argv]
        script = textwrap.dedent(WATCH_OMP).replace("ARGV", repr(argv))
        proc = subprocess.run(
            [sys.executable, "-c", script],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert "policy at torch import: PASSIVE 0" in proc.stdout, (argv[0], proc.stderr)


def test_training_progress_in_a_log_is_plain_lines(tmp_path, capsys, monkeypatch):
    """stderr is not a terminal here: no carriage-return bar, a line saying where it is."""
    monkeypatch.chdir(tmp_path)
    rc, _, err = run_cli(["train", "ppo", *ENV, "--steps", 256, "--set", "n_envs=4"], capsys)
    assert rc == 0 and "\r" not in err
    assert re.search(r"^256/256 step \(100%\), .* steps?/s, eta .*, return [\d.]+$", err, re.M)


def test_cpu_load_sees_a_process_that_keeps_a_core_busy():
    from pilot.agents.common.device import cpu_load

    cores = len(os.sched_getaffinity(0))
    code = (
        f"import os; os.sched_setaffinity(0, {{{min(os.sched_getaffinity(0))}}})\nwhile True: pass"
    )
    hog = subprocess.Popen([sys.executable, "-c", code])
    try:
        seen, busy = cpu_load(sample_s=0.5)
    finally:
        hog.kill()
        hog.wait()
    assert seen == cores and 0.8 <= busy <= cores
