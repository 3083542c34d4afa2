"""Torch CPU threads for image networks on a shared machine: the alternatives side by side.

DQN on Breakout (Nature CNN, batch 32, an update every 4 steps) is trained for a fixed
wall time in a fresh process per alternative, because OpenMP reads ``OMP_WAIT_POLICY``
once, when torch loads. Each alternative runs on the machine as it is and again with a
busy-loop process taking one core, interleaved, best of ``--rounds``:

  torch default      torch's own thread count (every core), OpenMP's default waiting
  threads 1          ``--threads 1``
  default + PASSIVE  every core, ``OMP_WAIT_POLICY=PASSIVE`` (idle threads sleep)
  free cores         as many threads as cores idle when training starts
  pilot default      what ``pilot train`` picks: free cores, with PASSIVE

Prints steps/s, the ratio to torch's default under the same load, and the ratio to the
same alternative without the busy loop (how gracefully it degrades).

    python bench/threads.py                      # 10 runs a round; ~15 min a round on 2 busy cores
    python bench/threads.py --seconds 10 --rounds 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

ALTERNATIVES = {
    "torch default": {"threads": None, "passive": False},
    "threads 1": {"threads": 1, "passive": False},
    "default + PASSIVE": {"threads": None, "passive": True},
    "free cores": {"threads": "free", "passive": False},
    "pilot default": {"threads": "free", "passive": True},
}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def worker(threads: str, seconds: float) -> dict:
    """Train DQN on Breakout in this process; steps/s once updates have begun."""
    from pilot.agents.common.device import cpu_load

    cores, busy = cpu_load()
    import torch

    from pilot.agents import build_config, get_algorithm
    from pilot.agents.common.device import default_threads
    from pilot.agents.common.recorder import Recorder

    if threads == "free":
        torch.set_num_threads(default_threads(True, cores, busy))
    elif threads != "none":
        torch.set_num_threads(int(threads))
    env_id = "pilot/Atari-Breakout-v0"
    values = {"learning_starts": 500, "buffer_size": 20_000, "log_every": 0}
    config = build_config("dqn", env_id, overrides=values)
    agent = get_algorithm("dqn")(env_id, config, seed=0, device="cpu")

    class Done(Exception):
        pass

    class Clock(Recorder):
        start: tuple[float, int] | None = None

        def log(self, step, metrics):  # no files, no checks: only the clock matters
            pass

        def progress(self, step: int) -> None:
            if self.start is None:
                if step >= values["learning_starts"] + 100:  # updates have begun
                    self.start = (time.perf_counter(), step)
            elif time.perf_counter() - self.start[0] >= seconds:
                elapsed = time.perf_counter() - self.start[0]
                raise Done((step - self.start[1]) / elapsed)

    try:
        agent.learn(10**9, Clock(None, 10**9))
    except Done as done:
        sps = done.args[0]
    return {"sps": sps, "threads": torch.get_num_threads(), "busy_at_start": busy}


def run_one(name: str, seconds: float) -> dict:
    spec = ALTERNATIVES[name]
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    env.pop("OMP_WAIT_POLICY", None)
    if spec["passive"]:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    threads = "none" if spec["threads"] is None else str(spec["threads"])
    cmd = [sys.executable, __file__, "--worker", threads, "--seconds", str(seconds)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=20.0, help="measured seconds per run")
    p.add_argument("--rounds", type=int, default=2, help="interleaved rounds (best kept)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.seconds)))
        return

    import torch

    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    print(
        f"# {time.strftime('%Y-%m-%d')}, {_cpu_model()}, {len(os.sched_getaffinity(0))} cores "
        f"usable, torch {torch.__version__}, load average before: {load}"
    )
    print(f"# {' '.join(sys.argv)}")
    best: dict[tuple[str, str], dict] = {}
    for r in range(args.rounds):
        for load in ("as is", "one busy core"):
            hog = None
            if load == "one busy core":
                hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
                time.sleep(1.0)
            try:
                names = list(ALTERNATIVES)
                for name in names if r % 2 == 0 else names[::-1]:
                    result = run_one(name, args.seconds)
                    key = (load, name)
                    if key not in best or result["sps"] > best[key]["sps"]:
                        best[key] = result
                    print(f"  round {r + 1} {load:>13} {name:<18} {result['sps']:7.0f} steps/s")
            finally:
                if hog is not None:
                    hog.kill()
                    hog.wait()

    print("\n| alternative | threads (as is / busy) | as is steps/s | one busy core steps/s |")
    print("|---|---|---|---|")
    base = {load: best[(load, "torch default")]["sps"] for load in ("as is", "one busy core")}
    for name in ALTERNATIVES:
        quiet, busy = best[("as is", name)], best[("one busy core", name)]
        print(
            f"| {name} | {quiet['threads']} / {busy['threads']} "
            f"| {quiet['sps']:,.0f} ({quiet['sps'] / base['as is']:.2f}×) "
            f"| {busy['sps']:,.0f} ({busy['sps'] / base['one busy core']:.2f}×; "
            f"{busy['sps'] / quiet['sps']:.2f}× of as is) |"
        )


if __name__ == "__main__":
    main()
