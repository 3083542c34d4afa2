"""A procedurally generated town: a slightly irregular grid of junctions, long routes
across it, and the clutter along its blocks.

:func:`town` lays out 3×3, 4×3 or 3×4 blocks of 150–250 m (junctions jittered by a few
metres, a few street links left out) and builds the :class:`~.roads.RoadNetwork`:

* one row and one column of the grid are arterials, two lanes each way; the others are
  streets, one lane each way. An arterial approach offers a choice of lanes at a junction:
  the left lane turns left or goes straight on, the right lane goes straight on or turns
  right (a single lane does all three); no U-turns.
* every junction (three or four arms) has either traffic lights, one per approach with its
  own protected phase in turn (as in :func:`.layouts.intersection`), or an all-way stop with a
  :class:`~.roads.StopSign` per approach; junctions on an arterial always have lights. The
  grid's corners are bends, with neither.
* connector lanes (``kind == "junction"``) for every movement, drawn by
  :func:`.layouts.connector`; their speed limit keeps the lateral acceleration of a turn
  near 2.5 m/s².
* a crosswalk across every arm of every junction, between the stop line and the junction,
  and the junction paved between its connectors (the network's ``surfaces``).

Every lane leads on to another and the grid is connected, so traffic never piles up at a
dead end (the network has no sources or sinks). :func:`town_route` draws a route of about
the asked length through the lane graph, preferring junctions it has not been through, and
:func:`town_clutter` the buildings, trees, lamps, fences, parked cars and sign and light
poles along the blocks, all off the road.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy.spatial import ConvexHull

from .clutter import BUILDINGS, KIND, KINDS, PARKED, Clutter
from .layouts import connector, min_turn_radius
from .roads import Lane, RoadNetwork, StopSign, TrafficLight
from .routes import Route, build_route
from .signals import beside_line

ARTERIAL, STREET = 2, 1  # lanes per direction
JITTER = 6.0  # metres a junction may sit off its grid position
CORNER = 2.0  # junction box: metres past the crossing road's kerb
BEND = 8.0  # extra room at the grid's corners, for a wider curve
CROSSWALK = 4.0  # from the junction box to the stop line; the crosswalk lies between
TURN_ACCEL = 2.5  # lateral acceleration (m/s²) a turn's speed limit allows
STREET_SPEED = 0.75  # a street's limit over an arterial's


@dataclasses.dataclass(frozen=True)
class Arm:
    """A road leaving junction ``node`` towards ``other``: unit direction, lanes each way,
    and the distance from the junction's centre to the stop line."""

    node: int
    other: int
    d: np.ndarray
    lanes: int
    stop: float


@dataclasses.dataclass
class Town:
    """A town's network and the layout the rest of the scenario needs."""

    net: RoadNetwork
    nodes: np.ndarray  # (n, 2) junction centres
    control: tuple[str, ...]  # per junction: "lights", "stop" or "bend"
    lane_node: np.ndarray  # per lane: the junction a connector crosses or a road reaches
    arms: dict[tuple[int, int], Arm]  # (junction, neighbour) -> the arm between them
    lane_width: float


def town(rng: np.random.Generator, lane_width: float = 3.5, speed_limit: float = 14.0) -> Town:
    """A new town drawn from ``rng`` (see the module docstring); ``speed_limit`` is the
    arterials' limit, streets get :data:`STREET_SPEED` of it."""
    bx, by = [(3, 3), (4, 3), (3, 4)][int(rng.integers(3))]
    xs = np.concatenate([[0.0], np.cumsum(rng.uniform(150.0, 250.0, bx))])
    ys = np.concatenate([[0.0], np.cumsum(rng.uniform(150.0, 250.0, by))])
    nx, ny = bx + 1, by + 1
    nodes = np.array([(x, y) for y in ys for x in xs]) + rng.uniform(-JITTER, JITTER, (nx * ny, 2))
    col, row = int(rng.integers(1, nx - 1)), int(rng.integers(1, ny - 1))
    edges: dict[tuple[int, int], int] = {}  # (a, b), a < b -> lanes each way
    for j in range(ny):
        for i in range(nx):
            n = j * nx + i
            if i + 1 < nx:
                edges[(n, n + 1)] = ARTERIAL if j == row else STREET
            if j + 1 < ny:
                edges[(n, n + nx)] = ARTERIAL if i == col else STREET
    _drop_links(edges, nx * ny, rng)
    arms = _arms(nodes, edges, lane_width)
    control = []
    for n in range(len(nodes)):
        mine = [a for a in arms.values() if a.node == n]
        if len(mine) == 2:
            control.append("bend")
        elif any(a.lanes == ARTERIAL for a in mine) or rng.random() < 0.25:
            control.append("lights")
        else:
            control.append("stop")
    net, lane_node = _network(nodes, arms, control, lane_width, speed_limit, rng)
    return Town(net, nodes, tuple(control), lane_node, arms, lane_width)


