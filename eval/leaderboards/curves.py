"""Learning curves for the report: training returns read back from run directories.

A record whose provenance names a ``run_dir`` holding the training recorder's
``episodes.csv`` (columns ``step, time, return, length, success``) contributes one series:
return against env step, smoothed so trends show through episode noise and thinned so a
page with many runs stays small.
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from .model import plot, series

#: Episodes in the rolling mean.
WINDOW = 20
#: Most points kept per series.
MAX_POINTS = 200


def read_curve(run_dir: str | Path) -> tuple[np.ndarray, np.ndarray] | None:
    """(steps, returns) from ``run_dir/episodes.csv``; None when there is none, or it is an
    evaluation file without a ``step`` column."""
    path = Path(run_dir) / "episodes.csv"
    if not path.is_file():
        return None
    steps, rets = [], []
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            try:
                step, ret = float(row["step"]), float(row["return"])
            except (KeyError, TypeError, ValueError):
                continue
            if math.isfinite(step) and math.isfinite(ret):
                steps.append(step)
                rets.append(ret)
    return (np.array(steps), np.array(rets)) if steps else None


def smooth(
    steps: np.ndarray, rets: np.ndarray, window: int = WINDOW, max_points: int = MAX_POINTS
) -> tuple[np.ndarray, np.ndarray]:
    """Rolling mean over the last ``window`` episodes (fewer at the start), then at most
    ``max_points`` evenly spaced points, the last episode always among them."""
    c = np.concatenate([[0.0], np.cumsum(rets)])
    i = np.arange(1, len(rets) + 1)
    start = np.maximum(i - window, 0)
    means = (c[i] - c[start]) / (i - start)
    keep = np.unique(np.linspace(0, len(rets) - 1, min(max_points, len(rets))).round().astype(int))
    return steps[keep], means[keep]


def curve_plots(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per track a "curves" plot with one series per (entry, run directory); a run
    directory shared by several seeds' records (one checkpoint evaluated on several seeds)
    is drawn once. Keyed by track; tracks without curves are absent."""
    runs: dict[str, dict[tuple[str, str], list[int]]] = {}
    for r in records:
        run_dir = (r.get("provenance") or {}).get("run_dir")
        if run_dir:
            by_run = runs.setdefault(r["track"], {})
            by_run.setdefault((r["entry"], str(run_dir)), []).append(int(r["seed"]))
    plots: dict[str, dict[str, Any]] = {}
    used: set[str] = set()
    for track, by_run in runs.items():
        out = []
        for (entry, run_dir), seeds in by_run.items():
            curve = read_curve(run_dir)
            if curve is None:
                continue
            x, y = smooth(*curve)
            name = (
                f"{entry} seed {seeds[0]}" if len(seeds) == 1 else f"{entry} ({Path(run_dir).name})"
            )
            out.append(series(name, y, x=x))
        if out:
            plot_id = _unique(f"curves-{_slug(track)}", used)
            plots[track] = plot(
                plot_id,
                f"Learning curves: {track}",
                "curves",
                "Env step",
                f"Return (rolling mean of {WINDOW} episodes)",
                out,
            )
    return plots


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "track"


def _unique(name: str, used: set[str]) -> str:
    out, n = name, 2
    while out in used:
        out, n = f"{name}-{n}", n + 1
    used.add(out)
    return out
