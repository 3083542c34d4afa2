"""The Atari section: human-normalised scores and rliable's aggregate statistics.

Following Agarwal et al. (2021) and their ``rliable`` library: per entry a score matrix
(runs × games) of human-normalised scores gives IQM, median, mean and optimality gap with
stratified bootstrap 95% CIs, performance profiles, and the probability of improvement of
every entry over every other. rliable draws its bootstrap indices from numpy's global
generator, so each call runs inside :func:`seeded_global_rng`, which restores the global
state afterwards: the same records and seed give the same numbers, and nobody else's draws
change.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import numpy as np

from pilot.eval.stats import (
    ATARI_HUMAN_TABLE_NAMES,
    ATARI_RANDOM_HUMAN,
    bootstrap_ci,
    human_normalized,
)

from .model import ci_cell, column, merge_provenance, plot, section, series, table

#: Aggregate metrics in the order of :func:`aggregate_metrics`' output.
METRICS = ("IQM", "Median", "Mean", "Optimality gap")
_KEYS = ("iqm", "median", "mean", "optimality_gap")
#: Points on the performance profile's threshold grid.
TAU_POINTS = 41


@contextlib.contextmanager
def seeded_global_rng(seed: int) -> Iterator[None]:
    """Seed numpy's global generator (where rliable draws) and restore it on the way out."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def aggregate_metrics(scores: np.ndarray) -> np.ndarray:
    """[IQM, median, mean, optimality gap] of a runs × games matrix, by rliable's estimators."""
    from rliable import metrics

    return np.array(
        [
            metrics.aggregate_iqm(scores),
            metrics.aggregate_median(scores),
            metrics.aggregate_mean(scores),
            metrics.aggregate_optimality_gap(scores),
        ]
    )