def _drop_links(edges: dict[tuple[int, int], int], n: int, rng: np.random.Generator) -> None:
    """Leave out up to two street links between four-way junctions (each becomes a T),
    keeping the grid connected."""

    def degree(k: int) -> int:
        return sum(k in e for e in edges)

    candidates = [e for e, lanes in edges.items() if lanes == STREET]
    for e in [candidates[i] for i in rng.permutation(len(candidates))][: int(rng.integers(0, 3))]:
        if degree(e[0]) == 4 and degree(e[1]) == 4:
            lanes = edges.pop(e)
            if not _connected(edges, n):
                edges[e] = lanes


def _connected(edges: dict[tuple[int, int], int], n: int) -> bool:
    seen, todo = {0}, [0]
    while todo:
        k = todo.pop()
        for a, b in edges:
            for u, v in ((a, b), (b, a)):
                if u == k and v not in seen:
                    seen.add(v)
                    todo.append(v)
    return len(seen) == n


def _arms(
    nodes: np.ndarray, edges: dict[tuple[int, int], int], lane_width: float
) -> dict[tuple[int, int], Arm]:
    """Both arms of every link, with stop lines clear of the crossing roads (farther out
    at bends, for a wider curve)."""
    raw: dict[int, list[tuple[int, np.ndarray, int]]] = {k: [] for k in range(len(nodes))}
    for (a, b), lanes in edges.items():
        d = nodes[b] - nodes[a]
        d /= np.linalg.norm(d)
        raw[a].append((b, d, lanes))
        raw[b].append((a, -d, lanes))
    arms = {}
    for k, mine in raw.items():
        for other, d, lanes in mine:
            crossing = [m for o, e, m in mine if o != other and abs(float(d @ e)) < 0.7]
            box = max(crossing, default=STREET) * lane_width + CORNER
            box += BEND if len(mine) == 2 else 0.0
            arms[(k, other)] = Arm(k, other, d, lanes, box + CROSSWALK)
    return arms


def _left(d: np.ndarray) -> np.ndarray:
    return np.array([-d[1], d[0]])


