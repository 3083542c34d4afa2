"""Learning tests over many seeds: the outcome distribution each test's bar is set from.

Float results differ between CPUs, so a learning test's bar must sit below the outcome of
(nearly) every seed with a margin, and above what an agent that does not learn reaches.
This runs the tests' own outcome functions (``tests/learning_cases.py``) for a range of
agent seeds, in parallel processes, and prints per metric the minimum, 10th percentile,
median and maximum, and every value; ``--broken`` runs them with learning switched off
(learning rate 0), which a test must fail.

    python bench/learning_seeds.py nav-continuous-ppo --seeds 0-9 --workers 2
    python bench/learning_seeds.py 'pg-*' --seeds 0-11
    python bench/learning_seeds.py cartpole-a2c --broken --seeds 0-1
    python bench/learning_seeds.py --list
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path

import numpy as np

TESTS = Path(__file__).resolve().parent.parent / "tests"


def _cases():
    sys.path.insert(0, str(TESTS))
    import learning_cases

    return learning_cases.CASES


def _run(job: tuple[str, int, bool]) -> tuple[str, int, dict[str, float], float]:
    import torch

    torch.set_num_threads(1)
    name, seed, broken = job
    start = time.perf_counter()
    out = _cases()[name](seed, broken=broken)
    return name, seed, out, time.perf_counter() - start


def _seeds(text: str) -> list[int]:
    seeds: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        seeds += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
    return seeds


def main() -> int:
    p = argparse.ArgumentParser(
        prog="pilot bench learning_seeds", description=__doc__.split("\n")[0]
    )
    p.add_argument("cases", nargs="*", help="case names or glob patterns (see --list)")
    p.add_argument("--seeds", default="0-9", help="agent seeds, e.g. 0-9 or 0,3,5 (default 0-9)")
    p.add_argument("--workers", type=int, default=2, help="parallel processes (default 2)")
    p.add_argument(
        "--broken", action="store_true", help="learning rate 0: what the tests must fail"
    )
    p.add_argument("--json", help="also write every outcome to this JSON file")
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    args = p.parse_args()
    names = list(_cases())
    if args.list or not args.cases:
        print("\n".join(names))
        return 0
    chosen = [n for n in names if any(fnmatch.fnmatch(n, pat) for pat in args.cases)]
    if not chosen:
        p.error(f"no case matches {args.cases}; see --list")
    jobs = [(n, s, args.broken) for n in chosen for s in _seeds(args.seeds)]
    results: dict[str, dict[int, dict[str, float]]] = {n: {} for n in chosen}
    times: dict[str, list[float]] = {n: [] for n in chosen}
    with mp.get_context("spawn").Pool(args.workers) as pool:
        for name, seed, out, secs in pool.imap_unordered(_run, jobs):
            results[name][seed] = out
            times[name].append(secs)
            shown = ", ".join(f"{k} {v:.3f}" for k, v in out.items())
            print(f"{name} seed {seed}: {shown} ({secs:.0f} s)", flush=True)
    print(f"\n{'broken (lr 0)' if args.broken else 'trained'}; seeds {args.seeds}")
    for name in chosen:
        per_seed = results[name]
        print(f"{name}  ({np.mean(times[name]):.0f} s per seed)")
        for metric in next(iter(per_seed.values())):
            v = np.array([per_seed[s][metric] for s in sorted(per_seed)])
            print(
                f"  {metric:<14} min {v.min():.3f}  p10 {np.percentile(v, 10):.3f}  "
                f"median {np.median(v):.3f}  max {v.max():.3f}   "
                f"[{' '.join(f'{x:.3g}' for x in v)}]"
            )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"broken": args.broken, "results": results}, indent=1)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
