"""Leaderboard records → report model: the statistics every renderer shows the same way.

One record is one (entry, track, seed) with its episodes (schema in
:mod:`pilot.eval.leaderboards`). :func:`aggregate` groups them by kind of world and builds::

    model = {"title": str, "created": ISO time, "meta": dict, "sections": [Section, ...]}
    Section = {"id": "atari" | "driving" | "navigation" | "control", "title": str,
               "notes": [str], "tables": [Table, ...], "plots": [Plot, ...]}
    Table = {"id": str, "title": str,
             "columns": [{"key", "label", "kind": "text" | "int" | "number" | "ci"}],
             "rows": [{key: cell, ..., "_provenance": dict}]}   # ci cell: {value, low, high}
    Plot = {"id": str, "title": str, "kind": "bars_ci" | "profile" | "grouped_bars" | "curves",
            "x_label": str, "y_label": str, "categories": [str],
            "series": [{"name", "x": [float], "y": [float], "low": [..] | None, "high": ..}]}

Sections appear only for kinds that have records, in the order atari, driving, navigation,
control; table ids are unique among tables and plot ids among plots (a table and its
plot may share one, e.g. ``atari-aggregate``). Numbers that are not finite are None,
so ``json.dumps(model, allow_nan=False)`` works. Statistics live in :mod:`.atari_stats`
(rliable) and :mod:`.task_stats`; learning curves in :mod:`.curves`.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from pilot.eval.stats import ATARI_RANDOM_HUMAN

from .atari_stats import atari_section
from .curves import curve_plots
from .model import jsonable
from .task_stats import control_section, driving_section, navigation_section

#: Section order, and the kinds that have a section of their own (anything else is control).
KINDS = ("atari", "driving", "navigation", "control")

Cells = dict[tuple[str, str], list[dict[str, Any]]]


def aggregate(
    records: list[dict[str, Any]],
    meta: dict[str, Any] | None = None,
    *,
    reps: int = 2000,
    seed: int = 0,
    hns_table: str = "mnih2015",
) -> dict[str, Any]:
    """The report model of ``records`` (see the module docstring).

    ``reps`` bootstrap resamples per interval; ``seed`` seeds every bootstrap, so the same
    records and seed give the same model (all but ``created``). ``hns_table`` is the human
    table of the Atari aggregate (a key of :data:`pilot.eval.stats.ATARI_HUMAN`). Records
    without episodes are left out with a note in their section. A repeated (entry, track,
    seed) is an error: it would count one run twice.
    """
    if hns_table not in ATARI_RANDOM_HUMAN:
        raise ValueError(
            f"unknown human table {hns_table!r}; known: {', '.join(ATARI_RANDOM_HUMAN)}"
        )
    meta = dict(meta or {})
    by_kind, empty = group_records(records)
    builders: dict[str, Callable[[Cells], dict[str, Any]]] = {
        "atari": lambda c: atari_section(c, reps, seed, hns_table),
        "driving": lambda c: driving_section(c, reps, seed),
        "navigation": lambda c: navigation_section(c, reps, seed),
        "control": lambda c: control_section(c, reps, seed),
    }
    curves = curve_plots([r for r in records if r.get("episodes")])
    sections = []
    for kind in KINDS:
        if kind not in by_kind and kind not in empty:
            continue
        cells = by_kind.get(kind, {})
        sec = builders[kind](cells) if cells else _empty_section(kind)
        sec["notes"] += [f"No episodes in {label}; left out." for label in empty.get(kind, [])]
        tracks = dict.fromkeys(t for _, t in cells)
        sec["plots"] += [curves[t] for t in tracks if t in curves]
        sections.append(sec)
    return jsonable(
        {
            "title": str(meta.get("title") or "Leaderboard"),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "meta": meta,
            "sections": sections,
        }
    )


def kind_of(record: dict[str, Any]) -> str:
    """The record's section: its kind when it has one of its own, else control."""
    kind = record.get("kind")
    return kind if kind in KINDS else "control"


def group_records(
    records: list[dict[str, Any]],
) -> tuple[dict[str, Cells], dict[str, list[str]]]:
    """Records by kind, then by (entry, track) in first-seen order, each list sorted by
    seed; and per kind the labels of records without episodes."""
    by_kind: dict[str, Cells] = {}
    empty: dict[str, list[str]] = {}
    seen: set[tuple[str, str, int]] = set()
    for r in records:
        key = (str(r["entry"]), str(r["track"]), int(r["seed"]))
        if key in seen:
            raise ValueError(f"two records for entry {key[0]}, track {key[1]}, seed {key[2]}")
        seen.add(key)
        kind = kind_of(r)
        if not r.get("episodes"):
            empty.setdefault(kind, []).append(f"{key[0]} / {key[1]} / seed {key[2]}")
            continue
        by_kind.setdefault(kind, {}).setdefault(key[:2], []).append(r)
    for cells in by_kind.values():
        for rs in cells.values():
            rs.sort(key=lambda r: int(r["seed"]))
    return by_kind, empty


def _empty_section(kind: str) -> dict[str, Any]:
    return {"id": kind, "title": kind.capitalize(), "notes": [], "tables": [], "plots": []}
