"""Occupancy-grid maps: Moving AI ``.map`` / ``.scen`` files and seeded generators.

Coordinates. A map is a boolean array ``blocked[row, col]`` (True = obstacle), row 0 at
the top as in the file. Moving AI files name a cell by ``x`` (the column) and ``y`` (the
row); :class:`Scenario` keeps the file's ``x, y`` fields and offers ``start`` / ``goal``
as ``(row, col)`` tuples, which is what the planners in ``pilot.planning`` take.

File formats (https://movingai.com/benchmarks/formats.html):

* ``.map``: ``type octile``, ``height H``, ``width W``, ``map``, then H rows of W
  characters. ``.``, ``G`` and ``S`` are passable; ``@``, ``O``, ``T`` and ``W`` are not.
* ``.scen``: ``version 1``, then one query a line, tab-separated: bucket, map file, map
  width, map height, start x, start y, goal x, goal y, optimal length (8-connected,
  diagonal √2, no corner cutting).

Parsing is strict: anything unexpected raises :class:`~pilot.errors.UserError` naming the
file and the line, because a silently misread benchmark is worse than none.

This module imports nothing from ``pilot.planning``: :func:`generate_scenarios` takes the
distance function it needs as an argument.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from pilot.errors import UserError

PASSABLE = frozenset(".GS")
BLOCKED = frozenset("@OTW")
Cell = tuple[int, int]


@dataclasses.dataclass(frozen=True, eq=False)
class GridMap:
    """A 2D occupancy grid: ``blocked[row, col]`` is True where the robot may not be.

    The array is copied and made read-only, so a map can be shared between planners,
    environments and tests without one of them changing it under the others.
    """

    blocked: np.ndarray
    name: str = ""

    def __post_init__(self) -> None:
        arr = np.array(self.blocked, dtype=bool, copy=True)
        if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
            raise UserError(f"a map must be a non-empty 2D array, got shape {arr.shape}")
        arr.setflags(write=False)
        object.__setattr__(self, "blocked", arr)

    @property
    def height(self) -> int:
        return int(self.blocked.shape[0])

    @property
    def width(self) -> int:
        return int(self.blocked.shape[1])

    @property
    def free(self) -> np.ndarray:
        """Boolean array of passable cells (a fresh, writable copy)."""
        return ~self.blocked

    def is_free(self, cell: Sequence[int]) -> bool:
        """Whether ``(row, col)`` lies on the map and is passable."""
        r, c = int(cell[0]), int(cell[1])
        return 0 <= r < self.height and 0 <= c < self.width and not self.blocked[r, c]

    def free_cells(self) -> np.ndarray:
        """(N, 2) array of the passable cells' ``(row, col)``, in row-major order."""
        return np.argwhere(~self.blocked)


@dataclasses.dataclass(frozen=True)
class Scenario:
    """One query of a ``.scen`` file, in the file's own terms (``x`` = column, ``y`` = row).

    ``line`` is the 1-based line it came from (0 when made in code), for error messages.
    """

    bucket: int
    map_name: str
    width: int
    height: int
    start_x: int
    start_y: int
    goal_x: int
    goal_y: int
    optimal_length: float
    line: int = 0

    @property
    def start(self) -> Cell:
        """Start cell as ``(row, col)``."""
        return (self.start_y, self.start_x)

    @property
    def goal(self) -> Cell:
        """Goal cell as ``(row, col)``."""
        return (self.goal_y, self.goal_x)


