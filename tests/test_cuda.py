"""The CUDA paths: every agent trains on the GPU through the CLI, a checkpoint saved on CUDA
plays on the CPU and one saved on the CPU trains on, the GPU computes what the CPU does, and
the perception network trains there. Skipped where CUDA is absent (CI has none);
``bench/gpu_check.sh`` runs them on a GPU machine."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_cli import _run_dir, run_cli

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
]

#: (algorithm, env id, a few thousand steps' worth of small settings) — an Atari, a
#: navigation and a driving id, each agent on at least one of them
SMALL_DQN = ["learning_starts=256", "buffer_size=4096", "train_freq=4", "batch_size=32"]
CASES = [
    ("dqn", "pilot/Atari-Breakout-v0", 1024, SMALL_DQN),
    ("ppo", "pilot/Atari-Breakout-v0", 1024, ["n_envs=4", "n_steps=64"]),
    ("a2c", "pilot/Atari-Pong-v0", 1024, ["n_envs=4"]),
    ("reinforce", "pilot/Nav-Grid-v0", 2048, ["n_envs=4"]),
    ("dqn", "pilot/Nav-Grid-v0", 2048, SMALL_DQN),
    ("mcts", "pilot/Nav-Grid-v0", 512, []),
    ("ppo", "pilot/Nav-Continuous-v0", 2048, ["n_envs=4", "n_steps=128"]),
    ("ppo", "pilot/Driving-LaneKeep-v0", 256, ["n_envs=2", "n_steps=128"]),
    ("a2c", "pilot/Driving-Highway-Meta-v0", 256, ["n_envs=2"]),
]


def _sets(values):
    return [x for v in values for x in ("--set", v)]


def _train(capsys, algo, env, steps, values, device="cuda"):
    if env.startswith("pilot/Driving"):
        pytest.importorskip("pybullet")
    rc, out, err = run_cli(
        ["train", algo, "--env", env, "--steps", steps, "--device", device, "--no-progress"]
        + _sets(values),
        capsys,
    )
    assert rc == 0, err
    return Path(_run_dir(out)), out


@pytest.mark.parametrize(
    "algo, env, steps, values", CASES, ids=[f"{a}-{e.split('/')[-1]}" for a, e, _, _ in CASES]
)
def test_trains_on_cuda_plays_on_cpu_and_trains_on(
    algo, env, steps, values, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    run, out = _train(capsys, algo, env, steps, values)
    assert "steps on cuda" in out
    assert json.loads((run / "run.json").read_text())["device"].startswith("cuda")
    # the CUDA checkpoint plays on a CPU-only path
    rc, out, err = run_cli(
        ["eval", run, "--episodes", 1, "--seeds", 0, "--device", "cpu", "--max-steps", 300], capsys
    )
    assert rc == 0, err
    assert "1 episodes" in out or "1 episode" in out
    # and trains on, on CUDA again
    rc, out, err = run_cli(
        ["train", "--resume", run, "--steps", 2 * steps, "--device", "cuda", "--no-progress"],
        capsys,
    )
    assert rc == 0, err
    assert json.loads((run / "run.json").read_text())["total_steps"] == 2 * steps


def test_a_cpu_checkpoint_trains_on_on_cuda(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run, out = _train(capsys, "ppo", "CartPole-v1", 1024, ["n_envs=4", "n_steps=64"], "cpu")
    assert "steps on cpu" in out
    rc, out, err = run_cli(
        ["train", "--resume", run, "--steps", 2048, "--device", "cuda", "--no-progress"], capsys
    )
    assert rc == 0, err
    assert "steps on cuda" in out


def test_the_same_seed_trains_to_the_same_episodes_on_cuda(tmp_path, capsys, monkeypatch):
    """An MLP agent on CUDA is as reproducible as on the CPU: two runs, one seed, the
    same episodes to the last digit."""
    runs = []
    for k in range(2):
        (tmp_path / str(k)).mkdir()
        monkeypatch.chdir(tmp_path / str(k))
        run, _ = _train(capsys, "ppo", "CartPole-v1", 4096, ["n_envs=4", "n_steps=64"])
        with (run / "episodes.csv").open() as f:  # all but the wall-clock column
            runs.append([(r["step"], r["return"], r["length"]) for r in csv.DictReader(f)])
    assert runs[0] == runs[1] and len(runs[0]) > 20


def test_the_gpu_computes_what_the_cpu_does():
    """The Nature CNN and the fusion network (the ``gpu`` preset's widths) give the same
    outputs on both devices, with TF32 off so the GPU's products are full fp32."""
    from test_perception_model import geometry

    from pilot.agents.common.networks import NatureCNN
    from pilot.perception.config import PRESETS
    from pilot.perception.model import FusionNet

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    net = NatureCNN((4, 84, 84))
    x = torch.randint(0, 256, (8, 4, 84, 84), dtype=torch.uint8)
    with torch.no_grad():
        cpu = net(x)
        gpu = net.cuda()(x.cuda()).cpu()
    np.testing.assert_allclose(gpu.numpy(), cpu.numpy(), rtol=1e-4, atol=1e-4)

    geo = geometry()
    fusion = FusionNet(PRESETS["gpu"], geo).eval()
    camera = torch.randint(0, 256, (2, *geo.image_hw, 3), dtype=torch.uint8)
    lidar = torch.randint(0, 6, (2, 2, 32, 32), dtype=torch.uint8)
    with torch.no_grad():
        out_cpu = fusion(camera, lidar)
        out_gpu = fusion.cuda()(camera.cuda(), lidar.cuda())
    assert set(out_gpu) == set(out_cpu)
    for key, value in out_cpu.items():
        np.testing.assert_allclose(out_gpu[key].cpu().numpy(), value.numpy(), rtol=1e-3, atol=1e-3)
