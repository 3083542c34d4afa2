"""Where our CUDA training spends its time: PPO and DQN on Breakout under torch's profiler.

Prints, for each, the steps/s of the profiled stretch, the host-device copies and
synchronisations per agent step (the usual hot spots of an RL loop on a GPU), and the
operators that take the most host and device time.

    python bench/gpu_profile.py                # needs CUDA
    python bench/gpu_profile.py --steps 4096 --rows 12
    python bench/gpu_profile.py --device cpu --steps 512   # the same on the CPU
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from pilot.agents import build_config, get_algorithm
from pilot.agents.common.recorder import Recorder
from pilot.bench.spine import DQN_BREAKOUT, PPO_BREAKOUT

#: the spine benchmark's Breakout settings, so the profile is of the runs it times
CASES = {"ppo": PPO_BREAKOUT, "dqn": {"n_envs": 1, **DQN_BREAKOUT}}
#: runtime calls that wait for the device or move data between host and device
SYNC = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize")
COPY = ("cudaMemcpyAsync", "cudaMemcpy")


def profile_one(algo: str, steps: int, rows: int, device: str) -> None:
    env_id = "pilot/Atari-Breakout-v0"
    config = build_config(algo, env_id, overrides=CASES[algo])
    agent = get_algorithm(algo)(env_id, config, seed=0, device=device)
    # PPO's first rollouts; past DQN's warm-up, so its updates are in the window
    warm = 2048 if algo == "ppo" else CASES["dqn"]["learning_starts"] + 200
    agent.learn(warm, Recorder(None, warm + steps))
    if algo == "dqn":  # go on with the filled buffer, as `--save-replay` resumes do
        agent.load_replay_state(*agent.replay_state())
    cuda = device == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    sync()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        start, first = time.perf_counter(), agent.step
        agent.learn(warm + steps, Recorder(None, warm + steps))
        sync()
        elapsed = time.perf_counter() - start
    done = agent.step - first
    events = prof.key_averages()
    count = {e.key: e.count for e in events}
    syncs = sum(count.get(k, 0) for k in SYNC)
    copies = sum(count.get(k, 0) for k in COPY)
    device_us = sum(e.self_device_time_total for e in events)
    print(
        f"\n{algo.upper()} Breakout on {torch.cuda.get_device_name() if cuda else 'cpu'}: "
        f"{done} steps in "
        f"{elapsed:.2f} s under the profiler ({done / elapsed:,.0f} steps/s); "
        f"GPU busy {device_us / 1e6 / elapsed:.0%} of the wall time; "
        f"per agent step {syncs / done:.2f} synchronisations, {copies / done:.2f} copies"
    )
    print(events.table(sort_by="self_cpu_time_total", row_limit=rows))
    if cuda:
        print(events.table(sort_by="self_device_time_total", row_limit=rows))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=4096, help="agent steps profiled per algorithm")
    p.add_argument("--rows", type=int, default=12, help="operators shown per table")
    p.add_argument("--only", default="ppo,dqn")
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    args = p.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("CUDA is not available here (--device cpu profiles the CPU)")
    torch.set_num_threads(1)
    for algo in args.only.split(","):
        profile_one(algo, args.steps, args.rows, args.device)


if __name__ == "__main__":
    main()
