"""Spine benchmark: pilot vs its peers, side by side in one run on one machine.

Sections (pick with --only):
  collect       Atari collection, 8 envs: raw ale_py AtariVectorEnv, Gymnasium
                AsyncVectorEnv + AtariPreprocessing, single Gymnasium env, and pilot's VecEnv
  ppo-cartpole  our PPO vs Stable-Baselines3 PPO, CartPole-v1, 8 envs, n_steps 128
  ppo-breakout  our PPO vs SB3 PPO (CnnPolicy), Breakout, 8 envs, same hyperparameters
  dqn-breakout  our DQN vs SB3 DQN (CnnPolicy), Breakout, same hyperparameters
  devices       our PPO and DQN on Breakout, CPU vs CUDA (needs a GPU)

Targets (issue "pilot spine"): training throughput ≥ 2× SB3 for each pair; our Atari
collection ≥ 90% of raw AtariVectorEnv. Prints steps/s and ratios; machines are shared and
noisy, so compare the ratios of one run, not absolute numbers across runs.

    python bench/spine.py                 # all sections
    python bench/spine.py --only collect --seconds 10
    python bench/spine.py --device cuda --only ppo-breakout,dqn-breakout,devices
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

    raw = AtariVectorEnv(
        "breakout", n_envs, num_threads=threads, autoreset_mode="SameStep", reward_clipping=False
    )
    raw.reset(seed=0)
    n_actions = raw.single_action_space.n

    def stepper(vec) -> Callable[[], int]:
        def step() -> int:
            for _ in range(100):
                vec.step(rng.integers(0, n_actions, n_envs))
            return 100 * n_envs

        return step

    out.append(("raw ale_py AtariVectorEnv", rate(stepper(raw), seconds)))
    raw.close()

    ours = make_vec_env(
        "pilot/Atari-Breakout-v0", n_envs, seed=0, training=True, num_threads=threads
    )
    ours.reset()
    out.append(("pilot VecEnv (ale backend)", rate(stepper(ours), seconds)))
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
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--only", default="collect,ppo-cartpole,ppo-breakout,dqn-breakout")
    p.add_argument("--seconds", type=float, default=15.0, help="measuring time per contender")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads for both sides (on 2 shared cores, 2 threads "
        "oversubscribe and both libraries slow down 10-40x)",
    )
    p.add_argument(
        "--rounds", type=int, default=2, help="alternate the contenders this often, keep each best"
    )
    p.add_argument(
        "--device", default="cpu", choices=["cpu", "cuda"], help="where both sides train"
    )
    args = p.parse_args()
    sections = args.only.split(",")
    wants_cuda = args.device == "cuda" or "devices" in sections
    if wants_cuda and not torch.cuda.is_available():
        p.error("CUDA is not available here (--device cuda and the 'devices' section need it)")
    torch.set_num_threads(args.threads)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__} ({args.threads} thread(s)), cuda {torch.cuda.is_available()}"
        + (f" ({torch.cuda.get_device_name()})" if torch.cuda.is_available() else "")
        + f", training on {args.device}"
    )
    if "collect" in sections:
        rows = bench_collect(args.seconds)
        report(
            "Atari collection, Breakout, 8 envs, random actions",
            rows,
            base="raw ale_py AtariVectorEnv",
        )
    for name in ("ppo-cartpole", "ppo-breakout", "dqn-breakout", "devices"):
        if name in sections:
            best: dict[str, float] = {}
            for _ in range(args.rounds):  # interleaved, so load drift hits both sides alike
                title, rows, base = TRAINING[name](args.seconds, args.device)
                for who, value in rows:
                    best[who] = max(best.get(who, 0.0), value)
            report(
                f"{title}, best of {args.rounds} interleaved rounds", list(best.items()), base=base
            )


def _ours(algo: str, env_id: str, steps: int, values: dict, device: str) -> float:
    """Steps/s of our agent's whole ``learn`` (collection + updates) for ``steps`` steps."""
    from pilot.agents import build_config, get_algorithm
    from pilot.agents.common.recorder import Recorder

    config = build_config(algo, env_id, overrides=values)
    agent = get_algorithm(algo)(env_id, config, seed=0, device=device)
    start = time.perf_counter()
    agent.learn(steps, Recorder(None, steps))
    return agent.step / (time.perf_counter() - start)


def _sb3(model, steps: int) -> float:
    start = time.perf_counter()
    model.learn(steps)
    return model.num_timesteps / (time.perf_counter() - start)


def _steps(seconds: float, per_second_guess: float, multiple: int) -> int:
    n = int(seconds * per_second_guess) // multiple * multiple
    return max(n, multiple)


