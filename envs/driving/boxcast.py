"""Rays and contacts against upright boxes, outside pybullet: the lidar sweep and the
car's contacts with everything in the world (:meth:`.world.World.cast`,
:meth:`.world.World.ego_contacts`).

:func:`cast_boxes` intersects rays with boxes that stand upright (a yaw, half sizes on the
ground, a height range): a slab test in each box's frame. Rays from one origin (a lidar
sweep) only meet the boxes whose bearing they fall within; that loop is compiled by numba
when numba is installed, and runs in numpy otherwise, with the same pairs and the same
float64 arithmetic, so the answers do not depend on it. :func:`touching_boxes` finds the
boxes that an upright box touches (separating axes on the ground, and the heights).
"""

from __future__ import annotations

import math

import numpy as np

try:
    import numba
except ImportError:  # without numba the rays are cast in numpy (the same answers, slower)
    numba = None


def cast_boxes(
    starts: np.ndarray, ends: np.ndarray, box: np.ndarray, frac: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Rays ``starts[i] → ends[i]`` (``n × 3``) against boxes (rows ``x, y, cos, sin, hx, hy,
    z0, z1, radius`` with ``radius`` their ground half-diagonal): the fraction along each
    ray where it first enters a box when that is before ``frac[i]`` (else ``frac[i]``), and
    which box (-1: none nearer)."""
    d = ends - starts
    one_origin = bool(np.all(starts == starts[0]))
    if one_origin and _cast_compiled is not None:
        best, which = frac.copy(), np.full(len(d), -1, dtype=np.int64)
        _cast_compiled(starts[0], d, box, best, which)
        return best, which
    if one_origin:
        ray, k = _pairs_by_bearing(starts[0], d, box)
    else:  # rays from several origins: every ray against every box
        ray = np.repeat(np.arange(len(starts)), len(box))
        k = np.tile(np.arange(len(box)), len(starts))
    best, which = frac.copy(), np.full(len(d), -1, dtype=np.int64)
    t = _slab(starts[ray], d[ray], box[k])
    hit = np.isfinite(t)
    ray, k, t = ray[hit], k[hit], t[hit]
    order = np.lexsort((t, ray))  # by ray, nearest first, the lower box first on a tie
    ray, k, t = ray[order], k[order], t[order]
    first = np.concatenate([[True], ray[1:] != ray[:-1]]) if len(ray) else np.zeros(0, bool)
    ray, k, t = ray[first], k[first], t[first]
    closer = t < best[ray]
    best[ray[closer]] = t[closer]
    which[ray[closer]] = k[closer]
    return best, which


def _pairs_by_bearing(
    origin: np.ndarray, d: np.ndarray, box: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(ray, box)`` index pairs worth testing for rays ``d`` from one ``origin``: each
    box only against the rays whose bearing falls within the bearings its bounding circle
    covers, and only boxes within the rays' reach."""
    rx, ry = box[:, 0] - origin[0], box[:, 1] - origin[1]
    dist = np.hypot(rx, ry)
    reach = float(np.hypot(d[:, 0], d[:, 1]).max())
    keep = np.flatnonzero(dist - box[:, 8] <= reach)
    if not len(keep):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    n = len(d)
    bearing = np.arctan2(d[:, 1], d[:, 0])
    order = np.argsort(bearing, kind="stable")
    sorted_b = bearing[order]
    ext = np.concatenate([sorted_b - 2 * np.pi, sorted_b, sorted_b + 2 * np.pi])
    centre = np.arctan2(ry[keep], rx[keep])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = box[keep, 8] / dist[keep]
    half = np.where(ratio >= 1.0, np.pi, np.arcsin(np.minimum(ratio, 1.0))) + 1e-9
    lo = np.searchsorted(ext, centre - half, side="left")
    hi = np.searchsorted(ext, centre + half, side="right")
    count = hi - lo
    total = int(count.sum())
    k = np.repeat(keep, count)
    start = np.repeat(lo - np.concatenate([[0], np.cumsum(count)[:-1]]), count)
    pos = np.arange(total) + start
    return order[pos % n], k


def _slab(o: np.ndarray, d: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Fraction along each ray ``o + t d`` (t in [0, 1]) where it enters its upright box
    (``x, y, cos, sin, hx, hy, z0, z1`` rows); inf where it misses."""
    c, s = box[:, 2], box[:, 3]
    px, py = o[:, 0] - box[:, 0], o[:, 1] - box[:, 1]
    lo_t = np.full(len(o), -np.inf)
    hi_t = np.full(len(o), np.inf)
    for origin, direction, half_lo, half_hi in (
        (c * px + s * py, c * d[:, 0] + s * d[:, 1], -box[:, 4], box[:, 4]),
        (-s * px + c * py, -s * d[:, 0] + c * d[:, 1], -box[:, 5], box[:, 5]),
        (o[:, 2], d[:, 2], box[:, 6], box[:, 7]),
    ):
        flat = np.abs(direction) < 1e-12
        with np.errstate(divide="ignore", invalid="ignore"):
            t1 = (half_lo - origin) / direction
            t2 = (half_hi - origin) / direction
        inside = (origin >= half_lo) & (origin <= half_hi)
        lo_t = np.maximum(
            lo_t, np.where(flat, np.where(inside, -np.inf, np.inf), np.minimum(t1, t2))
        )
        hi_t = np.minimum(
            hi_t, np.where(flat, np.where(inside, np.inf, -np.inf), np.maximum(t1, t2))
        )
    hit = (lo_t <= hi_t) & (hi_t >= 0.0) & (lo_t <= 1.0)
    return np.where(hit, np.maximum(lo_t, 0.0), np.inf)


def _cast_one_origin(
    o: np.ndarray, d: np.ndarray, box: np.ndarray, best: np.ndarray, which: np.ndarray
) -> None:
    """The loop of :func:`cast_boxes` for rays from one origin ``o``, compiled
    by numba: the same pairs as :func:`_pairs_by_bearing` and the same arithmetic as
    :func:`_slab`, so the same answers. Lowers ``best[i]`` to the fraction where ray ``i``
    enters box ``j`` when that is nearer, and sets ``which[i] = j`` then."""
    n = d.shape[0]
    bearing = np.empty(n)
    reach = 0.0
    for i in range(n):
        bearing[i] = math.atan2(d[i, 1], d[i, 0])
        reach = max(reach, math.hypot(d[i, 0], d[i, 1]))
    order = np.argsort(bearing)
    sorted_b = bearing[order]
    ext = np.concatenate((sorted_b - 2 * np.pi, sorted_b, sorted_b + 2 * np.pi))
    for j in range(box.shape[0]):
        rx, ry = box[j, 0] - o[0], box[j, 1] - o[1]
        dist = math.hypot(rx, ry)
        if dist - box[j, 8] > reach:
            continue
        ratio = box[j, 8] / dist if dist > 0.0 else np.inf
        half = (np.pi if ratio >= 1.0 else math.asin(ratio)) + 1e-9
        centre = math.atan2(ry, rx)
        lo = np.searchsorted(ext, centre - half, side="left")
        hi = np.searchsorted(ext, centre + half, side="right")
        c, s = box[j, 2], box[j, 3]
        px, py = o[0] - box[j, 0], o[1] - box[j, 1]
        for e in range(lo, hi):
            i = order[e % n]
            lo_t, hi_t = -np.inf, np.inf
            for axis in range(3):
                if axis == 0:
                    origin, direction = c * px + s * py, c * d[i, 0] + s * d[i, 1]
                    half_lo, half_hi = -box[j, 4], box[j, 4]
                elif axis == 1:
                    origin, direction = -s * px + c * py, -s * d[i, 0] + c * d[i, 1]
                    half_lo, half_hi = -box[j, 5], box[j, 5]
                else:
                    origin, direction = o[2], d[i, 2]
                    half_lo, half_hi = box[j, 6], box[j, 7]
                if abs(direction) < 1e-12:
                    if not half_lo <= origin <= half_hi:
                        lo_t = np.inf
                else:
                    t1 = (half_lo - origin) / direction
                    t2 = (half_hi - origin) / direction
                    lo_t = max(lo_t, min(t1, t2))
                    hi_t = min(hi_t, max(t1, t2))
            if lo_t <= hi_t and hi_t >= 0.0 and lo_t <= 1.0:
                t = max(lo_t, 0.0)
                if t < best[i]:
                    best[i] = t
                    which[i] = j


def sweep_boxes(
    x: float,
    y: float,
    c: float,
    s: float,
    rays: tuple[np.ndarray, np.ndarray, np.ndarray],
    mount: float,
    box: np.ndarray,
    box_ids: np.ndarray,
    ground: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """A lidar sweep from ``(x, y, mount)``: rays to ``(x + c rx - s ry, y + s rx + c ry,
    z)`` for ``rays = (rx, ry, z)`` (the car's heading has cosine ``c`` and sine ``s``)
    against the boxes; the fraction along each ray where it meets the first box, or the
    ground (at the fractions ``ground``, inf for rays that never reach it), and the id of
    what it met (``box_ids[box]``, -2 the ground, -1 nothing: fraction 1). In one compiled
    call where numba is installed: the same arithmetic as :func:`cast_boxes` on the rays'
    end points, which this is without numba."""
    rx, ry, z = rays
    if _sweep is not None:
        return _sweep(x, y, c, s, rx, ry, z, mount, box, box_ids, ground)
    starts, ends = np.empty((len(rx), 3)), np.empty((len(rx), 3))
    starts[:, 0], starts[:, 1], starts[:, 2] = x, y, mount
    ends[:, 0], ends[:, 1], ends[:, 2] = x + c * rx - s * ry, y + s * rx + c * ry, z
    frac, ids = np.ones(len(rx)), np.full(len(rx), -1, dtype=np.int64)
    if len(box):
        frac, which = cast_boxes(starts, ends, box, frac)
        ids[which >= 0] = box_ids[which[which >= 0]]
    low = ground < frac
    return np.where(low, ground, frac), np.where(low, -2, ids)


def _sweep_loop(x, y, c, s, rx, ry, z, mount, box, box_ids, ground):
    """:func:`sweep_boxes`, compiled."""
    n = len(rx)
    d = np.empty((n, 3))
    for i in range(n):
        d[i, 0] = (x + c * rx[i] - s * ry[i]) - x
        d[i, 1] = (y + s * rx[i] + c * ry[i]) - y
        d[i, 2] = z[i] - mount
    frac, which = np.ones(n), np.full(n, -1, np.int64)
    if len(box):
        _cast_compiled(np.array([x, y, mount]), d, box, frac, which)
    ids = np.empty(n, np.int64)
    for i in range(n):
        ids[i] = box_ids[which[i]] if which[i] >= 0 else -1
        if ground[i] < frac[i]:
            frac[i], ids[i] = ground[i], -2
    return frac, ids


def touching_boxes(
    box: np.ndarray,
    x: float,
    y: float,
    yaw: float,
    half: tuple[float, float],
    z: tuple[float, float],
    margin: float,
) -> np.ndarray:
    """Indices of the boxes (rows as :func:`cast_boxes` takes them) that an upright box
    (centre ``x, y``, ``yaw``, half sizes ``half``, from height ``z[0]`` to ``z[1]``)
    touches or comes within ``margin`` of: a separating-axis test on the ground plane, and
    the heights."""
    if not len(box):
        return np.zeros(0, dtype=np.int64)
    pose = np.array([x, y, math.cos(yaw), math.sin(yaw), half[0], half[1]])
    return _touch(box, pose, z[0] - margin, z[1] + margin, margin)


def _touch_loop(box: np.ndarray, pose: np.ndarray, low: float, high: float, margin: float):
    """The loop of :func:`touching_boxes` (compiled by numba where it is installed)."""
    x, y, c0, s0, h0, h1 = pose[0], pose[1], pose[2], pose[3], pose[4], pose[5]
    reach = math.hypot(h0, h1) + margin
    out, m = np.empty(len(box), np.int64), 0
    for k in range(len(box)):
        bx, by, c, s = box[k, 0], box[k, 1], box[k, 2], box[k, 3]
        hx, hy, z0, z1 = box[k, 4], box[k, 5], box[k, 6], box[k, 7]
        dx, dy = bx - x, by - y  # the box against the car's bounding circle first
        if abs(c * dx + s * dy) >= hx + reach or abs(c * dy - s * dx) >= hy + reach:
            continue
        if z0 >= high or z1 <= low:
            continue
        apart = False
        for ax, ay in ((c0, s0), (-s0, c0), (c, s), (-s, c)):  # separating axes
            extent = (
                h0 * abs(ax * c0 + ay * s0)
                + h1 * abs(ay * c0 - ax * s0)
                + hx * abs(ax * c + ay * s)
                + hy * abs(ay * c - ax * s)
            )
            if abs(ax * dx + ay * dy) > extent + margin:
                apart = True
                break
        if not apart:
            out[m], m = k, m + 1
    return out[:m]


def _jit(fn):
    """numba.njit with an on-disk cache (compiling takes seconds); without the cache where
    no cache directory is writable."""
    try:
        return numba.njit(cache=True, nogil=True)(fn)
    except RuntimeError:
        return numba.njit(nogil=True)(fn)


_cast_compiled = _jit(_cast_one_origin) if numba is not None else None
_sweep = _jit(_sweep_loop) if numba is not None else None
_touch = _jit(_touch_loop) if numba is not None else _touch_loop