def _network(
    nodes: np.ndarray,
    arms: dict[tuple[int, int], Arm],
    control: list[str],
    lw: float,
    speed_limit: float,
    rng: np.random.Generator,
) -> tuple[RoadNetwork, np.ndarray]:
    """Road lanes on every arm, connectors at every junction, lights, stop signs and
    crosswalks."""
    spec: list[dict] = []  # lane specs, turned into Lane objects at the end
    into: dict[tuple[int, int], list[int]] = {}  # (junction, neighbour) -> lanes arriving
    out_of: dict[tuple[int, int], list[int]] = {}  # (junction, neighbour) -> lanes leaving
    for (a, b), arm in arms.items():  # lanes from a to b, lane 0 beside the centre line
        back = arms[(b, a)]
        limit = speed_limit if arm.lanes == ARTERIAL else STREET_SPEED * speed_limit
        ids = []
        for i in range(arm.lanes):
            off = -_left(arm.d) * (i + 0.5) * lw  # right-hand traffic
            p0, p1 = nodes[a] + arm.d * arm.stop + off, nodes[b] + arm.d * -back.stop + off
            ids.append(len(spec))
            spec.append(dict(centre=np.array([p0, p1]), limit=limit, node=b, kind="road"))
        for i, lane in enumerate(ids):
            spec[lane]["left"] = ids[i - 1] if i > 0 else None
            spec[lane]["right"] = ids[i + 1] if i + 1 < len(ids) else None
            spec[lane]["succ"] = []
        out_of[(a, b)], into[(b, a)] = ids, ids
    lights: list[TrafficLight] = []
    signs: list[StopSign] = []
    crosswalks = []
    for k in range(len(nodes)):
        mine = sorted((a for a in arms.values() if a.node == k), key=_bearing)
        for arm in mine:
            _connect(spec, into[(k, arm.other)], arm, mine, out_of, k)
        if control[k] == "bend":
            continue
        _controls(mine, into, spec, nodes[k], lw, control[k], lights, signs, crosswalks, rng)
    lanes = [
        Lane(
            i, sp["centre"], lw, sp["limit"], sp["succ"], sp.get("left"), sp.get("right"),
            light=sp.get("light"), kind=sp["kind"], stop=sp.get("stop"),
        )
        for i, sp in enumerate(spec)
    ]  # fmt: skip
    node = np.array([sp["node"] for sp in spec], dtype=np.int64)
    surfaces = []  # each junction paved over, between its connectors
    for k in (k for k in range(len(nodes)) if control[k] != "bend"):
        edges = [
            b for ln in lanes if ln.kind == "junction" and node[ln.id] == k
            for b in (ln.left_boundary, ln.right_boundary)
        ]  # fmt: skip
        surfaces.append(_hull(np.concatenate(edges)))
    return RoadNetwork("town", lanes, lights, crosswalks, signs, surfaces), node


def _hull(points: np.ndarray) -> np.ndarray:
    """Convex hull, counter-clockwise from its lexicographically first vertex (Qhull's
    vertex order in 2-D is counter-clockwise; collinear points are not vertices)."""
    pts = np.round(points, 6)
    ring = pts[ConvexHull(pts).vertices]
    first = int(np.lexsort((ring[:, 1], ring[:, 0]))[0])
    return np.roll(ring, -first, axis=0)


def _bearing(arm: Arm) -> float:
    return math.atan2(arm.d[1], arm.d[0])


def _connect(spec, incoming, arm, mine, out_of, k) -> None:
    """Connectors from the lanes arriving on ``arm`` to every other arm: the left lane
    turns left or goes straight, the right lane straight or right (one lane: all)."""
    moves = {}
    for other in mine:
        if other is arm:
            continue
        v_in, v_out = -arm.d, other.d
        turn = math.atan2(v_in[0] * v_out[1] - v_in[1] * v_out[0], float(v_in @ v_out))
        move = "straight" if abs(turn) < 0.5 else ("left" if turn > 0 else "right")
        moves[move] = other
    n = len(incoming)
    for i, lane in enumerate(incoming):
        if n == 1:
            allowed = ("left", "straight", "right")
        else:
            allowed = {0: ("left", "straight"), n - 1: ("straight", "right")}.get(i, ("straight",))
        chosen = [m for m in allowed if m in moves] or [next(iter(moves))]
        for move in chosen:
            target = out_of[(k, moves[move].other)]
            j = {"left": 0, "right": len(target) - 1}.get(move, min(i, len(target) - 1))
            a, b = spec[lane], spec[target[j]]
            if move == "straight":
                pts = np.array([a["centre"][-1], b["centre"][0]])
                limit = min(a["limit"], b["limit"])
            else:
                pts = connector(
                    a["centre"][-1], a["centre"][-2], b["centre"][0], b["centre"][1], 2.0
                )
                bend = math.sqrt(TURN_ACCEL * min_turn_radius(pts))
                limit = min(0.75 * min(a["limit"], b["limit"]), max(bend, 3.0))
            a["succ"].append(len(spec))
            spec.append(dict(centre=pts, limit=limit, succ=[target[j]], node=k, kind="junction"))