def bench_ppo_cartpole(seconds: float, device: str):
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env as sb3_vec

    hp = dict(
        n_envs=8, n_steps=128, n_epochs=4, n_minibatches=4, hidden=[64, 64], activation="tanh"
    )
    steps = _steps(seconds, 1500, 1024)
    ours = _ours("ppo", "CartPole-v1", steps, hp, device)
    model = PPO(
        "MlpPolicy",
        sb3_vec("CartPole-v1", n_envs=8, seed=0),
        n_steps=128,
        batch_size=256,
        n_epochs=4,
        learning_rate=2.5e-4,
        device=device,
        seed=0,
    )
    theirs = _sb3(model, steps)
    title = f"PPO training, CartPole-v1, MLP 64x64, 8 envs, n_steps 128, {steps} steps"
    return title, [("SB3 PPO", theirs), ("pilot PPO", ours)], "SB3 PPO"


def _sb3_breakout(n_envs: int):
    import ale_py
    import gymnasium as gym
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack

    gym.register_envs(ale_py)
    return VecFrameStack(make_atari_env("BreakoutNoFrameskip-v4", n_envs=n_envs, seed=0), 4)


# Our side of the Breakout pairs; the devices section trains with the very same values.
PPO_BREAKOUT = dict(n_envs=8, n_steps=128, n_epochs=4, n_minibatches=4)
# one dict for both sides of the DQN pair, so "same hyperparameters" cannot drift (the
# keys share names with SB3's)
DQN_BREAKOUT = dict(
    buffer_size=100_000,
    learning_starts=1000,
    batch_size=32,
    train_freq=4,
    gradient_steps=1,
    target_update_interval=1000,
    learning_rate=1e-4,
)


#: rough steps/s of our Breakout training per device, to size each run to about --seconds
PPO_RATE = {"cpu": 160, "cuda": 1200}
DQN_RATE = {"cpu": 85, "cuda": 400}


def _ppo_breakout_steps(seconds: float, device: str) -> int:
    return _steps(seconds, PPO_RATE[device], 1024)


def _dqn_breakout_steps(seconds: float, device: str) -> int:
    return DQN_BREAKOUT["learning_starts"] + _steps(seconds, DQN_RATE[device], 100)


def bench_ppo_breakout(seconds: float, device: str):
    from stable_baselines3 import PPO

    steps = _ppo_breakout_steps(seconds, device)
    ours = _ours("ppo", "pilot/Atari-Breakout-v0", steps, PPO_BREAKOUT, device)
    model = PPO(
        "CnnPolicy",
        _sb3_breakout(8),
        n_steps=128,
        batch_size=256,
        n_epochs=4,
        learning_rate=2.5e-4,
        clip_range=0.1,
        ent_coef=0.01,
        device=device,
        seed=0,
    )
    theirs = _sb3(model, steps)
    title = (
        f"PPO training, Breakout, Nature CNN, 8 envs, n_steps 128, 4x4 minibatches, {steps} steps"
    )
    return title, [("SB3 PPO", theirs), ("pilot PPO", ours)], "SB3 PPO"


def bench_dqn_breakout(seconds: float, device: str):
    from stable_baselines3 import DQN

    steps = _dqn_breakout_steps(seconds, device)
    ours = _ours("dqn", "pilot/Atari-Breakout-v0", steps, {"n_envs": 1, **DQN_BREAKOUT}, device)
    model = DQN(
        "CnnPolicy",
        _sb3_breakout(1),
        **DQN_BREAKOUT,
        optimize_memory_usage=False,
        device=device,
        seed=0,
    )
    theirs = _sb3(model, steps)
    title = f"DQN training, Breakout, Nature CNN, 1 env, batch 32, train_freq 4, {steps} steps (1000 warm-up)"
    return title, [("SB3 DQN", theirs), ("pilot DQN", ours)], "SB3 DQN"


def bench_devices(seconds: float, device: str):
    """Our own training throughput on CPU and on CUDA, same hyperparameters, one run."""
    del device  # both, by definition
    dqn = {"n_envs": 1, **DQN_BREAKOUT}
    rows = []
    for where in ("cpu", "cuda"):
        ppo_steps, dqn_steps = (
            _ppo_breakout_steps(seconds, where),
            _dqn_breakout_steps(seconds, where),
        )
        ppo_rate = _ours("ppo", "pilot/Atari-Breakout-v0", ppo_steps, PPO_BREAKOUT, where)
        rows.append((f"pilot PPO {where}", ppo_rate))
        dqn_rate = _ours("dqn", "pilot/Atari-Breakout-v0", dqn_steps, dqn, where)
        rows.append((f"pilot DQN {where}", dqn_rate))
    title = (
        "Our training on CPU vs CUDA, Breakout, Nature CNN (PPO 8 envs; DQN 1 env, 1000 warm-up)"
    )
    return title, rows, "pilot PPO cpu"


TRAINING: dict[str, Callable] = {
    "ppo-cartpole": bench_ppo_cartpole,
    "ppo-breakout": bench_ppo_breakout,
    "dqn-breakout": bench_dqn_breakout,
    "devices": bench_devices,
}

if __name__ == "__main__":
    main()