# ---------------------------------------------------------------------------- .map files
def parse_map(text: str, source: str = "<map>", name: str | None = None) -> GridMap:
    """Read the Moving AI ``.map`` format; ``source`` names the file in error messages."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in lines]

    def fail(lineno: int, what: str) -> UserError:
        return UserError(f"malformed map {source}, line {lineno}: {what}")

    def line(i: int) -> str:
        if i >= len(lines):
            raise fail(i + 1, "the file ends before the header is complete")
        return lines[i]

    words = line(0).split()
    if len(words) != 2 or words[0] != "type":
        raise fail(1, f"expected 'type octile', got {_shown(line(0))}")
    if words[1] != "octile":
        raise fail(
            1, f"unsupported map type {_shown(words[1])} (only 'octile' grids are supported)"
        )
    size: dict[str, int] = {}
    for i in (1, 2):
        words = line(i).split()
        if len(words) != 2 or words[0] not in ("height", "width") or words[0] in size:
            want = "'width N'" if "height" in size else "'height N'" if size else "'height N'"
            raise fail(i + 1, f"expected {want}, got {_shown(line(i))}")
        try:
            value = int(words[1])
        except ValueError:
            raise fail(
                i + 1, f"{words[0]} must be a whole number, got {_shown(words[1])}"
            ) from None
        if value < 1:
            raise fail(i + 1, f"{words[0]} must be positive, got {value}")
        size[words[0]] = value
    if line(3).strip() != "map":
        raise fail(4, f"expected 'map', got {_shown(line(3))}")
    h, w = size["height"], size["width"]
    rows = lines[4:]
    while rows and rows[-1].strip() == "":
        rows.pop()  # blank lines at the end carry nothing
    if len(rows) != h:
        where = 5 + min(len(rows), h)  # the first missing row, or the first extra one
        raise fail(where, f"height is {h} but the file has {len(rows)} map rows")
    blocked = np.zeros((h, w), dtype=bool)
    for r, row in enumerate(rows):
        lineno = 5 + r
        if len(row) != w:
            raise fail(lineno, f"row {r} has {len(row)} characters, width is {w}")
        bad = set(row) - PASSABLE - BLOCKED
        if bad:
            col = min(row.index(ch) for ch in bad)
            raise fail(
                lineno,
                f"unknown terrain character {row[col]!r} at column {col} "
                f"(passable: . G S; blocked: @ O T W)",
            )
        blocked[r] = [ch in BLOCKED for ch in row]
    return GridMap(blocked, name if name is not None else Path(source).name)


def load_map(path: str | Path) -> GridMap:
    """Read a ``.map`` file, with a :class:`UserError` for a missing or malformed one."""
    path = Path(path)
    return parse_map(_read_text(path, "map"), str(path), path.name)


def format_map(grid_map: GridMap) -> str:
    """The map in Moving AI ``.map`` format (``.`` free, ``@`` blocked)."""
    rows = ["".join("@" if b else "." for b in row) for row in grid_map.blocked.tolist()]
    header = f"type octile\nheight {grid_map.height}\nwidth {grid_map.width}\nmap\n"
    return header + "\n".join(rows) + "\n"


def save_map(grid_map: GridMap, path: str | Path) -> Path:
    """Write ``grid_map`` as a ``.map`` file and return its path."""
    path = Path(path)
    path.write_text(format_map(grid_map))
    return path


# --------------------------------------------------------------------------- .scen files
def parse_scen(text: str, source: str = "<scen>") -> list[Scenario]:
    """Read the Moving AI ``.scen`` format (version 1); blank lines are skipped."""
    lines = text.split("\n")
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in lines]

    def fail(lineno: int, what: str) -> UserError:
        return UserError(f"malformed scenario file {source}, line {lineno}: {what}")

    if not lines or lines[0].split() not in (["version", "1"], ["version", "1.0"]):
        first = lines[0] if lines else ""
        raise fail(1, f"expected 'version 1', got {_shown(first)}")
    out = []
    names = ("start x", "start y", "goal x", "goal y")
    for i, raw in enumerate(lines[1:], start=2):
        if not raw.strip():
            continue
        fields = raw.split("\t") if "\t" in raw else raw.split()
        fields = [f.strip() for f in fields]
        if len(fields) != 9:
            raise fail(
                i,
                f"expected 9 fields (bucket, map, width, height, start x, start y, "
                f"goal x, goal y, optimal length), got {len(fields)}",
            )
        try:
            ints = [int(f) for f in (fields[0], *fields[2:8])]
        except ValueError:
            bad = next(f for f in (fields[0], *fields[2:8]) if not _is_int(f))
            raise fail(i, f"expected a whole number, got {_shown(bad)}") from None
        try:
            length = float(fields[8])
        except ValueError:
            raise fail(i, f"optimal length must be a number, got {_shown(fields[8])}") from None
        bucket, width, height, sx, sy, gx, gy = ints
        if bucket < 0:
            raise fail(i, f"bucket must not be negative, got {bucket}")
        if width < 1 or height < 1:
            raise fail(i, f"map size must be positive, got {width}×{height}")
        for label, v, bound in zip(names, (sx, sy, gx, gy), (width, height) * 2, strict=True):
            if not 0 <= v < bound:
                raise fail(i, f"{label} {v} is outside the {width}×{height} map")
        if not math.isfinite(length) or length < 0:
            raise fail(i, f"optimal length must be a finite number ≥ 0, got {_shown(fields[8])}")
        out.append(Scenario(bucket, fields[1], width, height, sx, sy, gx, gy, length, i))
    return out


def load_scen(path: str | Path) -> list[Scenario]:
    """Read a ``.scen`` file, with a :class:`UserError` for a missing or malformed one."""
    path = Path(path)
    return parse_scen(_read_text(path, "scenario"), str(path))


def format_scen(scenarios: Sequence[Scenario]) -> str:
    """Scenarios in ``.scen`` format (tab-separated, optimal length to 8 decimals)."""
    rows = ["version 1"]
    for s in scenarios:
        rows.append(
            f"{s.bucket}\t{s.map_name}\t{s.width}\t{s.height}\t{s.start_x}\t{s.start_y}"
            f"\t{s.goal_x}\t{s.goal_y}\t{s.optimal_length:.8f}"
        )
    return "\n".join(rows) + "\n"


def save_scen(scenarios: Sequence[Scenario], path: str | Path) -> Path:
    """Write scenarios as a ``.scen`` file and return its path."""
    path = Path(path)
    path.write_text(format_scen(scenarios))
    return path


def check_scenarios(grid_map: GridMap, scenarios: Sequence[Scenario], source: str) -> None:
    """Refuse scenarios that do not fit ``grid_map``: another size, or a start or goal on
    a blocked cell. The error names the scenario's line in ``source``."""
    bad = blocked_endpoints(grid_map, scenarios, source)
    if bad:
        s, why = bad[0]
        raise UserError(f"scenario file {source}, line {s.line}: {why}")