def _controls(mine, into, spec, centre, lw, control, lights, signs, crosswalks, rng) -> None:
    """A light (protected phases in turn, like :func:`.layouts.intersection`) or a stop sign
    on every approach of junction ``centre``, and a crosswalk across every arm."""
    green = [10.0 if arm.lanes == ARTERIAL else 6.0 for arm in mine]
    yellow, all_red = 2.0, 1.0
    cycle = sum(g + yellow + all_red for g in green)
    offset = float(rng.uniform(0.0, cycle))
    start = 0.0
    for arm, g in zip(mine, green, strict=True):
        left = _left(arm.d)
        line = centre + arm.d * arm.stop
        stop_line = (tuple(line), tuple(line + left * arm.lanes * lw))
        heading = math.atan2(-arm.d[1], -arm.d[0])
        for lane in into[(arm.node, arm.other)]:
            key = "light" if control == "lights" else "stop"
            spec[lane][key] = len(lights) if control == "lights" else len(signs)
        if control == "lights":
            lights.append(
                TrafficLight(
                    len(lights), stop_line, heading, (start - offset) % cycle, g, yellow, cycle
                )
            )
        else:
            signs.append(StopSign(len(signs), stop_line, heading))
        start += g + yellow + all_red
        cw = centre + arm.d * (arm.stop - 0.5 * CROSSWALK)
        half = arm.lanes * lw + 2.0
        crosswalks.append((tuple(cw + left * half), tuple(cw - left * half)))


# ------------------------------------------------------------------------------- routes
def town_route(town: Town, rng: np.random.Generator, length: float) -> tuple[Route, float]:
    """A route of about ``length`` metres from a random point of a road lane, through
    random connectors (preferring junctions not yet passed), ending on a road lane at
    least 15 m from its ends; returns it and the start lane's ``s``."""
    net, node = town.net, town.lane_node
    road = [ln.id for ln in net.lanes if ln.kind == "road"]
    lane = net.lanes[road[int(rng.integers(len(road)))]]
    start = lane.id
    s_start = float(rng.uniform(10.0, lane.length - 40.0))
    chosen, total, seen = [], lane.length - s_start, {int(node[lane.id])}
    while total < length:
        fresh = [c for c in lane.successors if node[net.lanes[c].successors[0]] not in seen]
        options = fresh or list(lane.successors)
        via = net.lanes[options[int(rng.integers(len(options)))]]
        lane = net.lanes[via.successors[0]]
        chosen += [via.id, lane.id]
        seen.add(int(node[lane.id]))
        total += via.length + lane.length
    if chosen:  # end on the last road lane, clear of its ends
        end = min(max(lane.length - (total - length), 15.0), lane.length - 15.0)
        length = total - lane.length + end
    steps = iter(chosen)
    return build_route(net, rng, start, s_start, length, lambda ln: next(steps)), s_start


# ------------------------------------------------------------------------------- clutter
#: Side of a block: (weight, what lines it); "parked" only on streets.
_SIDES = (
    (0.45, ("buildings", "lamps")),
    (0.25, ("buildings", "trees", "parked")),
    (0.2, ("trees", "fence", "lamps")),
    (0.1, ("trees", "parked")),
)


