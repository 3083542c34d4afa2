"""Driving, navigation and control sections of the report model.

Intervals are 95% percentile bootstraps over episodes (routes, maps): within one track
all of its episodes are resampled together, whatever seed drew them (every seed draws new
routes, so a seed is one more batch of routes, and a board with one route per seed still
gets an interval); over several tracks each track is a stratum that keeps its share of
routes in every resample (:func:`.model.stratified_ci`). Each interval draws from a generator seeded with the
caller's seed, so one row's interval does not depend on which other rows exist.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from pilot.eval.driving import COUNTED, DrivingScore, _per_km, mean_scores
from pilot.eval.stats import summarize

from .model import ci_cell, column, merge_provenance, plot, section, series, stratified_ci, table
from .paired import paired_table

Cells = dict[tuple[str, str], list[dict[str, Any]]]

_DRIVING_CI = (
    ("driving_score", "Driving Score"),
    ("driving_score_without_min_speed", "DS without min-speed"),
    ("route_completion", "Route Completion (%)"),
    ("infraction_penalty", "Infraction penalty"),
)


# ------------------------------------------------------------------------------ driving
def driving_scores(records: list[dict[str, Any]]) -> tuple[list[DrivingScore], list[Any]]:
    """The routes' scores of ``records`` and each route's stratum, its track."""
    fields = DrivingScore.__dataclass_fields__
    scores, strata = [], []
    for r in records:
        for e in r["episodes"]:
            d = e.get("driving")
            if d:
                scores.append(DrivingScore(**{k: d.get(k) for k in fields}))
                strata.append(r["track"])
    return scores, strata


def infractions_per_km(scores: list[DrivingScore]) -> dict[str, float]:
    """Each counted infraction's total over all routes per kilometre driven on them."""
    km = sum(s.km for s in scores)
    return {k: _per_km(sum(int((s.counts or {}).get(k, 0)) for s in scores), km) for k in COUNTED}


def driving_row(scores: list[DrivingScore], strata: list[Any], reps: int, seed: int) -> dict:
    """Mean Driving Score, Route Completion and Infraction Penalty with intervals, and the
    totals over kilometres: infractions per km and the share of routes driven off lanes."""
    means = mean_scores(scores)
    row: dict[str, Any] = {}
    for key, _ in _DRIVING_CI:
        values = [getattr(s, key) for s in scores]
        _, lo, hi = stratified_ci(values, strata, reps, np.random.default_rng(seed))
        row[key] = ci_cell(means[key], lo, hi)
    row["routes"] = len(scores)
    row["km"] = sum(s.km for s in scores)
    row["infractions_per_km"] = means["infractions_per_km"]
    row["outside_lane"] = 100.0 * float(np.mean([s.outside_lane_fraction for s in scores]))
    speeding = [s.speeding_fraction for s in scores if s.speeding_fraction is not None]
    row["speeding"] = 100.0 * float(np.mean(speeding)) if speeding else math.nan
    return row


