"""Optimal search on 8-connected occupancy grids: A*, Dijkstra, jump point search, Theta*.

Conventions (the Moving AI benchmark's): a cell moves to its 8 neighbours, straight moves
cost 1 and diagonal moves cost √2, and a diagonal move is allowed only when both cells
it squeezes between are free (no corner cutting). Grids are plain numpy boolean arrays
``blocked[row, col]`` (True = obstacle) and cells are ``(row, col)`` tuples, so this
module knows nothing about map files; Moving AI's ``x`` is the column and ``y`` the row.

Speed comes from preparing a grid once (:class:`GridGraph`): every cell gets a bit mask of
its legal moves, computed with numpy, and each mask value maps to a precomputed tuple of
``(flat offset, drow, dcol, cost)``, so the search loop works on flat int indices and
never tests a wall or a map border. Costs are added in exact fixed point, the open list
is a binary heap of distinct f values each holding a stack of nodes, and ties on f go to
the node generated last (usually the deepest): optimality is intact and, where many paths
tie, far fewer nodes are expanded than with first-in-first-out tie-breaking.

A* and Dijkstra (and so the distance field) run that loop compiled by numba when numba
is importable (:mod:`pilot.planning._fast`, about 10× faster per expansion); the Python
loop below stays as the fallback and the reference, and both expand the same nodes in the
same order.

Sources: Hart, Nilsson & Raphael 1968 (A*); Dijkstra 1959; Harabor & Grastien 2011 and
2014 (jump point search, and its rules without corner cutting); Rabin 2015 (JPS+
precomputed straight jumps); Daniel, Nash, Koenig & Felner 2010 (Theta*).
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Sequence

import numpy as np

from pilot.errors import UserError

from . import _fast
from .types import PlanInfo

SQRT2 = math.sqrt(2.0)
Cell = tuple[int, int]

# The search adds costs in fixed point: a straight move is _S, a diagonal _D ≈ √2·_S. Sums
# of these are whole numbers well inside a double's 53 bits, so equal path lengths compare
# exactly equal (floating-point sums of √2 do not, which scrambles tie-breaking), and a
# length a·_S + b·_D can be turned back into the exact a + b·√2 (see _exact_lengths).
_S = float(2**32)
_D = float(6074001001)  # round(√2·2³²) made odd, so it is invertible modulo 2³²
_D_INV = pow(6074001001, -1, 2**32)
_K = _D - 2.0 * _S  # the octile distance in fixed point: (dx + dy)·S + K·min(dx, dy)


def _octile_fixed(dx: int, dy: int) -> float:
    """The octile distance of a (dx, dy) offset in fixed point (what the searches' inner
    loops compute inline)."""
    return (dx + dy) * _S + _K * min(dx, dy)


#: The 8 moves as (drow, dcol); bit k of a cell's mask says move k is legal.
MOVES: tuple[tuple[int, int], ...] = (
    (-1, 0),
    (0, 1),
    (1, 0),
    (0, -1),
    (-1, 1),
    (1, 1),
    (1, -1),
    (-1, -1),
)


def _dir(dr: int, dc: int) -> int:
    return MOVES.index((dr, dc))


# Jump point search tables. The two sides of a straight move along (dr, dc) are the
# perpendicular cells (dc, dr) and (-dc, -dr).
_SIDES = tuple(((dc, dr), (-dc, -dr)) for dr, dc in MOVES[:4])
_ALL_DIRS = tuple(range(8))
# After a straight move k: keep going, plus, for each forced side b (bit b of the forced
# mask), the side itself and the diagonal between it and k.
_STRAIGHT_SUCC = tuple(
    tuple(
        (k,)
        + tuple(
            d
            for b, (sr, sc) in enumerate(_SIDES[k])
            if mask >> b & 1
            for d in (_dir(sr, sc), _dir(sr + MOVES[k][0], sc + MOVES[k][1]))
        )
        for mask in range(4)
    )
    for k in range(4)
)
# After a diagonal move: keep going, and its two straight components.
_DIAGONAL_SUCC = {k: (k, _dir(MOVES[k][0], 0), _dir(0, MOVES[k][1])) for k in range(4, 8)}


def _as_blocked(grid: np.ndarray) -> np.ndarray:
    arr = np.asarray(grid)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise UserError(f"a grid must be a non-empty 2D array, got shape {arr.shape}")
    return arr.astype(bool, copy=False)


def move_masks(blocked: np.ndarray) -> np.ndarray:
    """Per-cell bit mask of legal moves (bit k ↔ ``MOVES[k]``); blocked cells get 0."""
    blocked = _as_blocked(blocked)
    h, w = blocked.shape
    free = np.zeros((h + 2, w + 2), dtype=bool)  # a border of obstacles around the map
    free[1:-1, 1:-1] = ~blocked

    def shifted(dr: int, dc: int) -> np.ndarray:
        return free[1 + dr : 1 + dr + h, 1 + dc : 1 + dc + w]

    here = shifted(0, 0)
    masks = np.zeros((h, w), dtype=np.int64)
    for k, (dr, dc) in enumerate(MOVES):
        ok = here & shifted(dr, dc)
        if dr and dc:  # diagonal: both cells it squeezes between must be free
            ok &= shifted(dr, 0) & shifted(0, dc)
        masks |= ok.astype(np.int64) << k
    return masks


def path_cost(path: np.ndarray | Sequence[Cell]) -> float:
    """Length of a grid path as the sum of Euclidean steps (1 or √2 for grid moves)."""
    p = np.asarray(path, dtype=float).reshape(-1, 2)
    if len(p) < 2:
        return 0.0
    return float(np.sum(np.hypot(*np.diff(p, axis=0).T)))


def octile(a: Cell, b: Cell) -> float:
    """Octile distance: the grid length between two cells with no obstacles."""
    dy, dx = abs(a[0] - b[0]), abs(a[1] - b[1])
    return max(dx, dy) + (SQRT2 - 1.0) * min(dx, dy)


class GridGraph:
    """An occupancy grid prepared for repeated queries (masks and move tables built once).

    Build one per map and call :meth:`astar`, :meth:`dijkstra`, :meth:`jps`,
    :meth:`theta_star` or :meth:`distance_field` as often as needed; the module-level
    functions of the same names accept a raw array and build a throwaway graph.

    ``compiled`` picks the inner loop of A*, Dijkstra and the distance field: ``None``
    (default) uses the numba-compiled loop when numba is importable, ``False`` forces the
    pure-Python one. Both give the same paths, costs and expansion counts.
    """

    def __init__(self, blocked: np.ndarray, compiled: bool | None = None) -> None:
        self.blocked = _as_blocked(blocked).copy()
        self.blocked.setflags(write=False)
        self.height, self.width = self.blocked.shape
        w = self.width
        if compiled and not _fast.AVAILABLE:
            raise UserError("the compiled grid search needs numba, which is not installed")
        self.compiled = _fast.AVAILABLE if compiled is None else bool(compiled)
        mask_arr = move_masks(self.blocked).ravel()
        self._mask_arr = mask_arr.astype(np.uint8)
        self._masks: list[int] = mask_arr.tolist()
        self._move_arrays = (
            np.array([dr * w + dc for dr, dc in MOVES], dtype=np.int64),
            np.array([dr for dr, _ in MOVES], dtype=np.int64),
            np.array([dc for _, dc in MOVES], dtype=np.int64),
            np.array([_D if dr and dc else _S for dr, dc in MOVES]),
        )
        table = []
        for m in range(256):
            moves = []
            for k, (dr, dc) in enumerate(MOVES):
                if m >> k & 1:
                    moves.append((dr * w + dc, dr, dc, _D if dr and dc else _S))
            table.append(tuple(moves))
        self._table: list[tuple[tuple[int, int, int, float], ...]] = table
        self._free_rows: list[bytes] | None = None  # built on first Theta* query
        self._jps: tuple[list[list[int]], list[list[int]]] | None = None  # first JPS query

    # ------------------------------------------------------------------ helpers
    def _check(self, cell: Sequence[int], what: str) -> Cell:
        try:
            r, c = (int(v) for v in cell)
        except (TypeError, ValueError):
            raise UserError(f"{what} must be a (row, col) pair, got {cell!r}") from None
        if not (0 <= r < self.height and 0 <= c < self.width):
            raise UserError(
                f"{what} (row {r}, col {c}) is outside the {self.height}×{self.width} grid"
            )
        return r, c

    def _endpoints(self, start: Sequence[int], goal: Sequence[int]) -> tuple[Cell, Cell, str]:
        s, g = self._check(start, "start"), self._check(goal, "goal")
        why = ""
        if self.blocked[s]:
            why = f"start (row {s[0]}, col {s[1]}) is on a blocked cell"
        elif self.blocked[g]:
            why = f"goal (row {g[0]}, col {g[1]}) is on a blocked cell"
        return s, g, why

    def _result(
        self, parents: list[int] | np.ndarray, goal: int, expansions: int, t0: float
    ) -> tuple[np.ndarray, PlanInfo]:
        if isinstance(parents, np.ndarray):
            flat = _fast.trace(parents, goal)
        else:
            chain = [goal]
            while parents[chain[-1]] != -1:
                chain.append(parents[chain[-1]])
            chain.reverse()
            flat = np.asarray(chain, dtype=np.int64)
        path = np.stack(np.divmod(flat, self.width), axis=1)
        return path, PlanInfo(True, path_cost(path), expansions, time.perf_counter() - t0)

    @staticmethod
    def _failure(message: str, expansions: int, t0: float) -> tuple[np.ndarray, PlanInfo]:
        return np.zeros((0, 2), dtype=np.int64), PlanInfo(
            False, math.inf, expansions, time.perf_counter() - t0, message
        )

    # ------------------------------------------------------------------ search core
    def _search(
        self, s: int, t: int, use_h: bool
    ) -> tuple[list[float] | np.ndarray, list[int] | np.ndarray, int]:
        """:meth:`_search_py`, run by the compiled loop when this graph uses it (then the
        g-values and parents come back as numpy arrays instead of lists)."""
        if not self.compiled:
            return self._search_py(s, t, use_h)
        f0 = self._start_estimate(s, t) if use_h else 0.0
        return _fast.search(self._mask_arr, self._move_arrays, self.width, s, t, use_h, _S, _K, f0)

    def _start_estimate(self, s: int, t: int) -> float:
        """The heuristic at flat index ``s`` towards ``t`` (t=-1: towards cell (0, 0))."""
        sr, sc = divmod(s, self.width)
        tr, tc = divmod(t, self.width) if t >= 0 else (0, 0)
        return _octile_fixed(abs(sc - tc), abs(sr - tr))

    def _search_py(self, s: int, t: int, use_h: bool) -> tuple[list[float], list[int], int]:
        """Best-first search from flat index ``s``; stops when ``t`` is expanded (t=-1: never).

        Returns (fixed-point g-values, parents, expansions). With ``use_h`` the octile
        heuristic is added (A*), otherwise the order is by g alone (Dijkstra).

        The open list is a binary heap of *distinct* f values, each with a stack of the
        nodes that have it. Exact fixed-point costs make equal f values really equal, so
        most pushes land on an existing stack and the heap stays small; popping the most
        recent node of the lowest f breaks ties towards the node generated last, which is
        usually the deepest. The octile heuristic is consistent (also in fixed point), so
        the first time a node is popped its g is final and later copies are skipped.
        """
        w = self.width
        masks, table = self._masks, self._table
        n = self.height * w
        gs = [math.inf] * n
        parents = [-1] * n
        closed = bytearray(n)
        tr, tc = divmod(t, w) if t >= 0 else (0, 0)
        s1, k = _S, _K  # octile = (dx + dy)·S + K·min(dx, dy), inline in the loop
        push, pop = heapq.heappush, heapq.heappop
        f0 = self._start_estimate(s, t) if use_h else 0.0
        gs[s] = 0.0
        heap = [f0]  # distinct f values
        stacks = {f0: [s]}  # f -> nodes with that f, the newest last
        expansions = 0
        while heap:
            f = heap[0]
            stack = stacks[f]
            u = stack.pop()
            if not stack:
                del stacks[f]
                pop(heap)
            if closed[u]:
                continue  # a stale copy: u was expanded from a cheaper entry already
            closed[u] = 1
            expansions += 1
            if u == t:
                break
            g = gs[u]
            ur, uc = divmod(u, w)
            for off, dr, dc, cost in table[masks[u]]:
                v = u + off
                ng = g + cost
                if ng < gs[v]:
                    gs[v] = ng
                    parents[v] = u
                    if use_h:
                        dy = ur + dr - tr
                        if dy < 0:
                            dy = -dy
                        dx = uc + dc - tc
                        if dx < 0:
                            dx = -dx
                        fv = ng + (dx + dy) * s1 + k * (dx if dx < dy else dy)
                    else:
                        fv = ng
                    same = stacks.get(fv)
                    if same is None:
                        stacks[fv] = [v]
                        push(heap, fv)
                    else:
                        same.append(v)
        return gs, parents, expansions

    # ------------------------------------------------------------------ planners
    def astar(self, start: Sequence[int], goal: Sequence[int]) -> tuple[np.ndarray, PlanInfo]:
        """Optimal 8-connected path (octile heuristic); ``path`` is (N, 2) ``(row, col)``.

        A start or goal on a blocked cell, or an unreachable goal, gives ``success=False``
        and a message; a cell outside the grid is a :class:`UserError`.
        """
        return self._plan(start, goal, use_h=True)

    def dijkstra(self, start: Sequence[int], goal: Sequence[int]) -> tuple[np.ndarray, PlanInfo]:
        """Same result as :meth:`astar` without a heuristic (the reference for optimality)."""
        return self._plan(start, goal, use_h=False)

    def _plan(
        self, start: Sequence[int], goal: Sequence[int], use_h: bool
    ) -> tuple[np.ndarray, PlanInfo]:
        t0 = time.perf_counter()
        s, g, why = self._endpoints(start, goal)
        if why:
            return self._failure(why, 0, t0)
        si, gi = s[0] * self.width + s[1], g[0] * self.width + g[1]
        gs, parents, expansions = self._search(si, gi, use_h)
        if gs[gi] == math.inf:
            return self._failure("goal is unreachable from start", expansions, t0)
        return self._result(parents, gi, expansions, t0)

    def distance_field(self, source: Sequence[int]) -> np.ndarray:
        """Optimal grid distance from ``source`` to every cell (``inf`` where unreachable).

        One Dijkstra run answers every goal at once: the scenario generator and hybrid
        A*'s obstacle-aware heuristic use it.
        """
        s = self._check(source, "source")
        if self.blocked[s]:
            out = np.full((self.height, self.width), np.inf)
            return out
        gs, _, _ = self._search(s[0] * self.width + s[1], -1, use_h=False)
        return _exact_lengths(np.asarray(gs, dtype=float)).reshape(self.height, self.width)

    # ------------------------------------------------------------------ any-angle
    def line_of_sight(self, a: Sequence[int], b: Sequence[int]) -> bool:
        """Whether the segment between the centres of cells ``a`` and ``b`` touches no
        blocked cell (closed squares, so passing exactly through a blocked corner counts).

        Every legal grid move passes this test, which is what makes Theta* paths never
        longer than A*'s.
        """
        if self._free_rows is None:
            self._free_rows = [bytes(row) for row in (~self.blocked).astype(np.uint8)]
        return _line_of_sight(self._free_rows, int(a[0]), int(a[1]), int(b[0]), int(b[1]))

    def theta_star(self, start: Sequence[int], goal: Sequence[int]) -> tuple[np.ndarray, PlanInfo]:
        """Any-angle path (Theta*): vertices are cell centres joined by straight segments
        with line of sight; ``cost`` is the Euclidean length in cells.

        Not guaranteed to be the shortest any-angle path, but never longer than A*'s
        8-connected optimum.
        """
        t0 = time.perf_counter()
        s, g, why = self._endpoints(start, goal)
        if why:
            return self._failure(why, 0, t0)
        if self._free_rows is None:
            self._free_rows = [bytes(row) for row in (~self.blocked).astype(np.uint8)]
        rows = self._free_rows
        w = self.width
        masks, table = self._masks, self._table
        n = self.height * w
        inf = math.inf
        gs = [inf] * n
        parents = [-1] * n
        closed = bytearray(n)
        si, gi = s[0] * w + s[1], g[0] * w + g[1]
        tr, tc = g
        hypot = math.hypot
        push, pop = heapq.heappush, heapq.heappop
        gs[si] = 0.0
        parents[si] = si
        heap: list[tuple[float, float, int]] = [(hypot(s[0] - tr, s[1] - tc), -0.0, si)]
        expansions = 0
        while heap:
            _, neg_g, u = pop(heap)
            if closed[u] or -neg_g > gs[u]:
                continue
            closed[u] = 1
            expansions += 1
            if u == gi:
                break
            ur, uc = divmod(u, w)
            p = parents[u]
            pr, pc = divmod(p, w)
            gp = gs[p]
            for off, dr, dc, _ in table[masks[u]]:
                v = u + off
                if closed[v]:
                    continue
                vr, vc = ur + dr, uc + dc
                if p != u and _line_of_sight(rows, pr, pc, vr, vc):
                    ng, par = gp + hypot(vr - pr, vc - pc), p  # path 2: straight from parent
                else:
                    ng, par = gs[u] + (SQRT2 if dr and dc else 1.0), u  # path 1: grid move
                if ng < gs[v]:
                    gs[v] = ng
                    parents[v] = par
                    push(heap, (ng + hypot(vr - tr, vc - tc), -ng, v))
        if gs[gi] == inf:
            return self._failure("goal is unreachable from start", expansions, t0)
        parents[si] = -1
        return self._result(parents, gi, expansions, t0)

    # ------------------------------------------------------------------ jump points
    def _jump_tables(self) -> tuple[list[list[int]], list[list[int]]]:
        """Per cardinal direction: the straight jump from every cell, and its forced sides.

        ``jumps[k][u] = d > 0``: moving along ``MOVES[k]`` from ``u`` meets a jump point
        ``d`` cells away; ``-d ≤ 0``: no jump point, ``d`` free cells before a wall.
        ``forced[k][u]`` has bit b set when side b of a move along k is a forced neighbour
        at ``u``: the side cell is free but the cell behind it is not (without corner
        cutting, only a straight move past such a cell must turn there).
        Computed once per map with numpy (the straight half of JPS+, Rabin 2015).
        """
        if self._jps is not None:
            return self._jps
        h, w = self.height, self.width
        free = ~self.blocked
        pad = np.zeros((h + 2, w + 2), dtype=bool)
        pad[1:-1, 1:-1] = free

        def at(dr: int, dc: int) -> np.ndarray:
            return pad[1 + dr : 1 + dr + h, 1 + dc : 1 + dc + w]

        def east(event: np.ndarray, wall: np.ndarray) -> np.ndarray:
            hh, ww = event.shape
            cols = np.arange(ww)[None, :]
            first = np.where(event, cols, ww)
            nxt = np.full((hh, ww), ww)
            nxt[:, :-1] = np.minimum.accumulate(first[:, ::-1], axis=1)[:, ::-1][:, 1:]
            k = nxt - cols
            hit = np.take_along_axis(np.pad(wall, ((0, 0), (0, 1)), constant_values=True), nxt, 1)
            return np.where(hit, -(k - 1), k)

        # views that turn direction k into "east" and back
        to_east = {
            0: lambda a: a.T[:, ::-1],
            1: lambda a: a,
            2: lambda a: a.T,
            3: lambda a: a[:, ::-1],
        }
        back = {
            0: lambda a: a[:, ::-1].T,
            1: lambda a: a,
            2: lambda a: a.T,
            3: lambda a: a[:, ::-1],
        }
        jumps, forced = [], []
        for k in range(4):
            dr, dc = MOVES[k]
            bits = np.zeros((h, w), dtype=np.int64)
            for b, (sr, sc) in enumerate(_SIDES[k]):
                bits |= (free & at(sr, sc) & ~at(sr - dr, sc - dc)).astype(np.int64) << b
            event = self.blocked | (bits > 0)
            d = back[k](east(to_east[k](event), to_east[k](self.blocked)))
            jumps.append(np.ascontiguousarray(d).ravel().tolist())
            forced.append(bits.ravel().tolist())
        self._jps = (jumps, forced)
        return self._jps

    def jps(self, start: Sequence[int], goal: Sequence[int]) -> tuple[np.ndarray, PlanInfo]:
        """Jump point search: A* over jump points only (Harabor & Grastien 2011, with the
        no-corner-cutting rules of their 2014 follow-up); same optimal lengths as
        :meth:`astar`, far fewer heap operations on open maps.

        The path is returned cell by cell like :meth:`astar`'s; ``expansions`` counts
        expanded jump points.
        """
        t0 = time.perf_counter()
        s, g, why = self._endpoints(start, goal)
        if why:
            return self._failure(why, 0, t0)
        jumps, forced = self._jump_tables()
        w = self.width
        masks = self._masks
        n = self.height * w
        si, ti = s[0] * w + s[1], g[0] * w + g[1]
        tr, tc = g
        offs = [dr * w + dc for dr, dc in MOVES]
        gs = [math.inf] * n
        parents = [-1] * n
        pdir = [-1] * n
        closed = bytearray(n)
        s1, kk = _S, _K
        push, pop = heapq.heappush, heapq.heappop

        def straight(u: int, ur: int, uc: int, k: int) -> tuple[int, int] | None:
            j = jumps[k][u]
            run = j if j > 0 else -j
            dr, dc = MOVES[k]
            if dr == 0:
                if ur == tr and 0 < (tc - uc) * dc <= run:
                    return ti, (tc - uc) * dc
            elif uc == tc and 0 < (tr - ur) * dr <= run:
                return ti, (tr - ur) * dr
            return (u + j * offs[k], j) if j > 0 else None

        def diagonal(u: int, ur: int, uc: int, k: int) -> tuple[int, int] | None:
            dr, dc = MOVES[k]
            off, bit = offs[k], 1 << k
            jh, jv = jumps[1 if dc > 0 else 3], jumps[2 if dr > 0 else 0]
            steps = 0
            while masks[u] & bit:
                u += off
                ur += dr
                uc += dc
                steps += 1
                if u == ti:
                    return u, steps
                j = jh[u]
                if j > 0 or (ur == tr and 0 < (tc - uc) * dc <= -j):
                    return u, steps
                j = jv[u]
                if j > 0 or (uc == tc and 0 < (tr - ur) * dr <= -j):
                    return u, steps
            return None

        f0 = _octile_fixed(abs(s[1] - tc), abs(s[0] - tr))
        gs[si] = 0.0
        heap, stacks = [f0], {f0: [si]}
        expansions = 0
        while heap:
            f = heap[0]
            stack = stacks[f]
            u = stack.pop()
            if not stack:
                del stacks[f]
                pop(heap)
            if closed[u]:
                continue
            closed[u] = 1
            expansions += 1
            if u == ti:
                break
            g0 = gs[u]
            ur, uc = divmod(u, w)
            d = pdir[u]
            if d < 0:
                dirs: tuple[int, ...] = _ALL_DIRS
            elif d < 4:
                dirs = _STRAIGHT_SUCC[d][forced[d][u]]
            else:
                dirs = _DIAGONAL_SUCC[d]
            for k in dirs:
                hit = straight(u, ur, uc, k) if k < 4 else diagonal(u, ur, uc, k)
                if hit is None:
                    continue
                v, steps = hit
                ng = g0 + steps * (_S if k < 4 else _D)
                if ng < gs[v]:
                    gs[v] = ng
                    parents[v] = u
                    pdir[v] = k
                    vr, vc = divmod(v, w)
                    dy = vr - tr if vr > tr else tr - vr
                    dx = vc - tc if vc > tc else tc - vc
                    fv = ng + (dx + dy) * s1 + kk * (dx if dx < dy else dy)
                    same = stacks.get(fv)
                    if same is None:
                        stacks[fv] = [v]
                        push(heap, fv)
                    else:
                        same.append(v)
        if gs[ti] == math.inf:
            return self._failure("goal is unreachable from start", expansions, t0)
        chain = [ti]
        while parents[chain[-1]] != -1:
            chain.append(parents[chain[-1]])
        chain.reverse()
        cells = [chain[0]]
        for a, b in zip(chain[:-1], chain[1:], strict=True):
            (ar, ac), (br, bc) = divmod(a, w), divmod(b, w)
            steps = max(abs(br - ar), abs(bc - ac))
            step = ((br - ar) // steps) * w + (bc - ac) // steps
            cells.extend(a + i * step for i in range(1, steps + 1))
        path = np.stack(np.divmod(np.asarray(cells, dtype=np.int64), w), axis=1)
        return path, PlanInfo(True, path_cost(path), expansions, time.perf_counter() - t0)


def _exact_lengths(fixed: np.ndarray) -> np.ndarray:
    """Fixed-point sums ``a·_S + b·_D`` → ``a + b·√2`` (``inf`` stays ``inf``).

    ``b ≡ sum · _D⁻¹ (mod 2³²)`` because ``_S = 2³²``; the products wrap in uint64, which
    is exact modulo 2³².
    """
    out = np.full(fixed.shape, np.inf)
    ok = np.isfinite(fixed)
    total = fixed[ok].astype(np.uint64)
    b = ((total % np.uint64(2**32)) * np.uint64(_D_INV)) % np.uint64(2**32)
    a = (total - b * np.uint64(int(_D))) // np.uint64(2**32)
    out[ok] = a.astype(float) + b.astype(float) * SQRT2
    return out


def _line_of_sight(rows: list[bytes], r0: int, c0: int, r1: int, c1: int) -> bool:
    """Exact closed-square line of sight between cell centres, in integer arithmetic.

    Walks the columns the segment crosses; in column ``c`` the segment spans rows
    ``ceil(y_lo) - 1 .. floor(y_hi)`` (the -1 because touching a row's top edge touches
    the cell above). Coordinates are doubled so cell centres are odd integers.
    """
    if c0 == c1:
        lo, hi = (r0, r1) if r0 <= r1 else (r1, r0)
        return all(rows[r][c0] for r in range(lo, hi + 1))
    if c0 > c1:
        r0, c0, r1, c1 = r1, c1, r0, c0
    dc, dr = c1 - c0, r1 - r0
    rlo, rhi = (r0, r1) if r0 <= r1 else (r1, r0)
    den = 2 * dc
    xa, ya = 2 * c0 + 1, 2 * r0 + 1
    for c in range(c0, c1 + 1):
        x_lo = 2 * c if 2 * c > xa else xa
        x_hi = 2 * c + 2 if 2 * c + 2 < 2 * c1 + 1 else 2 * c1 + 1
        n_lo = ya * dc + (x_lo - xa) * dr  # y = n / den
        n_hi = ya * dc + (x_hi - xa) * dr
        if n_lo > n_hi:
            n_lo, n_hi = n_hi, n_lo
        top = -((-n_lo) // den) - 1
        bottom = n_hi // den
        if top < rlo:
            top = rlo
        if bottom > rhi:
            bottom = rhi
        for r in range(top, bottom + 1):
            if not rows[r][c]:
                return False
    return True


# ---------------------------------------------------------------------- functional API
def astar(
    grid: np.ndarray | GridGraph, start: Sequence[int], goal: Sequence[int]
) -> tuple[np.ndarray, PlanInfo]:
    """A* on a blocked-cell array (or a prepared :class:`GridGraph`); see :meth:`GridGraph.astar`."""
    return _graph(grid).astar(start, goal)


def dijkstra(
    grid: np.ndarray | GridGraph, start: Sequence[int], goal: Sequence[int]
) -> tuple[np.ndarray, PlanInfo]:
    """Dijkstra on a blocked-cell array; see :meth:`GridGraph.dijkstra`."""
    return _graph(grid).dijkstra(start, goal)


def theta_star(
    grid: np.ndarray | GridGraph, start: Sequence[int], goal: Sequence[int]
) -> tuple[np.ndarray, PlanInfo]:
    """Theta* any-angle search; see :meth:`GridGraph.theta_star`."""
    return _graph(grid).theta_star(start, goal)


def distance_field(grid: np.ndarray | GridGraph, source: Sequence[int]) -> np.ndarray:
    """Optimal grid distances from ``source`` to all cells; see :meth:`GridGraph.distance_field`."""
    return _graph(grid).distance_field(source)


def line_of_sight(grid: np.ndarray | GridGraph, a: Sequence[int], b: Sequence[int]) -> bool:
    """Closed-square line of sight between two cell centres; see :meth:`GridGraph.line_of_sight`."""
    return _graph(grid).line_of_sight(a, b)


def _graph(grid: np.ndarray | GridGraph) -> GridGraph:
    return grid if isinstance(grid, GridGraph) else GridGraph(grid)


#: Planner names for the CLI and benchmarks.
def jps(
    grid: np.ndarray | GridGraph, start: Sequence[int], goal: Sequence[int]
) -> tuple[np.ndarray, PlanInfo]:
    """Jump point search (optimal, like A*); see :meth:`GridGraph.jps`."""
    return _graph(grid).jps(start, goal)


GRID_PLANNERS = {"astar": astar, "dijkstra": dijkstra, "theta": theta_star, "jps": jps}
