"""Torch's CPU threads in one place: OpenMP's wait policy for every command (the CLI sets
it before dispatch), and the thread count for the commands that run a network beside other
work (`train`, `sweep`, `perception train` and `leaderboard run`), picked the same way."""

from __future__ import annotations

import os
import sys


def quiet_openmp() -> None:
    """Let idle OpenMP threads sleep instead of spinning (see README, Benchmarks).

    OpenMP reads ``OMP_WAIT_POLICY`` once, when torch loads, so this must run first: the
    CLI calls it before any command, and sweep trials in their Ray workers. A value the
    user set is kept.
    """
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def set_torch_threads(requested: int | None, image_net: bool = True) -> tuple[int, str]:
    """Set torch's CPU threads: ``requested`` (a ``--threads``), else one for a small vector
    net, else the cores other work leaves idle. Returns the count and why, for a header
    line."""
    import torch

    from pilot.agents.common.device import cpu_load, default_threads

    if requested is not None:
        threads, why = requested, "--threads"
    elif not image_net:
        threads, why = 1, "vector observations"
    else:
        cores, busy = cpu_load()
        threads, why = default_threads(True, cores, busy), f"{cores} cores, {busy:.1f} busy"
    torch.set_num_threads(threads)
    return threads, why
