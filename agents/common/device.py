"""Device selection: the same agent code runs on CUDA when present and on the CPU otherwise;
and how many CPU threads are worth using on a machine other work shares.

Nothing here imports torch at module level, so ``pilot train`` can read the machine's load
before torch loads.
"""

from __future__ import annotations

import math
import os
import time
from typing import TYPE_CHECKING

from pilot.errors import UserError

if TYPE_CHECKING:
    import torch


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA when available; asking for CUDA without one is a user error."""
    import torch

    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError("--device cuda was asked for, but no CUDA device is available here")
        device = torch.device(name)
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise UserError(f"--device {name}: this machine has {count} CUDA device(s)")
        return device
    if name == "cpu":
        return torch.device("cpu")
    raise UserError(f"unknown device '{name}' (use auto, cpu or cuda)")


def cpu_load(sample_s: float = 0.25) -> tuple[int, float]:
    """``(cores this process may use, how many of them other work keeps busy)``.

    Busy is the larger of the 1-minute load average (the machine's, scaled to our share of
    its cores) and the busy share of our cores over ``sample_s`` seconds (/proc/stat): the
    sample sees a process that just started, the average one that pauses now and then.
    """
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    cpus = cpus or list(range(os.cpu_count() or 1))

    def sample() -> dict[int, tuple[int, int]]:
        out = {}
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith("cpu") and line[3].isdigit():
                    name, *fields = line.split()
                    ticks = [int(x) for x in fields[:8]]
                    out[int(name[3:])] = (sum(ticks), ticks[3] + ticks[4])  # total, idle+iowait
        return out

    try:
        with open("/proc/loadavg") as f:
            average = float(f.read().split()[0]) * len(cpus) / (os.cpu_count() or len(cpus))
        first = sample()
        time.sleep(sample_s)
        second = sample()
    except (OSError, ValueError, IndexError):
        return len(cpus), 0.0
    busy = 0.0
    for c in cpus:
        if c in first and c in second:
            total = second[c][0] - first[c][0]
            busy += 1.0 - (second[c][1] - first[c][1]) / total if total > 0 else 0.0
    return len(cpus), min(float(len(cpus)), max(busy, average))


def default_threads(image_net: bool, cores: int, busy: float) -> int:
    """One thread for vector-observation nets; for image nets, the cores left free."""
    if not image_net:
        return 1
    return max(1, cores - math.ceil(busy - 0.25))
