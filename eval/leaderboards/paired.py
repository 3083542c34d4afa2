"""Paired comparisons of driving entries, route by route.

Every entry on a driving board meets the same routes (a route is one (track, seed,
episode): each episode starts from its own seed, the same for every entry), so the
sharper comparison of two entries is the difference of their Driving Scores on each
route, not two intervals side by side: route-to-route variety, which dominates each
entry's own interval, cancels. For each pair of entries the table gives the mean
difference over the routes both played with a 95% percentile bootstrap interval that
resamples routes within each track (:func:`.model.stratified_ci`), and how many routes
each side scored higher on. Entries are ordered by their mean Driving Score over all of
their routes, so each difference reads "the higher entry minus the lower one".
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from .model import ci_cell, column, stratified_ci, table

Cells = dict[tuple[str, str], list[dict[str, Any]]]
Route = tuple[str, int, int]  # (track, seed, episode)


def route_scores(cells: Cells) -> dict[str, dict[Route, float]]:
    """Per entry, the Driving Score of each route it played, keyed by (track, seed,
    episode); episodes without a Driving Score are left out."""
    out: dict[str, dict[Route, float]] = {}
    for (entry, track), records in cells.items():
        got = out.setdefault(entry, {})
        for r in records:
            for e in r["episodes"]:
                d = e.get("driving")
                if d and d.get("driving_score") is not None:
                    got[(track, int(r["seed"]), int(e["episode"]))] = float(d["driving_score"])
    return out


def paired_rows(cells: Cells, reps: int, seed: int) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per pair of entries that share a route, the higher-scoring entry first,
    and notes for the pairs that share none."""
    scores = {e: s for e, s in route_scores(cells).items() if s}
    order = sorted(scores, key=lambda e: (-float(np.mean(list(scores[e].values()))), e))
    rows, notes = [], []
    for a, b in itertools.combinations(order, 2):
        shared = [k for k in scores[a] if k in scores[b]]
        if not shared:
            notes.append(f"{a} and {b} share no route; not compared.")
            continue
        diff = np.array([scores[a][k] - scores[b][k] for k in shared])
        strata = [k[0] for k in shared]
        mean, lo, hi = stratified_ci(diff, strata, reps, np.random.default_rng(seed))
        rows.append(
            {
                "entry": a,
                "versus": b,
                "tracks": len(set(strata)),
                "routes": len(shared),
                "difference": ci_cell(mean, lo, hi),
                "higher": int((diff > 0).sum()),
                "lower": int((diff < 0).sum()),
                "equal": int((diff == 0).sum()),
            }
        )
    return rows, notes


def paired_table(cells: Cells, reps: int, seed: int) -> tuple[dict[str, Any], list[str]]:
    """The ``driving-paired`` table of the report model and its notes."""
    rows, notes = paired_rows(cells, reps, seed)
    cols = [
        column("entry", "Entry", "text"),
        column("versus", "Versus", "text"),
        column("tracks", "Tracks", "int"),
        column("routes", "Shared routes", "int"),
        column("difference", "Driving Score difference", "ci"),
        column("higher", "Routes higher", "int"),
        column("lower", "Routes lower", "int"),
        column("equal", "Routes equal", "int"),
    ]
    notes = [
        "Paired by route: Entry − Versus in Driving Score over the routes both played (same "
        "track, seed and episode), mean with a 95% bootstrap interval resampling routes "
        f"within each track ({reps} resamples); an interval clear of 0 separates the two.",
        *notes,
    ]
    title = "Driving, paired by route"
    return table("driving-paired", title, cols, rows), notes