def driving_section(cells: Cells, reps: int, seed: int) -> dict[str, Any]:
    sec = section("driving", "Driving")
    sec["notes"] += [
        "Driving Score = Route Completion × Infraction Penalty per route (CARLA Leaderboard "
        "2.0 coefficients); means over routes with 95% bootstrap intervals: a track's routes "
        f"resampled together, over all tracks within each track ({reps} resamples).",
        "DS without min-speed: the same routes' Driving Score with every coefficient but "
        "the minimum-speed test's (Bench2Drive's Driving Score since 2024-08).",
        "Infractions per km: each type's count over all routes divided by all kilometres "
        "driven; outside lane / speeding: mean share of the route driven outside lanes / "
        "above the speed limit (%).",
    ]
    entries = list(dict.fromkeys(e for e, _ in cells))
    tracks = list(dict.fromkeys(t for _, t in cells))
    overall, per_track, per_type = [], [], []
    for (entry, track), records in cells.items():
        scores, strata = driving_scores(records)
        if not scores:
            sec["notes"].append(f"{entry} on {track}: no route carries a Driving Score.")
            continue
        row = {"entry": entry, "track": track, **driving_row(scores, strata, reps, seed)}
        per_track.append({**row, "_provenance": merge_provenance(records)})
    for entry in entries:
        records = [r for (e, _), rs in cells.items() if e == entry for r in rs]
        scores, strata = driving_scores(records)
        if not scores:
            continue
        n_tracks = len({t for e, t in cells if e == entry})
        row = {"entry": entry, "tracks": n_tracks, **driving_row(scores, strata, reps, seed)}
        overall.append({**row, "_provenance": merge_provenance(records)})
        per_type.append({"entry": entry, **infractions_per_km(scores)})
    sec["tables"] += [
        table(
            "driving-overall",
            "Driving, per entry over all tracks",
            [_text("entry", "Entry"), column("tracks", "Tracks", "int"), *_driving_cols()],
            overall,
        ),
        table(
            "driving-tracks",
            "Driving, per entry and track",
            [_text("entry", "Entry"), _text("track", "Track"), *_driving_cols()],
            per_track,
        ),
        table(
            "driving-infractions",
            "Infractions per km, per entry",
            [_text("entry", "Entry")] + [column(k, _label(k) + " /km") for k in COUNTED],
            per_type,
        ),
    ]
    if len(overall) > 1:
        paired, notes = paired_table(cells, reps, seed)
        sec["tables"].append(paired)
        sec["notes"] += notes
    sec["plots"] += [
        _bars_by_track(
            "driving-score",
            "Driving Score per track, 95% CIs",
            "Driving Score",
            "driving_score",
            per_track,
            entries,
            tracks,
        ),
        plot(
            "driving-infractions",
            "Infractions per km",
            "grouped_bars",
            "Infraction",
            "Per km",
            [series(r["entry"], [r[k] for k in COUNTED]) for r in per_type],
            categories=[_label(k) for k in COUNTED],
        ),
    ]
    return sec


def _driving_cols() -> list[dict[str, str]]:
    return [
        *(column(k, label, "ci") for k, label in _DRIVING_CI),
        column("routes", "Routes", "int"),
        column("km", "km"),
        column("infractions_per_km", "Infractions /km"),
        column("outside_lane", "Outside lane (%)"),
        column("speeding", "Speeding (%)"),
    ]


# --------------------------------------------------------------------------- navigation
def spl_terms(episodes: list[dict[str, Any]]) -> list[float]:
    """Per episode S_i · l_i / max(p_i, l_i) (Anderson et al. 2018); SPL is their mean.
    Episodes without path lengths are left out; a success at zero length counts 1."""
    terms = []
    for e in episodes:
        nav = e.get("navigation")
        if not nav:
            continue
        p, l_opt = float(nav["path_length"]), float(nav["optimal_length"])
        s = bool(e.get("success"))
        terms.append(float(s) * (l_opt / max(p, l_opt) if max(p, l_opt) > 0 else 1.0))
    return terms


def spl(episodes: list[dict[str, Any]]) -> float:
    """Success weighted by (normalised inverse) Path Length over ``episodes``."""
    terms = spl_terms(episodes)
    return float(np.mean(terms)) if terms else math.nan


def _navigation_row(records: list[dict[str, Any]], reps: int, seed: int) -> dict[str, Any]:
    eps = [(r["track"], e) for r in records for e in r["episodes"]]
    with_nav = [(s, e) for s, e in eps if e.get("navigation")]
    ratio = [
        (s, float(e["navigation"]["path_length"]) / float(e["navigation"]["optimal_length"]))
        for s, e in with_nav
        if e.get("success") and float(e["navigation"]["optimal_length"]) > 0
    ]
    columns = {
        "success": [(s, float(bool(e.get("success")))) for s, e in eps],
        "spl": [(s, t) for (s, e) in with_nav for t in spl_terms([e])],
        "path_ratio": ratio,
    }
    row: dict[str, Any] = {}
    for key, pairs in columns.items():
        values, strata = [v for _, v in pairs], [s for s, _ in pairs]
        row[key] = ci_cell(*stratified_ci(values, strata, reps, np.random.default_rng(seed)))
    row["episodes"] = len(eps)
    return row