def blocked_endpoints(
    grid_map: GridMap, scenarios: Sequence[Scenario], source: str
) -> list[tuple[Scenario, str]]:
    """The scenarios whose start or goal is on a blocked cell, each with the reason.

    A scenario for a map of another size is an error (:class:`UserError` naming its line in
    ``source``): the file belongs to another map. A blocked endpoint concerns one row only,
    so the caller decides whether to skip such rows or refuse the file.
    """
    out = []
    for s in scenarios:
        if (s.width, s.height) != (grid_map.width, grid_map.height):
            raise UserError(
                f"scenario file {source}, line {s.line}: the scenario is for a "
                f"{s.width}×{s.height} map but {grid_map.name or 'the map'} is "
                f"{grid_map.width}×{grid_map.height}"
            )
        for label, (x, y) in (("start", (s.start_x, s.start_y)), ("goal", (s.goal_x, s.goal_y))):
            if grid_map.blocked[y, x]:
                out.append((s, f"{label} (x {x}, y {y}) is on a blocked cell"))
                break
    return out


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def _read_text(path: Path, kind: str) -> str:
    if path.is_dir():
        raise UserError(f"{kind} file {path} is a directory, not a file")
    if not path.is_file():
        raise UserError(f"{kind} file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{kind} file {path} is not text (byte {exc.start})") from None
    except OSError as exc:
        raise UserError(f"cannot read {kind} file {path}: {exc.strerror or exc}") from None
    if "\x00" in text:
        raise UserError(f"{kind} file {path} is not text (byte {text.index(chr(0))} is NUL)")
    return text


