"""`pilot leaderboard run --backend ray`: the same records as the local backend."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from pilot.cli import main

SPEC = {
    "name": "ray-small",
    "seeds": "0-1",
    "episodes": 3,
    "entries": [{"name": "rand", "builtin": "random"}, {"name": "astar", "builtin": "astar"}],
    "tracks": [
        {"name": "cartpole", "env": "CartPole-v1"},
        {"name": "grid", "env": "pilot/Nav-Grid-v0", "max_steps": 100},
    ],
}


def _episodes(folder: Path) -> dict[str, list]:
    return {
        str(p.relative_to(folder)): json.loads(p.read_text())["episodes"]
        for p in sorted((folder / "records").glob("*/*/seed-*.json"))
    }


def _run_both(tmp_path: Path, data: dict) -> tuple[dict, dict]:
    """The episodes of ``data``'s grid run on the local backend and on a local Ray."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(data))
    base = ["leaderboard", "run", str(spec), "--no-report", "--no-progress"]
    assert main([*base, "--out", str(tmp_path / "local")]) == 0
    ray = [*base, "--out", str(tmp_path / "ray"), "--backend", "ray", "--num-cpus", "2"]
    assert main(ray) == 0
    return _episodes(tmp_path / "local"), _episodes(tmp_path / "ray")


@pytest.mark.slow
def test_ray_and_local_backends_give_the_same_records(tmp_path):
    local, remote = _run_both(tmp_path, SPEC)
    assert len(local) == 6  # astar plays only the grid: 2 + 1 tracks × 2 seeds
    assert remote == local
    import ray as ray_module

    assert not ray_module.is_initialized()  # the local Ray stopped with the command


def test_the_ray_backend_without_ray_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    argv = ["leaderboard", "run", str(spec), "--out", str(tmp_path / "o"), "--backend", "ray"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and 'pip install -e ".[ray]"' in err
    assert not (tmp_path / "o" / "records").exists()
    assert main(["leaderboard", "run", str(spec), "--address", "auto"]) == 2
    assert "add --backend ray" in capsys.readouterr().err


@pytest.mark.slow
def test_eval_on_ray_plays_the_same_episodes(tmp_path, capsys):
    """`pilot eval --backend ray` plays each seed as a task: the same episodes as here."""
    runs = tmp_path / "runs"
    train = ["train", "ppo", "--env", "CartPole-v1", "--steps", "512", "--runs-dir", str(runs)]
    assert main([*train, "--no-progress", "--set", "n_steps=64"]) == 0
    run = next(runs.iterdir())
    base = ["eval", str(run), "--seeds", "0", "1", "2", "--episodes", "2"]
    assert main([*base, "--out", str(tmp_path / "local")]) == 0
    assert main([*base, "--out", str(tmp_path / "ray"), "--backend", "ray", "--num-cpus", "2"]) == 0

    def episodes(name: str) -> list:
        return json.loads((tmp_path / name / "summary.json").read_text())["episodes"]

    assert len(episodes("local")) == 6 and episodes("ray") == episodes("local")
    capsys.readouterr()
    assert main([*base, "--address", "auto"]) == 2
    assert "add --backend ray" in capsys.readouterr().err


@pytest.mark.slow
def test_training_cells_on_ray_train_as_they_do_here(tmp_path):
    """A training entry's cells start their ``pilot train`` process from a Ray worker, a
    process with threads, and train to the same episodes as on the local backend. (No
    learning threshold: both backends train on this machine, one thread each, and must
    agree to the last digit, whatever the CPU.)"""
    recipe = {"algo": "ppo", "steps": 512, "set": {"n_steps": 64}}
    data = {**SPEC, "entries": [{"name": "ppo", "train": recipe}], "tracks": SPEC["tracks"][:1]}
    local, remote = _run_both(tmp_path, data)
    assert len(local) == 2 and remote == local
    for seed in (0, 1):
        log = tmp_path / f"ray/runs/ppo/cartpole/seed-{seed}/train.log"
        assert "  eval:  pilot eval " in log.read_text()  # the training ran to its end