def interval_estimates(scores: np.ndarray, reps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(point estimates, 2 × 4 CIs) of :func:`aggregate_metrics` by rliable's stratified
    bootstrap over runs. Each entry is bootstrapped on its own, so adding an entry to a
    leaderboard leaves the others' intervals as they were."""
    from rliable import library

    with seeded_global_rng(seed):
        points, cis = library.get_interval_estimates({"x": scores}, aggregate_metrics, reps=reps)
    return np.asarray(points["x"]), np.asarray(cis["x"])


def score_distribution(scores: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """Share of all runs × games scoring above each τ: rliable's default profile
    (``library.score_distributions``, a test pins it) for all thresholds in one comparison
    instead of one Python call per threshold."""
    return (np.asarray(scores).reshape(-1, 1) > np.asarray(taus).reshape(1, -1)).mean(axis=0)


def performance_profile(
    scores: np.ndarray, taus: np.ndarray, reps: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(profile, 2 × len(taus) CIs): the share of runs × games scoring above each τ."""
    from rliable import library

    with seeded_global_rng(seed):
        profiles, cis = library.create_performance_profile(
            {"x": scores}, taus, reps=reps, custom_profile_func=score_distribution
        )
    return np.asarray(profiles["x"]), np.asarray(cis["x"])


def probability_of_improvement(scores_x: np.ndarray, scores_y: np.ndarray) -> float:
    """P(X > Y) averaged over games: per game the Mann-Whitney U of X's runs over Y's
    (ties count half) divided by the number of pairs. Equal to
    ``rliable.metrics.probability_of_improvement`` (a test pins it), but computed for all
    games at once: rliable's calls scipy once per game, and in a bootstrap of thousands of
    resamples per pair of entries that call overhead is nearly the whole cost."""
    x = np.asarray(scores_x, dtype=np.float64)[:, None, :]
    y = np.asarray(scores_y, dtype=np.float64)[None, :, :]
    per_game = (x > y).mean(axis=(0, 1)) + 0.5 * (x == y).mean(axis=(0, 1))
    return float(per_game.mean())


def improvement_probability(
    scores_x: np.ndarray, scores_y: np.ndarray, reps: int, seed: int
) -> tuple[float, float, float]:
    """(P(X > Y), low, high) with rliable's independent stratified bootstrap of the two
    matrices (their run counts may differ)."""
    from rliable import library

    with seeded_global_rng(seed):
        points, cis = library.get_interval_estimates(
            {"x,y": [scores_x, scores_y]}, probability_of_improvement, reps=reps
        )
    ci = np.asarray(cis["x,y"]).ravel()
    return float(points["x,y"]), float(ci[0]), float(ci[1])


def game_of(record: dict[str, Any]) -> str:
    """The record's game: its ``game`` field, else read from an Atari env id."""
    if record.get("game"):
        return str(record["game"])
    m = re.search(r"(?:Atari-|ALE/)([A-Za-z]+)", str(record.get("env_id", "")))
    return m.group(1) if m else str(record.get("track"))


def run_score(record: dict[str, Any]) -> float:
    """A run's score on a game: the mean return of its evaluation episodes."""
    return float(np.mean([float(e["ret"]) for e in record["episodes"]]))


def _hns(score: float, game: str, table_key: str) -> float | None:
    return (
        human_normalized(score, game, table_key) if game in ATARI_RANDOM_HUMAN[table_key] else None
    )


def score_matrices(
    cells: dict[tuple[str, str], list[dict]], table_key: str
) -> tuple[dict[str, np.ndarray], list[str], list[str]]:
    """Per entry a runs × tracks HNS matrix over every normalisable track any entry played,
    the tracks (columns) and notes on what was left out and why."""
    notes: list[str] = []
    entries = list(dict.fromkeys(e for e, _ in cells))
    tracks = list(dict.fromkeys(t for _, t in cells))
    games = {t: game_of(cells[e, t][0]) for e, t in cells}
    unknown = [t for t in tracks if games[t] not in ATARI_RANDOM_HUMAN[table_key]]
    if unknown:
        notes.append(
            f"Left out of the aggregate (no human score in the "
            f"{ATARI_HUMAN_TABLE_NAMES[table_key]} table): {', '.join(unknown)}."
        )
    tracks = [t for t in tracks if t not in unknown]
    matrices: dict[str, np.ndarray] = {}
    for entry in entries if tracks else []:
        missing = [t for t in tracks if (entry, t) not in cells]
        if missing:
            notes.append(
                f"{entry} is left out of the aggregate: it has no runs on {', '.join(missing)} "
                "(rliable compares entries on the same games)."
            )
            continue
        by_track = {t: {int(r["seed"]): r for r in cells[entry, t]} for t in tracks}
        seeds = sorted(set.intersection(*(set(s) for s in by_track.values())))
        extra = sorted({s for runs in by_track.values() for s in runs} - set(seeds))
        if not seeds:
            notes.append(f"{entry} is left out of the aggregate: no seed played every game.")
            continue
        if extra:
            notes.append(
                f"{entry}: seeds {', '.join(map(str, extra))} did not play every game and "
                "are left out of the aggregate (kept in the per-game table)."
            )
        matrices[entry] = np.array(
            [[_hns(run_score(by_track[t][s]), games[t], table_key) for t in tracks] for s in seeds],
            dtype=np.float64,
        )
    return matrices, tracks, notes


def atari_section(
    cells: dict[tuple[str, str], list[dict]], reps: int, seed: int, table_key: str = "mnih2015"
) -> dict[str, Any]:
    """The Atari section from records grouped by (entry, track), each list sorted by seed."""
    sec = section("atari", "Atari")
    name = ATARI_HUMAN_TABLE_NAMES[table_key]
    matrices, tracks, notes = score_matrices(cells, table_key)
    sec["notes"] += [
        "Human-normalised score HNS = (score − random) / (human − random); a run's score on a "
        "game is the mean return of its evaluation episodes.",
        f"Aggregate, performance profile and probability of improvement use the human scores "
        f"of {name}; the per-game table shows HNS with both {ATARI_HUMAN_TABLE_NAMES['mnih2015']}"
        f" and the {ATARI_HUMAN_TABLE_NAMES['deepmind57']}.",
        f"Aggregate intervals: 95% stratified bootstrap over runs (rliable, {reps} resamples); "
        "per-game intervals: 95% percentile bootstrap over seeds.",
    ]
    protocols = sorted({str(r.get("protocol")) for rs in cells.values() for r in rs})
    if len(protocols) > 1:
        sec["notes"].append(f"Tracks mix evaluation protocols ({', '.join(protocols)}).")
    sec["notes"] += notes
    estimates = {e: interval_estimates(m, reps, seed) for e, m in matrices.items()}
    sec["tables"].append(_aggregate_table(cells, matrices, estimates, name))
    sec["tables"].append(_games_table(cells, reps, seed))
    sec["tables"].append(_poi_table(matrices, reps, seed))
    sec["plots"] += _aggregate_plots(matrices, estimates, reps, seed, name)
    return sec


def _aggregate_table(cells, matrices, estimates, name) -> dict[str, Any]:
    rows = []
    for entry, scores in matrices.items():
        points, cis = estimates[entry]
        row: dict[str, Any] = {"entry": entry, "runs": scores.shape[0], "games": scores.shape[1]}
        for i, key in enumerate(_KEYS):
            row[key] = ci_cell(points[i], cis[0, i], cis[1, i])
        row["_provenance"] = merge_provenance(
            [r for (e, _), rs in cells.items() if e == entry for r in rs]
        )
        rows.append(row)
    cols = [
        column("entry", "Entry", "text"),
        column("runs", "Runs", "int"),
        column("games", "Games", "int"),
    ]
    cols += [column(k, m, "ci") for k, m in zip(_KEYS, METRICS, strict=True)]
    return table("atari-aggregate", f"Aggregate human-normalised score ({name})", cols, rows)


def _games_table(cells, reps, seed) -> dict[str, Any]:
    rows = []
    for (entry, track), records in cells.items():
        game = game_of(records[0])
        scores = np.array([run_score(r) for r in records])
        lo, hi = bootstrap_ci(scores, n_resamples=reps, rng=np.random.default_rng(seed))
        mean = float(scores.mean())
        rows.append(
            {
                "entry": entry,
                "track": track,
                "game": game,
                "score": ci_cell(mean, lo, hi),
                "hns_mnih2015": _hns(mean, game, "mnih2015"),
                "hns_deepmind57": _hns(mean, game, "deepmind57"),
                "seeds": len(records),
                "_provenance": merge_provenance(records),
            }
        )
    cols = [
        column("entry", "Entry", "text"),
        column("track", "Track", "text"),
        column("game", "Game", "text"),
        column("score", "Score", "ci"),
        column("hns_mnih2015", f"HNS ({ATARI_HUMAN_TABLE_NAMES['mnih2015']})"),
        column("hns_deepmind57", f"HNS ({ATARI_HUMAN_TABLE_NAMES['deepmind57']})"),
        column("seeds", "Seeds", "int"),
    ]
    return table("atari-games", "Score per game (mean over seeds)", cols, rows)


def _poi_table(matrices, reps, seed) -> dict[str, Any]:
    rows = []
    for x, mx in matrices.items():
        for y, my in matrices.items():
            if x != y:
                p, lo, hi = improvement_probability(mx, my, reps, seed)
                rows.append({"x": x, "y": y, "poi": ci_cell(p, lo, hi)})
    cols = [column("x", "X", "text"), column("y", "Y", "text"), column("poi", "P(X > Y)", "ci")]
    return table("atari-poi", "Probability of improvement", cols, rows)


def tau_grid(matrices: dict[str, np.ndarray]) -> np.ndarray:
    """Thresholds from 0 to the best score seen (at least human level)."""
    top = max((float(np.max(m)) for m in matrices.values()), default=1.0)
    return np.linspace(0.0, max(1.0, top), TAU_POINTS)


def _aggregate_plots(matrices, estimates, reps, seed, name) -> list[dict[str, Any]]:
    bars, profiles = [], []
    taus = tau_grid(matrices)
    for entry, scores in matrices.items():
        points, cis = estimates[entry]
        bars.append(series(entry, points, low=cis[0], high=cis[1]))
        profile, pcis = performance_profile(scores, taus, reps, seed)
        profiles.append(series(entry, profile, x=taus, low=pcis[0], high=pcis[1]))
    return [
        plot(
            "atari-aggregate",
            f"Aggregate metrics ({name}), 95% CIs",
            "bars_ci",
            "",
            "Human-normalised score",
            bars,
            categories=METRICS,
        ),
        plot(
            "atari-profile",
            "Performance profile",
            "profile",
            f"Human-normalised score τ ({name})",
            "Fraction of runs with score > τ",
            profiles,
        ),
    ]
