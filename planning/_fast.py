"""Compiled inner loop of grid A* / Dijkstra (numba), with the same expansion order as
:meth:`pilot.planning.grid.GridGraph._search_py`.

The pure-Python loop spends 3–4 µs per expansion, mostly interpreter overhead; compiled,
the same loop runs at well under a microsecond. The search is a line-for-line port so
that results do not depend on whether numba is installed: identical fixed-point costs
(the same float64 operations in the same order), neighbours in the same order, and the
same tie-breaking. The Python version keeps a heap of distinct f values each with a stack
of nodes; here one binary heap orders entries by (f ascending, push sequence descending),
which pops exactly the same node at every step. So paths, costs and expansion counts are
identical to the fallback's, not only the lengths.

``AVAILABLE`` is False when numba cannot be imported; :mod:`pilot.planning.grid` then
uses its own loop.
"""

from __future__ import annotations

import numpy as np

try:
    import numba
except ImportError:  # numba missing or broken for this numpy: the Python loop is used
    numba = None

AVAILABLE = numba is not None


def _before(fa: float, sa: int, fb: float, sb: int) -> bool:
    """Heap order: lower f first; on equal f the entry pushed last (LIFO, like the stacks)."""
    return fa < fb or (fa == fb and sa > sb)


def _run(
    masks: np.ndarray,
    offs: np.ndarray,
    drs: np.ndarray,
    dcs: np.ndarray,
    costs: np.ndarray,
    width: int,
    t: int,
    use_h: bool,
    s1: float,
    kdiag: float,
    gs: np.ndarray,
    parents: np.ndarray,
    closed: np.ndarray,
    hf: np.ndarray,
    hs: np.ndarray,
    hn: np.ndarray,
    state: np.ndarray,
) -> bool:
    """Search until ``t`` is expanded or the open list is empty (True), or until the heap
    might overflow during the next expansion (False: grow it and call again).

    All search state lives in the arrays passed in (``state`` = heap size, next push
    sequence, expansions), so the caller can grow the heap and resume; reallocating arrays
    inside the compiled loop instead makes every iteration several times slower.
    """
    if t >= 0:
        tr, tc = t // width, t % width
    else:
        tr, tc = 0, 0
    cap = hf.shape[0]
    size, seq, expansions = state[0], state[1], state[2]
    done = True
    while size > 0:
        if size + 8 > cap:  # one expansion pushes at most 8 entries
            done = False
            break
        u = hn[0]
        # pop the root: move the last entry down from the top
        size -= 1
        lf, ls, ln = hf[size], hs[size], hn[size]
        i = 0
        while True:
            c = 2 * i + 1
            if c >= size:
                break
            if c + 1 < size and _before(hf[c + 1], hs[c + 1], hf[c], hs[c]):
                c += 1
            if not _before(hf[c], hs[c], lf, ls):
                break
            hf[i], hs[i], hn[i] = hf[c], hs[c], hn[c]
            i = c
        if size > 0:
            hf[i], hs[i], hn[i] = lf, ls, ln
        if closed[u]:
            continue  # a stale copy: u was expanded from a cheaper entry already
        closed[u] = 1
        expansions += 1
        if u == t:
            break
        g = gs[u]
        ur, uc = u // width, u % width
        m = masks[u]
        for k in range(8):
            if not (m >> k) & 1:
                continue
            v = u + offs[k]
            ng = g + costs[k]
            if ng < gs[v]:
                gs[v] = ng
                parents[v] = u
                if use_h:
                    dy = abs(ur + drs[k] - tr)
                    dx = abs(uc + dcs[k] - tc)
                    fv = ng + (dx + dy) * s1 + kdiag * (dx if dx < dy else dy)
                else:
                    fv = ng
                # push: sift the new entry up from the bottom
                i = size
                size += 1
                while i > 0:
                    p = (i - 1) // 2
                    if not _before(fv, seq, hf[p], hs[p]):
                        break
                    hf[i], hs[i], hn[i] = hf[p], hs[p], hn[p]
                    i = p
                hf[i], hs[i], hn[i] = fv, seq, v
                seq += 1
    state[0], state[1], state[2] = size, seq, expansions
    return done


def search(
    masks: np.ndarray,
    moves: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    width: int,
    s: int,
    t: int,
    use_h: bool,
    s1: float,
    kdiag: float,
    f0: float,
    capacity: int = 1024,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Best-first search from ``s`` until ``t`` is expanded (``t = -1``: never).

    ``masks`` are the uint8 move masks, ``moves`` the per-move (flat offset, drow, dcol,
    fixed-point cost) arrays, ``f0`` the start's priority (its heuristic; 0 without one).
    Returns (fixed-point g-values with ``inf`` for unreached
    cells, parents with -1 for none, expansions), the same as the Python ``_search_py``.
    ``capacity`` is the heap's first size; it doubles whenever it could overflow.
    """
    n = masks.shape[0]
    gs = np.full(n, np.inf)
    parents = np.full(n, -1, dtype=np.int64)
    closed = np.zeros(n, dtype=np.uint8)
    gs[s] = 0.0
    cap = max(int(capacity), 16)
    hf = np.empty(cap)  # heap entries: f, push sequence, node
    hs = np.empty(cap, dtype=np.int64)
    hn = np.empty(cap, dtype=np.int64)
    hf[0] = f0  # the start's f: its heuristic (0 without one)
    hs[0], hn[0] = 0, s
    state = np.array([1, 1, 0], dtype=np.int64)  # heap size, next sequence, expansions
    args = (masks, *moves, width, t, use_h, s1, kdiag, gs, parents, closed)
    while not _run_jit(*args, hf, hs, hn, state):
        size = int(state[0])
        hf, hs, hn = (
            np.concatenate([a[:size], np.empty(2 * cap - size, a.dtype)]) for a in (hf, hs, hn)
        )
        cap *= 2
    return gs, parents, int(state[2])


def _trace(parents: np.ndarray, goal: int) -> np.ndarray:
    """Flat indices from the start to ``goal`` along ``parents``."""
    count = 1
    u = goal
    while parents[u] != -1:
        u = parents[u]
        count += 1
    out = np.empty(count, dtype=np.int64)
    u = goal
    for i in range(count - 1, -1, -1):
        out[i] = u
        u = parents[u]
    return out


def _jit(fn, **options):
    """numba.njit with an on-disk cache (compiling takes seconds); without the cache where
    no cache directory is writable."""
    try:
        return numba.njit(cache=True, **options)(fn)
    except RuntimeError:
        return numba.njit(**options)(fn)


if numba is not None:
    _before = _jit(_before, inline="always")
    _run_jit = _jit(_run, nogil=True)
    trace = _jit(_trace, nogil=True)
else:
    _run_jit = trace = None
