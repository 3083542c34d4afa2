"""Maps: Moving AI file round trips, strict parsing with line numbers, seeded generators."""

from __future__ import annotations

import numpy as np
import pytest

from pilot.envs.navigation import maps
from pilot.errors import UserError
from pilot.planning.grid import distance_field

GOOD_MAP = """type octile
height 3
width 4
map
.@..
..T.
G..S
"""


def test_parse_map_reads_terrain_and_coordinates():
    m = maps.parse_map(GOOD_MAP, "good.map")
    assert (m.height, m.width) == (3, 4)
    assert m.blocked.tolist() == [
        [False, True, False, False],
        [False, False, True, False],
        [False, False, False, False],
    ]
    # Moving AI x = column, y = row: the '@' is at x=1, y=0, i.e. (row 0, col 1)
    assert not m.is_free((0, 1)) and m.is_free((2, 3))
    assert not m.is_free((3, 0)) and not m.is_free((0, -1))
    assert m.name == "good.map"


def test_map_is_read_only_and_copied():
    arr = np.zeros((2, 2), dtype=bool)
    m = maps.GridMap(arr, "x")
    arr[0, 0] = True
    assert not m.blocked[0, 0]
    with pytest.raises(ValueError):
        m.blocked[0, 0] = True


def test_map_and_crlf_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    m = maps.random_obstacles(17, 23, 0.3, rng)
    path = maps.save_map(m, tmp_path / "r.map")
    back = maps.load_map(path)
    assert np.array_equal(back.blocked, m.blocked) and back.name == "r.map"
    crlf = maps.parse_map(maps.format_map(m).replace("\n", "\r\n"), "crlf.map")
    assert np.array_equal(crlf.blocked, m.blocked)


@pytest.mark.parametrize(
    "text, line, words",
    [
        ("type grid\nheight 1\nwidth 1\nmap\n.\n", 1, "unsupported map type"),
        ("octile\nheight 1\nwidth 1\nmap\n.\n", 1, "expected 'type octile'"),
        ("type octile\nheight x\nwidth 1\nmap\n.\n", 2, "whole number"),
        ("type octile\nheight 0\nwidth 1\nmap\n.\n", 2, "positive"),
        ("type octile\nheigth 2\nwidth 1\nmap\n.\n.\n", 2, "expected 'height N'"),
        ("type octile\nheight 2\nheight 1\nmap\n.\n.\n", 3, "expected 'width N'"),
        ("type octile\nheight 1\nwidth 1\nmaps\n.\n", 4, "expected 'map'"),
        ("type octile\nheight 3\nwidth 2\nmap\n..\n..\n", 7, "3 but the file has 2"),
        ("type octile\nheight 1\nwidth 2\nmap\n..\n..\n", 6, "1 but the file has 2"),
        ("type octile\nheight 2\nwidth 3\nmap\n...\n..\n", 6, "row 1 has 2 characters"),
        ("type octile\nheight 2\nwidth 3\nmap\n...\n.x.\n", 6, "'x' at column 1"),
        ("type octile\nheight 2\n", 3, "ends before the header"),
    ],
)
def test_malformed_map_names_file_and_line(text, line, words):
    with pytest.raises(UserError) as err:
        maps.parse_map(text, "bad.map")
    msg = str(err.value)
    assert f"bad.map, line {line}:" in msg and words in msg, msg
    assert "\n" not in msg


def test_missing_and_binary_files(tmp_path):
    with pytest.raises(UserError, match="map file not found"):
        maps.load_map(tmp_path / "nope.map")
    (tmp_path / "bin.map").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(UserError, match="not text"):
        maps.load_map(tmp_path / "bin.map")