def _shown(text: str, limit: int = 60) -> str:
    """``repr`` of a line for an error message, cut short: the message stays one line
    and readable when the file is something else entirely."""
    return repr(text if len(text) <= limit else text[:limit] + "…")


# ---------------------------------------------------------------------------- generators
def random_obstacles(
    height: int, width: int, density: float, rng: np.random.Generator, name: str = ""
) -> GridMap:
    """Each cell blocked independently with probability ``density`` (Moving AI's
    ``random512-D`` maps are this with D% obstacles)."""
    if not 0.0 <= density <= 1.0:
        raise UserError(f"density must lie in [0, 1], got {density}")
    _check_size(height, width)
    blocked = rng.random((height, width)) < density
    return GridMap(blocked, name or f"random{height}x{width}-{round(density * 100)}")


def rooms(
    height: int,
    width: int,
    room_size: int,
    rng: np.random.Generator,
    door_width: int | None = None,
    extra_doors: float = 0.5,
    name: str = "",
) -> GridMap:
    """Square rooms of ``room_size`` cells behind one-cell walls, like Moving AI's room maps.

    Doors (``door_width`` cells, default ``room_size // 8`` but at least 1) are cut along
    a random spanning tree of the rooms, so every room is reachable, and in each other
    shared wall with probability ``extra_doors``.
    """
    _check_size(height, width)
    if room_size < 1:
        raise UserError(f"room_size must be at least 1, got {room_size}")
    door = max(1, room_size // 8) if door_width is None else door_width
    if not 1 <= door <= room_size:
        raise UserError(f"door_width must lie in [1, room_size], got {door}")
    pitch = room_size + 1
    blocked = np.zeros((height, width), dtype=bool)
    blocked[room_size::pitch, :] = True
    blocked[:, room_size::pitch] = True
    nr, nc = -(-height // pitch), -(-width // pitch)

    def span(i: int, limit: int) -> tuple[int, int]:
        lo = i * pitch
        return lo, min(lo + room_size, limit)

    walls = []  # (room a, room b, wall cells as slices)
    for i in range(nr):
        for j in range(nc):
            r0, r1 = span(i, height)
            c0, c1 = span(j, width)
            if j + 1 < nc and c1 < width:  # wall column c1 between (i, j) and (i, j+1)
                walls.append(((i, j), (i, j + 1), ("col", c1, r0, r1)))
            if i + 1 < nr and r1 < height:  # wall row r1 between (i, j) and (i+1, j)
                walls.append(((i, j), (i + 1, j), ("row", r1, c0, c1)))
    order = rng.permutation(len(walls))
    parent = {(i, j): (i, j) for i in range(nr) for j in range(nc)}

    def root(a: tuple[int, int]) -> tuple[int, int]:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for k in order:  # Kruskal with random order: a random spanning tree of the rooms
        a, b, (kind, at, lo, hi) = walls[k]
        joined = root(a) != root(b)
        if joined:
            parent[root(a)] = root(b)
        if joined or rng.random() < extra_doors:
            d = min(door, hi - lo)
            pos = int(rng.integers(lo, hi - d + 1))
            if kind == "col":
                blocked[pos : pos + d, at] = False
            else:
                blocked[at, pos : pos + d] = False
    return GridMap(blocked, name or f"rooms{height}x{width}-{room_size}")


def maze(
    height: int,
    width: int,
    corridor_width: int,
    rng: np.random.Generator,
    wall_width: int = 1,
    name: str = "",
) -> GridMap:
    """A perfect maze (one route between any two corridor cells), carved by a randomised
    depth-first search, with corridors ``corridor_width`` cells wide, like Moving AI's
    ``maze512-W`` maps. Cells past the last whole corridor stay blocked."""
    _check_size(height, width)
    if corridor_width < 1 or wall_width < 1:
        raise UserError("corridor_width and wall_width must be at least 1")
    pitch = corridor_width + wall_width
    nr, nc = (height - wall_width) // pitch, (width - wall_width) // pitch
    if nr < 1 or nc < 1:
        raise UserError(f"a {height}×{width} map is too small for corridors of {corridor_width}")
    blocked = np.ones((height, width), dtype=bool)

    def origin(i: int, j: int) -> tuple[int, int]:
        return wall_width + i * pitch, wall_width + j * pitch

    for i in range(nr):
        for j in range(nc):
            r, c = origin(i, j)
            blocked[r : r + corridor_width, c : c + corridor_width] = False
    seen = np.zeros((nr, nc), dtype=bool)
    start = (int(rng.integers(nr)), int(rng.integers(nc)))
    seen[start] = True
    stack = [start]
    while stack:
        i, j = stack[-1]
        options = [
            (i + di, j + dj)
            for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1))
            if 0 <= i + di < nr and 0 <= j + dj < nc and not seen[i + di, j + dj]
        ]
        if not options:
            stack.pop()
            continue
        ni, nj = options[int(rng.integers(len(options)))]
        r, c = origin(min(i, ni), min(j, nj))
        if ni != i:  # knock down the wall below the upper cell
            blocked[r + corridor_width : r + pitch, c : c + corridor_width] = False
        else:
            blocked[r : r + corridor_width, c + corridor_width : c + pitch] = False
        seen[ni, nj] = True
        stack.append((ni, nj))
    return GridMap(blocked, name or f"maze{height}x{width}-{corridor_width}")


