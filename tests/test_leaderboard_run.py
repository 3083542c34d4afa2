"""`pilot leaderboard run`: specs checked up front, one record per cell, resume, provenance."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pilot.cli import main
from pilot.eval.leaderboards.run import SCHEMA, Job, load_records, run_job
from pilot.eval.leaderboards.spec import load_spec, parse_seeds

SMALL = {
    "name": "small",
    "seeds": "0-1",
    "episodes": 2,
    "entries": [{"name": "rand", "builtin": "random"}],
    "tracks": [
        {"name": "cartpole", "env": "CartPole-v1"},
        {"name": "grid", "env": "pilot/Nav-Grid-v0", "max_steps": 100},
    ],
}


def _spec(tmp_path: Path, data: dict, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def _records(folder: Path) -> dict[str, dict]:
    return {
        str(p.relative_to(folder)): json.loads(p.read_text())
        for p in sorted((folder / "records").glob("*/*/seed-*.json"))
    }


def _one_line_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pilot: error: ") and "\n" not in err
    return err


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"episode": 3}, "unknown key 'episode' in the spec (did you mean: episodes?)"),
        ({"seeds": "4-1"}, "runs backwards"),
        ({"seeds": [0, 0]}, "more than once"),
        ({"entries": []}, "non-empty list of entries"),
        ({"entries": [{"name": "x", "builtin": "random", "checkpoint": "r"}]}, "exactly one"),
        ({"entries": [{"name": "x", "builtin": "randm"}]}, "unknown built-in agent 'randm'"),
        ({"entries": [{"name": "x", "train": {"algo": "ppq"}}]}, "unknown algorithm 'ppq'"),
        (
            {"entries": [{"name": "x", "train": {"algo": "ppo", "threads": 0}}]},
            "entry 'x' train threads must be an integer >= 1, got 0",
        ),
        (
            {"entries": [{"name": "x", "train": {"algo": "ppo", "set": {"lr": 1e-3}}}]},
            "entry 'x' on track 'cartpole': unknown config key 'lr' for PPOConfig",
        ),
        (
            {"entries": [{"name": "x", "train": {"algo": "ppo", "set": {"env.sensors": "[x]"}}}]},
            "entry 'x' on track 'cartpole': bad options for CartPole-v1",
        ),
        (
            {"entries": [{"name": "x", "builtin": "random", "tracks": ["grd"]}]},
            "did you mean: grid?",
        ),
        ({"entries": [{"name": "a b", "builtin": "random"}]}, "needs a name"),
        ({"tracks": [{"name": "t", "env": "CartPole-v9"}]}, "CartPole-v1"),
        ({"tracks": [{"name": "t", "env": "CartPole-v1", "protocol": "machado"}]}, "Atari"),
        ({"entries": [{"name": "x", "checkpoint": "no/such/run"}]}, "no/such/run"),
    ],
)
def test_a_bad_spec_is_one_line_before_anything_runs(tmp_path, capsys, change, words):
    path = _spec(tmp_path, {**SMALL, **change})
    err = _one_line_error(capsys, ["leaderboard", "run", str(path), "--out", str(tmp_path / "o")])
    assert words in err
    assert not (tmp_path / "o" / "records").exists()


def test_a_training_that_fails_in_every_cell_is_reported_as_failed_cells(tmp_path, capsys):
    """A recipe whose config and world are sound but whose agent cannot act there (DQN on
    a continuous action space) fails where it trains; with no record at all, the run ends
    on the failed cells and their cause, not on an empty report."""
    bad = {"name": "x", "train": {"algo": "dqn", "steps": 64}}
    data = {
        **SMALL,
        "seeds": "0",
        "entries": [bad],
        "tracks": [{"name": "p", "env": "Pendulum-v1"}],
    }
    out = tmp_path / "o"
    assert main(["leaderboard", "run", str(_spec(tmp_path, data)), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "dqn needs a discrete action space" in err
    assert "1 of 1 cells failed" in err and "training failed (exit 2)" in err
    assert "holds no leaderboard records" not in err and not (out / "report").exists()


def test_a_training_cell_shows_its_training_progress_and_logs_it(tmp_path):
    """A cell that trains hands the training's progress lines to the grid's progress line
    as they come (the last, at the end, always comes: 512/512 steps) and keeps them in its
    ``train.log``; before, the grid's line stood still for as long as a training ran."""
    recipe = {"algo": "ppo", "steps": 512, "set": {"n_steps": 64}}
    data = {**SMALL, "seeds": "0", "entries": [{"name": "ppo", "train": recipe}]}
    spec = load_spec(_spec(tmp_path, {**data, "tracks": [SMALL["tracks"][0]]}))
    seen: list[str] = []
    run_job(Job(spec.entries[0], spec.tracks[0], 0, 1, str(tmp_path / "o")), seen.append)
    training = [text for text in seen if "training" in text]
    assert training[-1].startswith("ppo / cartpole / seed 0: training 512/512 step (100%)")
    assert "512/512 step (100%)" in (tmp_path / "o/runs/ppo/cartpole/seed-0/train.log").read_text()


