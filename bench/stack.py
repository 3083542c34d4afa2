"""Milliseconds per control step of the modular driving stack at batch 1 on the CPU, per
stage (perception, prediction, behaviour, planning, control, from ``plan.timings_ms``),
beside the env step's own milliseconds, per Box(2) driving scenario.

    python bench/stack.py [--steps 300] [--seed 0] [--perception RUN_DIR] [--scenarios A,B]
                          [--set KEY=VALUE ...]

``--perception`` runs the stack on a trained perception run (camera, lidar or fusion)
instead of privileged perception, its network at batch 1 on one torch thread; ``--set``
overrides the stack's config as ``pilot eval modular --set`` does (e.g.
``perception_rear=0``).

Medians over the steps of one episode per scenario (the stack's work varies with what is
around the car, the median is the typical step); the stack must fit the env's control
period (0.1 s) with room to spare."""

from __future__ import annotations

import argparse
import time

import numpy as np

from pilot.config import parse_overrides
from pilot.envs import make_env
from pilot.errors import UserError
from pilot.planning.stack.agent import ModularAgent
from pilot.planning.stack.config import build_config

SCENARIOS = ("LaneKeep", "Highway", "Obstacles", "Intersection", "StopSign", "Town")
STAGES = ("perception", "prediction", "behaviour", "planning", "control")


def measure(agent: ModularAgent, steps: int, seed: int) -> dict[str, float]:
    """Median ms per step of each stage, of the whole stack and of ``env.step``, in the
    agent's own env."""
    env = make_env(agent.env_id)
    env.reset(seed=seed)
    rows, env_ms = [], []
    try:
        for _ in range(steps):
            action = agent.act(None, envs=[env])[0]
            rows.append(agent.last_plans[0].timings_ms)
            t0 = time.perf_counter()
            _, _, term, trunc, _ = env.step(action)
            env_ms.append(1e3 * (time.perf_counter() - t0))
            if term or trunc:
                env.reset()
    finally:
        env.close()
    out = {k: float(np.median([r[k] for r in rows])) for k in STAGES}
    out["stack"] = float(np.median([sum(r.values()) for r in rows]))
    out["env step"] = float(np.median(env_ms))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="control steps per scenario")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--perception", default="privileged", help="privileged or a RUN_DIR")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a stack config override (repeatable)")  # fmt: skip
    args = parser.parse_args()
    scenarios = args.scenarios.split(",")
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; choose from {', '.join(SCENARIOS)}")
    agents = {}
    try:  # every stack built before the table starts: a bad run or key is one line
        keys = {**parse_overrides(args.set), "perception": args.perception}
        for name in scenarios:
            env_id = f"pilot/Driving-{name}-v0"
            agents[name] = ModularAgent(env_id, build_config(env_id, keys))
    except UserError as exc:
        parser.error(str(exc))
    if args.perception != "privileged":
        import torch

        torch.set_num_threads(1)
    cols = (*STAGES, "stack", "env step")
    print(f"{'scenario':<14}" + "".join(f"{c:>12}" for c in cols) + "   (median ms per step)")
    for name in scenarios:
        ms = measure(agents[name], args.steps, args.seed)
        print(f"{name:<14}" + "".join(f"{ms[c]:>12.2f}" for c in cols), flush=True)


if __name__ == "__main__":
    main()
