"""Building blocks of the report model (tables, plots, cells) and the shared bootstrap.

The report model is the contract between :mod:`.aggregate` (which fills it) and the
renderers (Markdown, CSV, JSON, HTML); see :func:`pilot.eval.leaderboards.aggregate.aggregate`.
Everything here returns plain dicts and lists so the model is JSON as it stands.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

Cell = dict[str, Any]


def column(key: str, label: str, kind: str = "number") -> dict[str, str]:
    """One table column; ``kind`` tells the renderer how to format its cells."""
    if kind not in ("text", "int", "number", "ci"):
        raise ValueError(f"unknown column kind {kind!r}")
    return {"key": key, "label": label, "kind": kind}


def ci_cell(value: float, low: float, high: float) -> Cell:
    """A point estimate with its 95% interval, as one cell."""
    return {"value": _num(value), "low": _num(low), "high": _num(high)}


def table(table_id: str, title: str, columns: list[dict], rows: list[dict]) -> dict[str, Any]:
    return {"id": table_id, "title": title, "columns": columns, "rows": rows}


def plot(
    plot_id: str,
    title: str,
    kind: str,
    x_label: str,
    y_label: str,
    series: list[dict],
    categories: Sequence[str] = (),
) -> dict[str, Any]:
    """A plot; ``categories`` only for bar kinds, whose series are aligned with them."""
    if kind not in ("bars_ci", "profile", "grouped_bars", "curves"):
        raise ValueError(f"unknown plot kind {kind!r}")
    return {
        "id": plot_id,
        "title": title,
        "kind": kind,
        "x_label": x_label,
        "y_label": y_label,
        "categories": list(categories),
        "series": series,
    }


def series(
    name: str,
    y: Iterable[float | None],
    x: Iterable[float] = (),
    low: Iterable[float | None] | None = None,
    high: Iterable[float | None] | None = None,
) -> dict[str, Any]:
    return {
        "name": name,
        "x": [_num(v) for v in x],
        "y": [_num(v) for v in y],
        "low": None if low is None else [_num(v) for v in low],
        "high": None if high is None else [_num(v) for v in high],
    }


def section(section_id: str, title: str) -> dict[str, Any]:
    return {"id": section_id, "title": title, "notes": [], "tables": [], "plots": []}


def _num(v: Any) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON: numpy scalars and arrays as Python numbers and lists, tuples
    as lists, NaN and ±inf as None (``json.dumps(..., allow_nan=False)`` must accept it)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def stratified_ci(
    values: Sequence[float] | np.ndarray,
    strata: Sequence[Any],
    reps: int,
    rng: np.random.Generator,
    statistic: Callable[[np.ndarray], np.ndarray] | None = None,
    confidence: float = 0.95,
) -> tuple[float, float, float]:
    """(mean, low, high): percentile-bootstrap interval of the mean of ``values`` where each
    resample draws values with replacement *within* each stratum (a seed, a record), so
    every seed keeps its share of routes and seed-to-seed spread stays in the interval.
    ``statistic`` maps a (reps, n) resample matrix to reps numbers (default: row means)."""
    x = np.asarray(values, dtype=np.float64).ravel()
    if len(x) == 0:
        return (math.nan, math.nan, math.nan)
    keys = list(strata)
    if len(keys) != len(x):
        raise ValueError("one stratum per value")
    stat = statistic if statistic is not None else (lambda m: m.mean(axis=1))
    columns = []
    for key in dict.fromkeys(keys):  # first-seen order keeps the draws reproducible
        idx = np.flatnonzero([k == key for k in keys])
        columns.append(idx[rng.integers(0, len(idx), size=(reps, len(idx)))])
    stats = stat(x[np.concatenate(columns, axis=1)])
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(stats, [alpha, 1 - alpha])
    return float(stat(x[None, :])[0]), float(lo), float(hi)


def merge_provenance(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One provenance for records of the same entry (and track): seeds as the sorted union,
    ``wall_s`` and ``episodes`` summed, checkpoints, their SHA-256 and run directories as
    sorted lists of the distinct values, anything else kept as is when all records agree
    and as the list of its distinct values when they do not."""
    provs = [r.get("provenance") or {} for r in records]
    merged: dict[str, Any] = {
        "env_id": _agreed([r.get("env_id") for r in records]),
        "seeds": sorted(
            {
                int(s)
                for p, r in zip(provs, records, strict=True)
                for s in (p.get("seeds") or [r.get("seed")])
                if s is not None
            }
        ),
    }
    for key in dict.fromkeys(k for p in provs for k in p):
        values = [p.get(key) for p in provs]
        if key == "seeds":
            continue
        if key in ("wall_s", "episodes"):
            merged[key] = sum(float(v) for v in values if v is not None)
            if key == "episodes":
                merged[key] = int(merged[key])
        elif key in ("checkpoint", "checkpoint_sha256", "run_dir"):
            merged[key] = sorted({str(v) for v in values if v is not None})
        elif key == "created":
            merged[key] = max((str(v) for v in values if v is not None), default=None)
        else:
            merged[key] = _agreed(values)
    return merged


def _agreed(values: list[Any]) -> Any:
    """The common value, or the list of distinct values (compared as JSON) if they differ."""
    distinct: dict[str, Any] = {}
    for v in values:
        distinct.setdefault(json.dumps(jsonable(v), sort_keys=True), v)
    return next(iter(distinct.values())) if len(distinct) == 1 else list(distinct.values())