@pytest.mark.slow
def test_a_training_cell_trains_as_pilot_train_does_whatever_the_grid_ran_before(tmp_path):
    """A highway PPO cell (camera, lidar, state; the recipe pins its threads) after a
    CartPole PPO cell in the same grid trains to the same episodes, to the last digit, as
    ``pilot train`` run by hand with the same recipe. Trained in the grid's own process,
    its first return differed in the ninth digit after the CartPole training (and 60k
    steps later the policies had parted)."""
    sensors = {"env.sensors": "[camera,lidar,state]", "env.camera.width": 64}
    data = {
        **SMALL,
        "seeds": "0",
        "episodes": 1,
        "entries": [
            {"name": "a", "train": {"algo": "ppo", "steps": 256}, "tracks": ["cartpole"]},
            {
                "name": "b",
                "train": {"algo": "ppo", "steps": 256, "threads": 1, "set": sensors},
                "tracks": ["hw"],
            },
        ],
        "tracks": [
            {"name": "cartpole", "env": "CartPole-v1"},
            {"name": "hw", "env": "pilot/Driving-Highway-v0", "max_steps": 20},
        ],
    }
    out = tmp_path / "o"
    argv = ["leaderboard", "run", str(_spec(tmp_path, data)), "--out", str(out), "--no-report"]
    assert main([*argv, "--no-progress"]) == 0
    cell = out / "runs/b/hw/seed-0"
    assert "1 torch thread (--threads)" in (cell / "train.log").read_text()
    by_hand = ["train", "ppo", "--env", "pilot/Driving-Highway-v0", "--seed", "0"]
    by_hand += ["--steps", "256", "--threads", "1", "--runs-dir", str(tmp_path / "hand")]
    for key, value in sensors.items():
        by_hand += ["--set", f"{key}={value}"]
    subprocess.run([sys.executable, "-m", "pilot", *by_hand, "--no-progress"], check=True)

    def episodes(folder: Path) -> list[list[str]]:
        (csv,) = folder.glob("*/episodes.csv")
        return [row.split(",")[:1] + row.split(",")[2:] for row in csv.read_text().split()]

    assert len(episodes(cell)) > 5 and episodes(cell) == episodes(tmp_path / "hand")


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, dead and not yet reaped, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _trainings(pid: int) -> list[int]:
    """The ``pilot train`` processes started by process ``pid``."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if parent == pid and b"train" in (stat.parent / "cmdline").read_bytes():
                kids.append(int(stat.parent.name))
        except OSError:  # gone meanwhile
            continue
    return kids


def test_a_grid_killed_while_a_cell_trains_takes_the_training_with_it(tmp_path):
    """SIGKILL to the grid alone, mid-training: its training process dies at once too, so
    nothing goes on writing into the run that the next grid resumes. (Without being told
    to, it would live until its next progress line met the closed pipe, up to 5 s.)"""
    data = {**SMALL, "seeds": "0", "episodes": 1, "tracks": [SMALL["tracks"][0]]}
    data["entries"] = [{"name": "ppo", "train": {"algo": "ppo", "steps": 10_000_000}}]
    cmd = [sys.executable, "-m", "pilot", "leaderboard", "run", str(_spec(tmp_path, data))]
    grid = subprocess.Popen([*cmd, "--out", str(tmp_path / "o"), "--no-progress"])
    deadline = time.monotonic() + 60
    while not (training := _trainings(grid.pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert training, "no training process started"
    grid.kill()
    grid.wait()
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline and any(map(_alive, training)):
        time.sleep(0.05)
    assert not any(map(_alive, training))


def test_spec_files_and_seed_ranges(tmp_path, capsys):
    assert parse_seeds("0-2,5") == (0, 1, 2, 5)
    assert parse_seeds([3]) == (3,)
    err = _one_line_error(capsys, ["leaderboard", "run", str(tmp_path / "nope.yaml")])
    assert "no such spec file" in err and "driving" in err  # names the shipped specs
    (tmp_path / "bad.yaml").write_text("entries: [unclosed\n")
    assert "bad.yaml" in _one_line_error(capsys, ["leaderboard", "run", str(tmp_path / "bad.yaml")])
    assert load_spec("driving").name == "driving"  # shipped specs by name


def test_a_modular_entry_plays_only_the_driving_tracks(tmp_path, capsys):
    data = {**SMALL, "seeds": [0], "episodes": 1}
    data["entries"] = [{"name": "stack", "builtin": "modular"}]
    data["tracks"] = [*SMALL["tracks"], {"name": "lk", "env": "pilot/Driving-LaneKeep-v0"}]
    data["tracks"][-1]["max_steps"] = 30
    out = tmp_path / "o"
    assert main(["leaderboard", "run", str(_spec(tmp_path, data)), "--out", str(out),
                 "--no-report", "--no-progress"]) == 0  # fmt: skip
    assert "stack does not play cartpole" in capsys.readouterr().out
    assert list(_records(out)) == ["records/stack/lk/seed-0.json"]
    # naming a track it cannot drive is a mistake, not a silent gap
    data["entries"][0]["tracks"] = ["cartpole"]
    err = _one_line_error(
        capsys, ["leaderboard", "run", str(_spec(tmp_path, data)), "--out", str(out)]
    )
    assert "cannot play track 'cartpole'" in err


def test_records_carry_provenance_and_a_rerun_plays_nothing(tmp_path, capsys):
    out = tmp_path / "o"
    argv = ["leaderboard", "run", str(_spec(tmp_path, SMALL)), "--out", str(out), "--no-report"]
    assert main(argv + ["--no-progress"]) == 0
    records = _records(out)
    assert sorted(records) == [
        f"records/rand/{t}/seed-{s}.json" for t in ("cartpole", "grid") for s in (0, 1)
    ]
    r = records["records/rand/grid/seed-1.json"]
    assert r["schema"] == SCHEMA and r["kind"] == "navigation" and r["seed"] == 1
    assert len(r["episodes"]) == 2
    nav = r["episodes"][0]["navigation"]
    assert nav["optimal_length"] > 0 and nav["path_length"] >= 0
    prov = r["provenance"]
    for key in ("git_commit", "versions", "config", "acting", "wall_s", "created", "seeds"):
        assert key in prov
    assert prov["entry_kind"] == "builtin" and prov["config"] == {"seed": 1}
    assert prov["checkpoint_step"] is None  # not trained: no step to report
    mtimes = {p: (out / p).stat().st_mtime_ns for p in records}
    assert main(argv) == 0
    assert "4 done, 0 to play" in capsys.readouterr().out
    assert {p: (out / p).stat().st_mtime_ns for p in records} == mtimes
    # the same spec and seeds in another folder give the same episodes
    assert main(["leaderboard", "run", str(tmp_path / "spec.yaml"), "--out", str(tmp_path / "p"),
                 "--no-report", "--no-progress"]) == 0  # fmt: skip
    again = _records(tmp_path / "p")
    assert {k: v["episodes"] for k, v in again.items()} == {
        k: v["episodes"] for k, v in records.items()
    }


def test_a_cell_another_run_is_playing_is_left_to_it(tmp_path, capsys):
    """Two runs on one folder: a cell whose lock another process holds is not played (no
    record, named in the output); once the lock is free, the next run plays it; a cell
    finished by another run after this one planned its grid is not played again."""
    import fcntl

    from pilot.eval.leaderboards.run import plan_grid, run_job

    out = tmp_path / "o"
    data = {**SMALL, "seeds": "0", "tracks": SMALL["tracks"][:1]}
    argv = ["leaderboard", "run", str(_spec(tmp_path, data)), "--out", str(out), "--no-progress"]
    lock = out / "locks" / "rand" / "cartpole" / "seed-0.lock"
    lock.parent.mkdir(parents=True)
    with lock.open("a") as held:  # another `leaderboard run` playing the cell
        fcntl.flock(held, fcntl.LOCK_EX)
        assert main(argv) == 0
        printed = capsys.readouterr().out
        assert "left to another run" in printed
        assert "rand / cartpole / seed 0" in printed and not _records(out)
        assert not (out / "report").exists()
    assert main(argv) == 0  # released: played now
    assert list(_records(out)) == ["records/rand/cartpole/seed-0.json"]
    # planned as to do, finished elsewhere before its turn: read back, not played again
    record = out / "records" / "rand" / "cartpole" / "seed-0.json"
    job = plan_grid(load_spec(tmp_path / "spec.yaml"), out).done[0]
    before = record.stat().st_mtime_ns
    assert run_job(job)["label"] == job.label and record.stat().st_mtime_ns == before


def test_a_changed_or_broken_record_is_moved_aside_and_played_again(tmp_path, capsys):
    out = tmp_path / "o"
    argv = ["leaderboard", "run", str(_spec(tmp_path, SMALL)), "--out", str(out), "--no-report"]
    assert main(argv + ["--no-progress"]) == 0
    before = _records(out)
    (out / "records/rand/grid/seed-0.json").write_text('{"schema": "pilot.leaderboard/1", "ep')
    assert main(argv + ["--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "rand / grid / seed 0: its record cannot be read; playing it again" in text
    assert sorted(_records(out)) == sorted(before)
    assert (
        _records(out)["records/rand/grid/seed-0.json"]["episodes"]
        == (before["records/rand/grid/seed-0.json"]["episodes"])
    )
    kept = list((out / "records/.superseded/rand/grid").glob("seed-0-*.json"))
    assert len(kept) == 1 and kept[0].read_text().endswith('"ep')
    # a record the report cannot trust is an error naming it
    (out / "records/rand/cartpole/seed-1.json").write_text("[]")
    err = _one_line_error(capsys, ["leaderboard", "report", str(out)])
    assert "seed-1.json is not a leaderboard record" in err


def test_a_changed_checkpoint_is_flagged_and_evaluated_again(tmp_path, capsys):
    runs = tmp_path / "runs"
    train = ["train", "ppo", "--env", "CartPole-v1", "--steps", "512", "--runs-dir", str(runs)]
    assert main([*train, "--no-progress", "--set", "n_steps=64"]) == 0
    run = next(runs.iterdir())
    data = {**SMALL, "seeds": [0], "episodes": 1, "tracks": [SMALL["tracks"][0]]}
    data["entries"] = [{"name": "ppo", "checkpoint": str(run)}]
    out = tmp_path / "o"
    argv = ["leaderboard", "run", str(_spec(tmp_path, data)), "--out", str(out), "--no-report"]
    assert main(argv + ["--no-progress"]) == 0
    first = _records(out)["records/ppo/cartpole/seed-0.json"]["provenance"]
    assert first["checkpoint_step"] == 512 and first["run_dir"] == str(run)
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--steps", "1024", "--no-progress"]) == 0
    assert main(argv + ["--no-progress"]) == 0
    assert "its checkpoint changed since it was played; playing it again" in capsys.readouterr().out
    second = _records(out)["records/ppo/cartpole/seed-0.json"]["provenance"]
    assert second["checkpoint_step"] == 1024
    assert second["checkpoint_sha256"] != first["checkpoint_sha256"]
    assert len(list((out / "records/.superseded").rglob("*.json"))) == 1
    # a checkpoint damaged after it was saved is refused before anything plays
    record = (out / "records/ppo/cartpole/seed-0.json").read_bytes()
    latest = max((run / "checkpoints").glob("step_*.pt"))
    latest.write_bytes(latest.read_bytes() + b"\0")
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "tampered with or damaged" in err and err.count("\n") == 1
    assert (out / "records/ppo/cartpole/seed-0.json").read_bytes() == record


@pytest.mark.slow
def test_a_grid_killed_midway_finishes_with_every_record_once(tmp_path):
    """SIGKILL after the first record, run again: every cell once, same numbers as a grid
    that was never interrupted."""
    data = {**SMALL, "seeds": "0-2", "episodes": 1}
    data["entries"] = [{"name": "stack", "builtin": "modular"}]
    data["tracks"] = [{"name": "lk", "env": "pilot/Driving-LaneKeep-v0", "max_steps": 150}]
    spec = _spec(tmp_path, data)
    cmd = [sys.executable, "-m", "pilot", "leaderboard", "run", str(spec), "--no-report"]
    out = tmp_path / "killed"
    proc = subprocess.Popen([*cmd, "--out", str(out)], start_new_session=True)
    deadline = time.monotonic() + 120
    while not list((out / "records").rglob("seed-*.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    written = len(list((out / "records").rglob("seed-*.json")))
    assert 1 <= written < 3, "the kill came after the grid was done; make cells longer"
    assert subprocess.run([*cmd, "--out", str(out)], capture_output=True).returncode == 0
    assert subprocess.run([*cmd, "--out", str(tmp_path / "whole")]).returncode == 0
    resumed, whole = _records(out), _records(tmp_path / "whole")
    assert sorted(resumed) == [f"records/stack/lk/seed-{s}.json" for s in range(3)]
    assert {k: v["episodes"] for k, v in resumed.items()} == {
        k: v["episodes"] for k, v in whole.items()
    }
    assert not list(out.rglob("*.tmp")) and not (out / "records/.superseded").exists()
    assert len(load_records(out)) == 3


def test_every_entry_meets_the_same_routes(tmp_path):
    """Each episode starts from its own seed: after a first route the random agent and the
    stack drive differently (pedestrians spawn from the env's generator as time passes),
    yet their second and third routes are the same; played in a row from one reset seed,
    as `pilot eval` does, they are not."""
    from pilot.eval.evaluate import run_episodes
    from pilot.playing import act, load_for_playing, read_target

    data = {**SMALL, "seeds": [0], "episodes": 3}
    data["entries"] = [
        {"name": "stack", "builtin": "modular"},
        {"name": "rand", "builtin": "random"},
    ]
    data["tracks"] = [{"name": "x", "env": "pilot/Driving-Intersection-v0", "max_steps": 60}]
    out = tmp_path / "o"
    argv = ["leaderboard", "run", str(_spec(tmp_path, data)), "--out", str(out), "--no-report"]
    assert main([*argv, "--no-progress"]) == 0
    records = _records(out)

    def routes(name: str) -> list[float]:
        episodes = records[f"records/{name}/x/seed-0.json"]["episodes"]
        return [e["driving"]["route_length"] for e in episodes]

    assert routes("stack") == routes("rand") and len(set(routes("stack"))) > 1
    in_a_row = []
    for name in ("modular", "random"):
        meta = read_target(name, "pilot/Driving-Intersection-v0", [])
        agent, _ = load_for_playing(name, "cpu", meta)
        results = run_episodes(
            lambda obs, envs, a=agent: act(a, obs, True, envs),
            "pilot/Driving-Intersection-v0", [0], 3, max_steps=60,
        )  # fmt: skip
        in_a_row.append([r.driving.route_length for r in results])
    assert in_a_row[0] != in_a_row[1]  # why the leaderboard reseeds every episode


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--threads", "0"], "--threads must be at least 1, got 0"),
        (["--threads", "1", "--backend", "ray"], "--threads is for the local backend"),
    ],
)
def test_bad_threads_are_one_line_before_anything_runs(tmp_path, capsys, extra, words):
    argv = ["leaderboard", "run", str(_spec(tmp_path, SMALL)), "--out", str(tmp_path / "o")]
    assert words in _one_line_error(capsys, argv + extra)
    assert not (tmp_path / "o").exists()


def test_the_cells_play_on_the_threads_asked_for(tmp_path, capsys):
    """Two runs sharing a machine give each `--threads 1`; without it the count follows
    the idle cores, as `pilot train` picks for an image network."""
    import torch

    before = torch.get_num_threads()
    argv = ["leaderboard", "run", str(_spec(tmp_path, SMALL)), "--no-report", "--no-progress"]
    try:
        torch.set_num_threads(3)
        assert main(argv + ["--out", str(tmp_path / "a"), "--threads", "1"]) == 0
        assert torch.get_num_threads() == 1
        assert "to play (local, 1 torch thread: --threads)" in capsys.readouterr().out
        assert main(argv + ["--out", str(tmp_path / "b")]) == 0
        header = capsys.readouterr().out.splitlines()[0]
        assert re.search(r"to play \(local, \d+ torch threads?: \d+ cores, [\d.]+ busy\)", header)
    finally:
        torch.set_num_threads(before)
    # the thread count is not part of a cell: both folders hold the same episodes
    assert {k: v["episodes"] for k, v in _records(tmp_path / "a").items()} == {
        k: v["episodes"] for k, v in _records(tmp_path / "b").items()
    }