def town_clutter(town: Town, rng: np.random.Generator) -> Clutter:
    """Buildings, trees, lamps, fences and parked cars along both sides of every link,
    and a pole under every light head and stop sign; every box clear of the road and of
    the junctions, and the buildings of two streets meeting at a corner clear of each
    other (they keep back from the corner by more than the deepest building)."""
    rows: list[tuple[int, float, float, float]] = []
    weights = np.array([w for w, _ in _SIDES])
    for (a, b), arm in sorted(town.arms.items()):
        if a > b:
            continue
        back = town.arms[(b, a)]
        length = float(np.linalg.norm(town.nodes[b] - town.nodes[a]))
        kerb = arm.lanes * town.lane_width
        for side in (1.0, -1.0):  # left, right of a -> b
            what = _SIDES[int(rng.choice(len(_SIDES), p=weights / weights.sum()))][1]
            frame = (town.nodes[a], arm.d, _left(arm.d) * side, side)
            lo, hi = arm.stop + 6.0, length - back.stop - 6.0
            if "parked" in what and arm.lanes == STREET:
                _row(rows, rng, frame, lo + 4, hi - 4, kerb + 1.25, (6.0, 9.0), PARKED, 0.3)
            if "lamps" in what:
                _row(rows, rng, frame, lo, hi, kerb + 2.8, (28.0, 36.0), (KIND["lamp"],), 0.0)
            if "trees" in what:
                _row(
                    rows, rng, frame, lo, hi, kerb + 4.2, (9.0, 14.0), (KIND["trunk"],), 0.15, True
                )
            if "fence" in what:
                _row(rows, rng, frame, lo, hi, kerb + 6.5, (12.0, 12.0), (KIND["fence"],), 0.1)
            if "buildings" in what:
                _buildings(rows, rng, frame, arm.stop + 24.0, length - back.stop - 24.0, kerb)
    return Clutter.of(rows + guard_poles(town.net, lights=True))


def guard_poles(net: RoadNetwork, lights: bool) -> list[tuple[int, float, float, float]]:
    """Clutter rows for a pole 1.5 m beyond the kerb end of every stop sign's line, with
    its red plate, and (``lights``) one under every traffic light's head."""
    guards = [(g, "sign_pole") for g in net.stop_signs]
    guards += [(g, "light_pole") for g in net.lights] if lights else []
    rows = []
    for guard, name in guards:
        x, y = beside_line(guard.stop_line)
        rows.append((KIND[name], x, y, guard.heading))
        if name == "sign_pole":
            rows.append((KIND["stop_plate"], x, y, guard.heading))
    return rows


def _row(rows, rng, frame, lo, hi, offset, gap, kinds, skip, crowned=False) -> None:
    """Boxes every ``gap`` (drawn) metres from ``lo`` to ``hi`` along a link, ``offset``
    metres out from its centre line, facing along it; each left out with chance ``skip``.
    (``lo + (hi - lo) * rng.random()`` is ``rng.uniform(lo, hi)``, draw for draw, and a
    draw among one kind takes nothing from the stream: the same towns, several times
    faster.)"""
    origin, d, out, side = frame
    yaw = math.atan2(d[1], d[0]) + (math.pi if side > 0 else 0.0)  # the near lane's way
    x0, y0 = float(origin[0] + out[0] * offset), float(origin[1] + out[1] * offset)
    dx, dy = float(d[0]), float(d[1])
    g0, g_span = gap[0], gap[1] - gap[0]
    draw = rng.random
    t = lo + g0 * draw()
    while t < hi:
        kind = kinds[int(rng.integers(len(kinds)))] if len(kinds) > 1 else kinds[0]
        if draw() >= skip:
            x, y = x0 + dx * t, y0 + dy * t
            rows.append((kind, x, y, yaw))
            if crowned:
                rows.append((KIND["crown"], x, y, yaw))
        t += g0 + g_span * draw()


def _buildings(rows, rng, frame, lo, hi, kerb) -> None:
    """A row of buildings set back 6.5–9 m from the kerb, fronts along the link."""
    origin, d, out, side = frame
    yaw = math.atan2(d[1], d[0])
    (ox, oy), (dx, dy), (nx, ny) = origin.tolist(), d.tolist(), out.tolist()
    draw = rng.random
    t = lo + 4.0 * draw()
    while True:
        kind = BUILDINGS[int(rng.integers(len(BUILDINGS)))]
        hx, hy, _ = KINDS[kind].half
        if t + 2 * hx > hi:
            break
        along, across = t + hx, kerb + (6.5 + 2.5 * draw()) + hy
        rows.append((kind, ox + dx * along + nx * across, oy + dy * along + ny * across, yaw))
        t += 2 * hx + (1.0 + 5.0 * draw())
