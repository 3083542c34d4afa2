"""`pilot plan`: generated maps, the warm-up kept out of the mean, skipped rows, and every
bad argument or file as one line with exit code 2."""

from __future__ import annotations

import dataclasses
import types

import numpy as np
import pytest

from pilot import cli, plan_cmd
from pilot.envs.navigation import maps
from pilot.planning.grid import GridGraph, distance_field


def plan(*argv: str) -> int:
    return cli.main(["plan", *map(str, argv)])


def one_line_error(capsys, *argv: str) -> str:
    assert plan(*argv) == 2
    captured = capsys.readouterr()
    err = captured.err
    assert err.startswith("pilot: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


# ------------------------------------------------------------------------- --generate
@pytest.mark.parametrize("kind", plan_cmd.KINDS)
def test_generate_writes_a_map_and_scen_with_optimal_lengths(tmp_path, capsys, kind):
    out = tmp_path / f"{kind}.map"
    assert plan("--generate", kind, "--size", 40, "--seed", 3, "--queries", 25, "--out", out) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and f"pilot plan --map {out} --scen {out}.scen" in printed
    grid_map = maps.load_map(out)
    scenarios = maps.load_scen(f"{out}.scen")
    assert (grid_map.height, grid_map.width) == (40, 40) and len(scenarios) == 25
    assert {s.map_name for s in scenarios} == {out.name}
    graph = GridGraph(grid_map.blocked)
    for s in scenarios:
        assert grid_map.is_free(s.start) and grid_map.is_free(s.goal)
        dist = distance_field(grid_map.blocked, s.start)
        assert s.optimal_length == pytest.approx(dist[s.goal], abs=1e-7)
        _, info = graph.astar(s.start, s.goal)
        assert info.success and info.cost == pytest.approx(s.optimal_length, abs=1e-7)


def test_generate_is_seeded(tmp_path, capsys):
    def make(name: str, seed: int) -> tuple[str, str]:
        out = tmp_path / name
        assert plan("--generate", "random", "--size", 32, "--seed", seed, "--out", out) == 0
        return out.read_text(), (tmp_path / f"{name}.scen").read_text()

    a, b, c = make("a.map", 5), make("b.map", 5), make("c.map", 6)
    assert a[0] == b[0] and a[0] != c[0]
    assert a[1].replace("a.map", "b.map") == b[1]


def test_generated_map_then_plan_on_it(tmp_path, capsys):
    out = tmp_path / "maze64.map"
    assert plan("--generate", "maze", "--size", 64, "--seed", 1, "--out", out) == 0
    capsys.readouterr()
    assert plan("--map", out, "--scen", f"{out}.scen", "--planner", "jps") == 0
    printed = capsys.readouterr().out
    assert "success rate      100.0% (100/100)" in printed
    assert "length / optimal  1.000000 mean, 1.000000 max" in printed


# ------------------------------------------------------------------------- warm-up
def test_warm_up_is_reported_apart_and_kept_out_of_the_mean(tmp_path, capsys, monkeypatch):
    """A fake clock: the first call takes 500 ms more, every query reports 1 ms."""
    out = tmp_path / "r.map"
    plan("--generate", "random", "--size", 24, "--queries", 10, "--out", out)
    capsys.readouterr()
    clock = {"now": 100.0, "calls": 0}
    real = GridGraph.astar

    def astar(self, start, goal):
        path, info = real(self, start, goal)
        clock["calls"] += 1
        clock["now"] += 0.001 + (0.5 if clock["calls"] == 1 else 0.0)
        return path, dataclasses.replace(info, time_s=0.001)

    monkeypatch.setattr(GridGraph, "astar", astar)
    monkeypatch.setattr(plan_cmd, "time", types.SimpleNamespace(perf_counter=lambda: clock["now"]))
    assert plan("--map", out, "--scen", f"{out}.scen") == 0
    printed = capsys.readouterr().out
    assert "time              1.000 ms per query (mean)" in printed
    assert "warm-up           500.0 ms once, not in the mean" in printed
    assert clock["calls"] == 11, "the warm-up call comes on top of the ten timed queries"


# ------------------------------------------------------------------------- skipped rows
def _map_with_scen(tmp_path, n_blocked: int, n_rows: int = 20):
    grid_map = maps.random_obstacles(30, 30, 0.25, np.random.default_rng(0), name="r")
    scenarios = maps.generate_scenarios(
        grid_map, n_rows, np.random.default_rng(1), distance_field, "r.map"
    )
    walls = np.argwhere(grid_map.blocked)
    for i in range(n_blocked):  # every second row gets a start on an obstacle
        r, c = (int(v) for v in walls[i])
        scenarios[2 * i] = dataclasses.replace(scenarios[2 * i], start_x=c, start_y=r)
    map_path = maps.save_map(grid_map, tmp_path / "r.map")
    return map_path, maps.save_scen(scenarios, tmp_path / "r.map.scen"), walls


def test_rows_with_a_blocked_endpoint_are_skipped_and_listed(tmp_path, capsys):
    map_path, scen_path, walls = _map_with_scen(tmp_path, n_blocked=7)
    assert plan("--map", map_path, "--scen", scen_path) == 0
    printed = capsys.readouterr().out
    assert "13 scenarios from" in printed
    assert "skipped           7 rows: start or goal on a blocked cell" in printed
    r, c = walls[0]
    assert f"    line 2: start (x {c}, y {r}) is on a blocked cell" in printed
    assert "    line 10: start" in printed and "    line 12: start" not in printed
    assert "    ... and 2 more" in printed
    assert "success rate      100.0% (13/13)" in printed


def test_one_skipped_row_reads_as_one_row(tmp_path, capsys):
    map_path, scen_path, _ = _map_with_scen(tmp_path, n_blocked=1, n_rows=3)
    assert plan("--map", map_path, "--scen", scen_path, "--limit", 1) == 0
    printed = capsys.readouterr().out
    assert "skipped           1 row: start" in printed and "1 of 2 scenarios" in printed
    assert "... and" not in printed


def test_a_file_where_every_row_is_blocked_is_an_error(tmp_path, capsys):
    map_path, scen_path, _ = _map_with_scen(tmp_path, n_blocked=2, n_rows=4)
    lines = scen_path.read_text().splitlines()
    scen_path.write_text("\n".join([lines[0], lines[1], lines[3]]) + "\n")
    err = one_line_error(capsys, "--map", map_path, "--scen", scen_path)
    assert "no usable query" in err and "line 2:" in err


# ------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "argv, words",
    [
        ([], "plan needs --map FILE.map and --scen FILE.scen"),
        (["--map", "x.map"], "plan needs --map"),
        (["--limit", "x"], "invalid int value: 'x'"),
        (["--planner", "bfs"], "invalid choice: 'bfs'"),
        (["--generate", "blob"], "invalid choice: 'blob'"),
        (["--generate", "maze"], "--generate needs --out"),
        (["--generate", "maze", "--size", "3", "--out", "a.map"], "--size must lie in 4..4096"),
        (["--generate", "maze", "--size", "10**9", "--out", "a.map"], "invalid int value"),
        (["--generate", "maze", "--size", "100000", "--out", "a.map"], "4..4096, got 100000"),
        (["--generate", "maze", "--seed", "-1", "--out", "a.map"], "--seed must be >= 0"),
        (["--generate", "maze", "--queries", "0", "--out", "a.map"], "--queries must lie"),
        (["--generate", "maze", "--density", "0.3", "--out", "a.map"], "applies to --generate"),
        (["--generate", "random", "--density", "nan", "--out", "a.map"], "got nan"),
        (["--generate", "random", "--density", "1.5", "--out", "a.map"], "[0, 1), got 1.5"),
        (["--generate", "maze", "--map", "m.map", "--out", "a.map"], "(drop --map)"),
        (["--size", "8"], "--size goes with --generate KIND"),
        (["--seed", "1", "--out", "a.map"], "--seed, --out go with --generate"),
    ],
)
def test_bad_arguments_are_one_line_exit_2(tmp_path, capsys, monkeypatch, argv, words):
    monkeypatch.chdir(tmp_path)
    err = one_line_error(capsys, *argv)
    assert words in err, err
    assert not (tmp_path / "a.map").exists()


