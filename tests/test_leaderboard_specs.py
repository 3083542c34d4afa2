"""The shipped leaderboard specs run end to end (small budgets) and their reports have the
rows and columns they must have, with the numbers in the order they must be."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pilot.cli import main


def _board(tmp_path: Path, name: str) -> dict:
    out = tmp_path / name
    assert main(["leaderboard", "run", name, "--out", str(out), "--no-progress"]) == 0
    report = out / "report"
    for file in ("report.md", "report.json", "report.html"):
        assert (report / file).is_file()
    html = (report / "report.html").read_text()
    assert "http://" not in html and "https://" not in html  # opens with no network
    model = json.loads((report / "report.json").read_text())
    return {t["id"]: t for s in model["sections"] for t in s["tables"]} | {
        "_plots": {p["id"]: p for s in model["sections"] for p in s["plots"]},
        "_csv": sorted(p.name for p in report.glob("*.csv")),
    }


def _rows(table: dict, **match) -> list[dict]:
    return [r for r in table["rows"] if all(r.get(k) == v for k, v in match.items())]


def _value(cell) -> float:
    return cell["value"] if isinstance(cell, dict) else cell


@pytest.mark.slow
def test_the_navigation_board(tmp_path):
    board = _board(tmp_path, "navigation")
    table = board["navigation-tracks"]
    assert {c["key"] for c in table["columns"]} >= {"entry", "track", "success", "spl"}
    assert len(table["rows"]) == 4 * 2  # four entries on two maps
    for track in ("procedural", "rooms32"):
        (astar,) = _rows(table, entry="astar", track=track)
        (rand,) = _rows(table, entry="random", track=track)
        # A* is optimal on the known map: every episode a success on the shortest path
        assert _value(astar["success"]) == 1.0 and _value(astar["spl"]) == pytest.approx(1.0)
        assert _value(astar["path_ratio"]) == pytest.approx(1.0)
        assert _value(rand["spl"]) < 0.2  # measured 0.000-0.032 over three board runs
        assert astar["episodes"] == 40
    assert "navigation-tracks.csv" in board["_csv"]
    assert "navigation-spl" in board["_plots"] and "curves-procedural" in board["_plots"]


@pytest.mark.slow
def test_the_driving_board(tmp_path):
    board = _board(tmp_path, "driving")
    tracks = board["driving-tracks"]
    keys = {c["key"] for c in tracks["columns"]}
    assert keys >= {"driving_score", "route_completion", "infraction_penalty", "km"}
    assert len(tracks["rows"]) == 2 * 5  # random and the stack on every scenario
    assert {r["entry"] for r in board["driving-overall"]["rows"]} == {"random", "modular"}
    per_km = board["driving-infractions"]
    assert {c["key"] for c in per_km["columns"]} >= {"collision_vehicle", "red_light"}
    for track in ("LaneKeep", "Highway", "Obstacles", "Intersection", "StopSign"):
        (stack,) = _rows(tracks, entry="modular", track=track)
        (rand,) = _rows(tracks, entry="random", track=track)
        assert stack["routes"] == 3
        # measured per scenario (3 routes, AMD EPYC, three board runs): stack 49.5-100
        # (lowest: Intersection, the one scenario below 90), random 3.2-10.4; the bar
        # is a margin of 20 under the lowest gap seen (42), not a tuned threshold.
        # StopSign (one run, after the stack learnt stop signs): stack 77.8, random 7.3
        assert _value(stack["driving_score"]) > _value(rand["driving_score"]) + 20
    assert "driving-score" in board["_plots"] and "driving-infractions" in board["_plots"]
    # the same 15 routes, paired route by route: the stack first, above random on most
    (pair,) = board["driving-paired"]["rows"]
    assert (pair["entry"], pair["versus"], pair["routes"]) == ("modular", "random", 15)
    assert pair["higher"] >= 12 and pair["higher"] + pair["lower"] + pair["equal"] == 15
    assert _value(pair["difference"]) > 20 and pair["difference"]["low"] > 0
    assert "driving-paired.csv" in board["_csv"]


@pytest.mark.slow
def test_the_atari_board(tmp_path):
    board = _board(tmp_path, "atari")
    agg = board["atari-aggregate"]
    assert {r["entry"] for r in agg["rows"]} == {"random", "ppo-4k"}
    for key in ("iqm", "median", "mean", "optimality_gap"):
        assert key in {c["key"] for c in agg["columns"]}
        for row in agg["rows"]:
            cell = row[key]
            assert cell["low"] <= cell["value"] <= cell["high"]
    games = board["atari-games"]
    assert len(games["rows"]) == 2 * 2
    assert {r["game"] for r in games["rows"]} == {"Pong", "Breakout"}
    assert len(board["atari-poi"]["rows"]) == 2  # both ordered pairs
    assert {"atari-aggregate", "atari-profile"} <= set(board["_plots"])
