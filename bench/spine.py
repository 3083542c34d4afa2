"""Spine benchmark: pilot vs its peers, side by side in one run on one machine.

Sections (pick with --only):
  collect       Atari collection, 8 envs: raw ale_py AtariVectorEnv, Gymnasium
                AsyncVectorEnv + AtariPreprocessing, single Gymnasium env, and pilot's VecEnv
  ppo-cartpole  our PPO vs Stable-Baselines3 PPO, CartPole-v1, 8 envs, n_steps 128
  ppo-breakout  our PPO vs SB3 PPO (CnnPolicy), Breakout, 8 envs, same hyperparameters
  dqn-breakout  our DQN vs SB3 DQN (CnnPolicy), Breakout, same hyperparameters

Targets (issue "pilot spine"): training throughput ≥ 2× SB3 for each pair; our Atari
collection ≥ 90% of raw AtariVectorEnv. Prints steps/s and ratios; machines are shared and
noisy, so compare the ratios of one run, not absolute numbers across runs.

    python bench/spine.py                 # all sections
    python bench/spine.py --only collect --seconds 10
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable

import numpy as np
import torch


def rate(fn: Callable[[], int], seconds: float) -> float:
    """Steps per second of ``fn`` (which does some steps and returns how many), after warm-up."""
    fn()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        n += fn()
    return n / (time.perf_counter() - start)


# ------------------------------------------------------------------------------- collect
def bench_collect(seconds: float, n_envs: int = 8, threads: int = 2) -> list[tuple[str, float]]:
    import ale_py
    import gymnasium as gym
    from ale_py.vector_env import AtariVectorEnv
    from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation

    from pilot.envs import make_env, make_vec_env

    gym.register_envs(ale_py)
    rng = np.random.default_rng(0)
    out = []

    raw = AtariVectorEnv("breakout", n_envs, num_threads=threads, autoreset_mode="SameStep", reward_clipping=False)
    raw.reset(seed=0)
    n_actions = raw.single_action_space.n

    def raw_step() -> int:
        for _ in range(100):
            raw.step(rng.integers(0, n_actions, n_envs))
        return 100 * n_envs

    out.append(("raw ale_py AtariVectorEnv", rate(raw_step, seconds)))
    raw.close()

    ours = make_vec_env("pilot/Atari-Breakout-v0", n_envs, seed=0, training=True, num_threads=threads)
    ours.reset()

    def ours_step() -> int:
        for _ in range(100):
            ours.step(rng.integers(0, n_actions, n_envs))
        return 100 * n_envs

    out.append(("pilot VecEnv (ale backend)", rate(ours_step, seconds)))
    ours.close()

    def make_gym():
        env = gym.make("ALE/Breakout-v5", frameskip=1, repeat_action_probability=0.0)
        return FrameStackObservation(AtariPreprocessing(env), 4)

    asyn = gym.vector.AsyncVectorEnv([make_gym] * n_envs)
    asyn.reset(seed=0)

    def async_step() -> int:
        for _ in range(20):
            asyn.step(rng.integers(0, n_actions, n_envs))
        return 20 * n_envs

    out.append(("Gymnasium AsyncVectorEnv + AtariPreprocessing", rate(async_step, seconds)))
    asyn.close()

    single = make_env("pilot/Atari-Breakout-v0")
    single.reset(seed=0)

    def single_step() -> int:
        for _ in range(100):
            _, _, term, trunc, _ = single.step(int(rng.integers(n_actions)))
            if term or trunc:
                single.reset()
        return 100

    out.append(("pilot single env (Gymnasium wrappers)", rate(single_step, seconds)))
    single.close()
    return out


def report(title: str, rows: list[tuple[str, float]], base: str | None = None) -> None:
    print(f"\n## {title}")
    ref = dict(rows).get(base) if base else None
    for name, value in rows:
        ratio = f"  {value / ref:5.2f}× {base}" if ref else ""
        print(f"  {name:<48} {value:9.0f} steps/s{ratio}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default="collect,ppo-cartpole,ppo-breakout,dqn-breakout")
    p.add_argument("--seconds", type=float, default=15.0, help="measuring time per contender")
    args = p.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, cuda {torch.cuda.is_available()}")
    sections = args.only.split(",")
    if "collect" in sections:
        rows = bench_collect(args.seconds)
        report("Atari collection, Breakout, 8 envs, random actions", rows, base="raw ale_py AtariVectorEnv")
    for name in ("ppo-cartpole", "ppo-breakout", "dqn-breakout"):
        if name in sections:
            title, rows, base = TRAINING[name](args.seconds)
            report(title, rows, base=base)


TRAINING: dict[str, Callable] = {}

if __name__ == "__main__":
    main()