def test_bad_limit_and_out_paths(tmp_path, capsys):
    map_path, scen_path, _ = _map_with_scen(tmp_path, n_blocked=0)
    assert "--limit must be at least 1, got 0" in one_line_error(
        capsys, "--map", map_path, "--scen", scen_path, "--limit", 0
    )
    assert "is a directory" in one_line_error(capsys, "--generate", "maze", "--out", tmp_path)
    missing = tmp_path / "no" / "a.map"
    assert "folder" in one_line_error(capsys, "--generate", "maze", "--out", missing)


def test_bad_map_files_are_one_line_exit_2(tmp_path, capsys):
    map_path, scen_path, _ = _map_with_scen(tmp_path, n_blocked=0)
    err = one_line_error(capsys, "--map", tmp_path, "--scen", scen_path)
    assert f"map file {tmp_path} is a directory" in err
    binary = tmp_path / "bin.map"
    binary.write_bytes(bytes(range(256)))
    assert "is not text" in one_line_error(capsys, "--map", binary, "--scen", scen_path)
    nul = tmp_path / "nul.map"
    nul.write_text("type octile\x00\n")  # valid UTF-8, still not a text file
    assert "is not text (byte 11 is NUL)" in one_line_error(
        capsys, "--map", nul, "--scen", scen_path
    )
    long_line = tmp_path / "json.map"
    long_line.write_text('{"a": "' + "x" * 5000 + '"}\n')
    err = one_line_error(capsys, "--map", long_line, "--scen", scen_path)
    assert "expected 'type octile'" in err and len(err) < 300
    err = one_line_error(capsys, "--map", map_path, "--scen", tmp_path)
    assert "scenario file" in err and "is a directory" in err


def test_note_when_the_scenarios_name_another_map(tmp_path, capsys):
    map_path, scen_path, _ = _map_with_scen(tmp_path, n_blocked=0)
    other = tmp_path / "other.map"
    other.write_text(map_path.read_text())
    assert plan("--map", other, "--scen", scen_path, "--limit", 2) == 0
    assert "note              the scenarios name r.map, not other.map" in capsys.readouterr().out
    assert plan("--map", map_path, "--scen", scen_path, "--limit", 2) == 0
    assert "  note  " not in capsys.readouterr().out


def test_stand_alone_entry_reports_argument_errors_in_one_line(capsys):
    assert plan_cmd.main(["--limit", "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pilot: error: argument --limit") and err.count("\n") == 1