def navigation_section(cells: Cells, reps: int, seed: int) -> dict[str, Any]:
    sec = section("navigation", "Navigation")
    sec["notes"] += [
        "SPL (Anderson et al. 2018): mean over episodes of S_i · l_i / max(p_i, l_i); path / "
        "optimal over successful episodes only.",
        f"95% bootstrap intervals over the track's episodes ({reps} resamples).",
    ]
    rows = [
        {
            "entry": e,
            "track": t,
            **_navigation_row(rs, reps, seed),
            "_provenance": merge_provenance(rs),
        }
        for (e, t), rs in cells.items()
    ]
    cols = [
        _text("entry", "Entry"),
        _text("track", "Track"),
        column("success", "Success rate", "ci"),
        column("spl", "SPL", "ci"),
        column("path_ratio", "Path / optimal", "ci"),
        column("episodes", "Episodes", "int"),
    ]
    entries = list(dict.fromkeys(e for e, _ in cells))
    tracks = list(dict.fromkeys(t for _, t in cells))
    sec["tables"].append(table("navigation-tracks", "Navigation, per entry and track", cols, rows))
    sec["plots"].append(
        _bars_by_track(
            "navigation-spl", "SPL per track, 95% CIs", "SPL", "spl", rows, entries, tracks
        )
    )
    return sec


# ------------------------------------------------------------------------------ control
def control_section(cells: Cells, reps: int, seed: int) -> dict[str, Any]:
    """Mean return and IQM per (entry, track), as ``pilot eval`` summarises returns."""
    sec = section("control", "Control")
    sec["notes"].append(
        "Return over all episodes of all seeds: mean and IQM with 95% percentile bootstrap "
        "intervals (as `pilot eval` reports them)."
    )
    rows = []
    for (entry, track), records in cells.items():
        rets = [float(e["ret"]) for r in records for e in r["episodes"]]
        s = summarize(rets, rng=np.random.default_rng(seed))
        rows.append(
            {
                "entry": entry,
                "track": track,
                "mean": ci_cell(s.mean, s.ci_low, s.ci_high),
                "iqm": ci_cell(s.iqm, s.iqm_ci_low, s.iqm_ci_high),
                "std": s.std,
                "episodes": s.n,
                "seeds": len(records),
                "_provenance": merge_provenance(records),
            }
        )
    cols = [
        _text("entry", "Entry"),
        _text("track", "Track"),
        column("mean", "Mean return", "ci"),
        column("iqm", "IQM return", "ci"),
        column("std", "Std"),
        column("episodes", "Episodes", "int"),
        column("seeds", "Seeds", "int"),
    ]
    sec["tables"].append(table("control-tracks", "Return per entry and track", cols, rows))
    return sec


# ------------------------------------------------------------------------------ helpers
def _text(key: str, label: str) -> dict[str, str]:
    return column(key, label, "text")


def _label(key: str) -> str:
    return key.replace("_", " ").capitalize()


def _bars_by_track(plot_id, title, y_label, key, rows, entries, tracks) -> dict[str, Any]:
    """One series per entry over the tracks; None where an entry did not play a track."""
    cells = {(r["entry"], r["track"]): r[key] for r in rows}
    out = []
    for entry in entries:
        got = [cells.get((entry, t)) or {} for t in tracks]
        out.append(
            series(
                entry,
                [c.get("value") for c in got],
                low=[c.get("low") for c in got],
                high=[c.get("high") for c in got],
            )
        )
    return plot(plot_id, title, "bars_ci", "Track", y_label, out, categories=tracks)