def _check_size(height: int, width: int) -> None:
    if height < 1 or width < 1:
        raise UserError(f"map size must be positive, got {height}×{width}")


# --------------------------------------------------------------------------- scenarios
DistanceField = Callable[[np.ndarray, Cell], np.ndarray]


def generate_scenarios(
    grid_map: GridMap,
    n: int,
    rng: np.random.Generator,
    distance_field: DistanceField,
    map_name: str | None = None,
    goals_per_start: int = 1,
) -> list[Scenario]:
    """``n`` random solvable queries with their optimal lengths, sorted by bucket.

    ``distance_field(blocked, (row, col))`` must return the optimal 8-connected distance
    from that cell to every cell (``inf`` where unreachable); pass
    ``pilot.planning.grid.distance_field``. One call serves ``goals_per_start`` queries.
    Buckets follow Moving AI: ``floor(optimal_length / 4)``.
    """
    if n < 0 or goals_per_start < 1:
        raise UserError("n must be ≥ 0 and goals_per_start ≥ 1")
    free = grid_map.free_cells()
    if len(free) < 2 and n > 0:
        raise UserError(f"map {grid_map.name!r} has fewer than two free cells")
    name = map_name if map_name is not None else (grid_map.name or "map") + ".map"
    out: list[Scenario] = []
    misses = 0
    while len(out) < n:
        start = tuple(int(v) for v in free[rng.integers(len(free))])
        dist = np.asarray(distance_field(grid_map.blocked, start), dtype=float)
        reachable = np.argwhere(np.isfinite(dist) & (dist > 0))
        if len(reachable) == 0:
            misses += 1
            if misses > 100:
                raise UserError(f"map {grid_map.name!r} has no two connected free cells")
            continue
        take = min(goals_per_start, n - len(out))
        for idx in rng.choice(len(reachable), size=take, replace=len(reachable) < take):
            gr, gc = (int(v) for v in reachable[idx])
            length = float(dist[gr, gc])
            out.append(
                Scenario(
                    int(length // 4),
                    name,
                    grid_map.width,
                    grid_map.height,
                    start[1],
                    start[0],
                    gc,
                    gr,
                    length,
                )
            )
    out.sort(key=lambda s: s.bucket)
    return out