def test_scen_round_trip_and_optimal_lengths(tmp_path):
    rng = np.random.default_rng(0)
    m = maps.random_obstacles(20, 30, 0.25, rng, name="r")
    scens = maps.generate_scenarios(m, 25, rng, distance_field, "r.map", goals_per_start=5)
    assert len(scens) == 25
    assert [s.bucket for s in scens] == sorted(s.bucket for s in scens)
    path = maps.save_scen(scens, tmp_path / "r.map.scen")
    back = maps.load_scen(path)
    assert len(back) == 25 and back[0].line == 2
    for a, b in zip(scens, back, strict=True):
        assert (a.start, a.goal, a.bucket, a.map_name) == (b.start, b.goal, b.bucket, b.map_name)
        assert b.optimal_length == pytest.approx(a.optimal_length, abs=1e-8)
        assert b.bucket == int(b.optimal_length // 4)
        assert m.is_free(b.start) and m.is_free(b.goal) and b.start != b.goal
    maps.check_scenarios(m, back, str(path))


def test_scenario_coordinates_are_x_column_y_row():
    text = "version 1\n0\tm.map\t5\t3\t4\t1\t0\t2\t4.5\n"
    (s,) = maps.parse_scen(text, "s.scen")
    assert s.start == (1, 4) and s.goal == (2, 0)  # (row, col) = (y, x)
    assert (s.width, s.height) == (5, 3) and s.optimal_length == 4.5


@pytest.mark.parametrize(
    "text, line, words",
    [
        ("version 2\n", 1, "expected 'version 1'"),
        ("", 1, "expected 'version 1'"),
        ("version 1\n0\tm.map\t5\t3\t4\t1\t0\t2\n", 2, "expected 9 fields"),
        ("version 1\n\n0\tm.map\t5\t3\t4\t1\t0\tx\t1.0\n", 3, "whole number, got 'x'"),
        ("version 1\n0\tm.map\t5\t3\t5\t1\t0\t2\t1.0\n", 2, "start x 5 is outside"),
        ("version 1\n0\tm.map\t5\t3\t4\t1\t0\t3\t1.0\n", 2, "goal y 3 is outside"),
        ("version 1\n0\tm.map\t5\t3\t4\t1\t0\t2\tfar\n", 2, "optimal length must be a number"),
        ("version 1\n0\tm.map\t5\t3\t4\t1\t0\t2\t-1\n", 2, "finite number"),
        ("version 1\n0\tm.map\t5\t3\t4\t1\t0\t2\tnan\n", 2, "finite number"),
        ("version 1\n-1\tm.map\t5\t3\t4\t1\t0\t2\t1\n", 2, "bucket must not be negative"),
        ("version 1\n0\tm.map\t0\t3\t0\t1\t0\t2\t1\n", 2, "map size must be positive"),
    ],
)
def test_malformed_scen_names_file_and_line(text, line, words):
    with pytest.raises(UserError) as err:
        maps.parse_scen(text, "bad.scen")
    msg = str(err.value)
    assert f"bad.scen, line {line}:" in msg and words in msg, msg


def test_check_scenarios_refuses_other_sizes_and_blocked_cells():
    m = maps.parse_map(GOOD_MAP, "good.map")
    other = maps.parse_scen("version 1\n0\tg.map\t5\t3\t0\t0\t2\t2\t3\n", "s.scen")
    with pytest.raises(UserError, match=r"s.scen, line 2: .*5×3 map but good.map is 4×3"):
        maps.check_scenarios(m, other, "s.scen")
    blocked_start = maps.parse_scen("version 1\n\n0\tg.map\t4\t3\t1\t0\t0\t2\t2\n", "s.scen")
    with pytest.raises(UserError, match=r"line 3: start \(x 1, y 0\) is on a blocked cell"):
        maps.check_scenarios(m, blocked_start, "s.scen")


def test_generators_are_seeded_and_shaped():
    for make in (
        lambda rng: maps.random_obstacles(40, 50, 0.3, rng),
        lambda rng: maps.rooms(40, 50, 8, rng),
        lambda rng: maps.maze(40, 50, 2, rng),
    ):
        a, b = make(np.random.default_rng(7)), make(np.random.default_rng(7))
        c = make(np.random.default_rng(8))
        assert a.blocked.shape == (40, 50)
        assert np.array_equal(a.blocked, b.blocked) and not np.array_equal(a.blocked, c.blocked)
    dense = maps.random_obstacles(200, 200, 0.3, np.random.default_rng(0))
    assert abs(dense.blocked.mean() - 0.3) < 0.01


@pytest.mark.parametrize(
    "make",
    [
        lambda rng: maps.rooms(60, 70, 8, rng, extra_doors=0.0),
        lambda rng: maps.rooms(64, 64, 15, rng, door_width=3),
        lambda rng: maps.maze(41, 61, 1, rng),
        lambda rng: maps.maze(50, 50, 3, rng, wall_width=2),
    ],
)
def test_rooms_and_mazes_are_connected(make):
    m = make(np.random.default_rng(1))
    free = m.free_cells()
    dist = distance_field(m.blocked, tuple(free[0]))
    assert np.isfinite(dist[~m.blocked]).all()  # every free cell reachable from any other


def test_maze_is_perfect():
    # A perfect maze of 1-wide corridors is a tree: free cells - 1 = 4-neighbour adjacencies
    m = maps.maze(31, 41, 1, np.random.default_rng(2))
    f = m.free
    edges = np.sum(f[1:, :] & f[:-1, :]) + np.sum(f[:, 1:] & f[:, :-1])
    assert edges == f.sum() - 1


def test_generator_argument_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(UserError, match="density"):
        maps.random_obstacles(5, 5, 1.5, rng)
    with pytest.raises(UserError, match="too small"):
        maps.maze(2, 2, 4, rng)
    with pytest.raises(UserError, match="door_width"):
        maps.rooms(20, 20, 4, rng, door_width=5)
    with pytest.raises(UserError, match="no two connected"):
        full = maps.GridMap(np.eye(4, dtype=bool) == 0)  # free only on the diagonal
        maps.generate_scenarios(full, 1, rng, distance_field)


def test_blocked_endpoints_lists_rows_and_still_refuses_other_sizes():
    m = maps.parse_map(GOOD_MAP, "good.map")
    text = (
        "version 1\n"
        "0\tg.map\t4\t3\t0\t0\t3\t2\t3.4\n"  # fine
        "0\tg.map\t4\t3\t1\t0\t0\t2\t2\n"  # start on '@'
        "0\tg.map\t4\t3\t0\t0\t2\t1\t2\n"  # goal on 'T'
    )
    bad = maps.blocked_endpoints(m, maps.parse_scen(text, "s.scen"), "s.scen")
    assert [(s.line, why) for s, why in bad] == [
        (3, "start (x 1, y 0) is on a blocked cell"),
        (4, "goal (x 2, y 1) is on a blocked cell"),
    ]
    other = maps.parse_scen("version 1\n0\tg.map\t5\t3\t0\t0\t2\t2\t3\n", "s.scen")
    with pytest.raises(UserError, match="line 2: the scenario is for a 5×3 map"):
        maps.blocked_endpoints(m, other, "s.scen")


def test_directory_nul_and_long_lines_are_one_short_line(tmp_path):
    with pytest.raises(UserError, match="is a directory"):
        maps.load_map(tmp_path)
    (tmp_path / "nul.scen").write_text("version 1\n\x00\n")
    with pytest.raises(UserError, match=r"not text \(byte 10 is NUL\)"):
        maps.load_scen(tmp_path / "nul.scen")
    with pytest.raises(UserError) as err:
        maps.parse_map("x" * 10_000 + "\n", "big.map")
    assert len(str(err.value)) < 200 and "…" in str(err.value)
