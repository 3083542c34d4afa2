"""Path trackers: turn a reference path into speed and curvature commands.

Every tracker answers ``control(state, reference) -> Control(speed, curvature)`` for a
robot at ``state = (x, y, yaw)`` (its reference point: a unicycle's centre, a bicycle's
rear axle). Speed and curvature suit any car-like or differential-drive robot: a unicycle
turns at ``ω = v·κ`` (:func:`unicycle_command`), a kinematic bicycle steers
``δ = atan(L·κ)`` (:func:`bicycle_command`). Trackers remember how far along the path the
robot is (so a figure-eight's crossing is not mistaken for the other branch); call
``reset()`` before a new run. They drive forwards: split a path with direction changes
(hybrid A*'s cusps) into forward and backward pieces first.

* :class:`PurePursuit` — Coulter 1992: steer on the arc through a point one look-ahead
  distance away on the path.
* :class:`Stanley` — Thrun et al. 2006 (the DARPA Grand Challenge's "Stanley"): front
  wheel angle = heading error + ``atan(k·e / (k_soft + v))`` for the cross-track error
  ``e`` measured at the front axle.
* :class:`MPC` — a linear model-predictive controller on the path-error dynamics: the
  predicted lateral and heading errors over a horizon, linearised around the path's
  curvature ahead; the unconstrained quadratic programme is solved exactly by a backward
  Riccati recursion each step and the first curvature command is saturated.

Also here: the two robot models (exact integration over one step) used to simulate them.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from pilot.errors import UserError


# --------------------------------------------------------------------------- robots
def unicycle_step(state: np.ndarray, speed: float, omega: float, dt: float) -> np.ndarray:
    """Differential drive / unicycle: move ``dt`` seconds at ``speed`` and turn rate
    ``omega`` (exact arc, so the model adds no error of its own)."""
    x, y, yaw = (float(v) for v in state[:3])
    if abs(omega) < 1e-12:
        return np.array([x + speed * dt * math.cos(yaw), y + speed * dt * math.sin(yaw), yaw])
    new_yaw = yaw + omega * dt
    r = speed / omega
    return np.array(
        [
            x + r * (math.sin(new_yaw) - math.sin(yaw)),
            y - r * (math.cos(new_yaw) - math.cos(yaw)),
            _wrap(new_yaw),
        ]
    )


def bicycle_step(
    state: np.ndarray, speed: float, steer: float, wheelbase: float, dt: float
) -> np.ndarray:
    """Kinematic bicycle about the rear axle: yaw rate ``v·tan(δ)/L``."""
    return unicycle_step(state, speed, speed * math.tan(steer) / wheelbase, dt)


def unicycle_command(control: Control) -> tuple[float, float]:
    """(speed, turn rate) for a unicycle."""
    return control.speed, control.speed * control.curvature


def bicycle_command(control: Control, wheelbase: float, max_steer: float) -> tuple[float, float]:
    """(speed, steering angle) for a kinematic bicycle, the angle clipped to ``max_steer``."""
    steer = math.atan(wheelbase * control.curvature)
    return control.speed, float(np.clip(steer, -max_steer, max_steer))


# ------------------------------------------------------------------------ reference
@dataclasses.dataclass(frozen=True, eq=False)
class Reference:
    """A path prepared for tracking: points, arc length, tangent heading and curvature.

    Build with :meth:`from_points`; ``closed`` paths (a circle, a figure-eight) wrap
    around instead of ending.
    """

    points: np.ndarray  # (N, 2)
    s: np.ndarray  # (N,) arc length at each point
    yaw: np.ndarray  # (N,) tangent heading
    curvature: np.ndarray  # (N,) signed curvature (left turns positive)
    closed: bool
    length: float

    @classmethod
    def from_points(cls, points: np.ndarray, closed: bool = False) -> Reference:
        """Geometry from a dense polyline (spacing well below the look-ahead distances).

        Derivatives are taken against arc length by central differences (wrapping
        around when ``closed``); MPC previews the curvature ahead from them.
        """
        p = np.asarray(points, dtype=float)
        if p.ndim != 2 or p.shape[1] < 2 or len(p) < 3:
            raise UserError(f"a reference path needs (N ≥ 3, 2) points, got shape {p.shape}")
        p = p[:, :2]
        if closed and np.allclose(p[0], p[-1]):
            p = p[:-1]
        seg = np.hypot(*np.diff(np.vstack([p, p[:1]]) if closed else p, axis=0).T)
        if np.any(seg <= 0):
            raise UserError("a reference path must not repeat a point")
        s = np.concatenate([[0.0], np.cumsum(seg)])
        length = float(s[-1])
        s = s[: len(p)]
        if closed:
            prev, nxt = np.roll(p, 1, axis=0), np.roll(p, -1, axis=0)
            ds_prev, ds_next = np.roll(seg, 1), seg
        else:
            prev = np.vstack([p[:1], p[:-1]])
            nxt = np.vstack([p[1:], p[-1:]])
            ds_prev = np.concatenate([[0.0], seg])
            ds_next = np.concatenate([seg, [0.0]])
        d1 = (nxt - prev) / (ds_prev + ds_next)[:, None]
        yaw = np.arctan2(d1[:, 1], d1[:, 0])
        # curvature = d(yaw)/ds by the same central differences
        yaw_prev, yaw_next = (
            (np.roll(yaw, 1), np.roll(yaw, -1))
            if closed
            else (
                np.concatenate([yaw[:1], yaw[:-1]]),
                np.concatenate([yaw[1:], yaw[-1:]]),
            )
        )
        curvature = _wrap(yaw_next - yaw_prev) / (ds_prev + ds_next)
        return cls(p, s, yaw, curvature, closed, length)

    def __len__(self) -> int:
        return len(self.points)

    def index(self, i: int) -> int:
        """Point index ``i`` wrapped (closed) or clipped (open)."""
        n = len(self.points)
        return i % n if self.closed else min(max(i, 0), n - 1)

    def nearest(self, xy: np.ndarray, hint: int | None, window: int) -> int:
        """Index of the nearest point, searched from ``hint - window/8`` to ``hint + window``
        (everywhere when ``hint`` is None)."""
        if hint is None:
            idx = np.arange(len(self.points))
        else:
            idx = np.arange(hint - window // 8, hint + window + 1)
            idx = idx % len(self.points) if self.closed else np.clip(idx, 0, len(self.points) - 1)
        d = np.sum((self.points[idx] - xy) ** 2, axis=1)
        return int(idx[int(np.argmin(d))])

    def errors(self, xy: np.ndarray, yaw: float, i: int) -> tuple[float, float]:
        """(lateral error, heading error) against point ``i``: lateral > 0 when the robot
        is left of the path, heading > 0 when it points left of the tangent."""
        t = np.array([math.cos(self.yaw[i]), math.sin(self.yaw[i])])
        d = xy - self.points[i]
        return float(t[0] * d[1] - t[1] * d[0]), float(_wrap(yaw - self.yaw[i]))

    def ahead(self, i: int, distances: np.ndarray) -> np.ndarray:
        """Indices of the points ``distances`` further along the path than point ``i``
        (wrapping around a closed path, stopping at the end of an open one)."""
        target = self.s[i] + np.asarray(distances, dtype=float)
        if self.closed:
            target = target % self.length
        j = np.searchsorted(self.s, target)
        return j % len(self.points) if self.closed else np.minimum(j, len(self.points) - 1)

    def remaining(self, i: int) -> float:
        """Arc length left to the end (``inf`` for closed paths)."""
        return math.inf if self.closed else float(self.s[-1] - self.s[i])


@dataclasses.dataclass(frozen=True)
class Control:
    """Speed (m/s) and path curvature (1/m, left positive) to drive next."""

    speed: float
    curvature: float


def cross_track_error(reference: Reference, xy: np.ndarray) -> float:
    """Distance from ``xy`` to the reference polyline (exact per segment, all of them)."""
    p = reference.points
    q = np.vstack([p[1:], p[:1]]) if reference.closed else p[1:]
    a = p if reference.closed else p[:-1]
    d = q - a
    t = np.clip(np.sum((xy - a) * d, axis=1) / np.sum(d * d, axis=1), 0.0, 1.0)
    return float(np.min(np.hypot(*(a + t[:, None] * d - xy).T)))


class _Tracker:
    """Shared bookkeeping: progress along the path and the speed profile."""

    def __init__(self, speed: float, max_curvature: float, decel: float, window: int) -> None:
        if speed <= 0 or max_curvature <= 0 or decel <= 0:
            raise UserError("speed, max_curvature and decel must be positive")
        self.speed = float(speed)
        self.max_curvature = float(max_curvature)
        self.decel = float(decel)
        self.window = int(window)
        self._index: int | None = None

    def reset(self) -> None:
        """Forget the progress along the path (call before a new run)."""
        self._index = None

    def _progress(self, reference: Reference, xy: np.ndarray) -> int:
        self._index = reference.nearest(xy, self._index, self.window)
        return self._index

    def _speed(self, reference: Reference, i: int) -> float:
        # slow down to stop at the end of an open path: v² = 2·a·d
        return min(self.speed, math.sqrt(2.0 * self.decel * reference.remaining(i)))

    def _clip(self, kappa: float) -> float:
        return float(np.clip(kappa, -self.max_curvature, self.max_curvature))


class PurePursuit(_Tracker):
    """Pure pursuit (Coulter 1992) with look-ahead ``lookahead + lookahead_gain·v`` metres."""

    def __init__(
        self,
        lookahead: float = 1.0,
        speed: float = 1.0,
        lookahead_gain: float = 0.0,
        max_curvature: float = 2.0,
        decel: float = 1.0,
        window: int = 200,
    ) -> None:
        super().__init__(speed, max_curvature, decel, window)
        if lookahead <= 0:
            raise UserError("lookahead must be positive")
        self.lookahead = float(lookahead)
        self.lookahead_gain = float(lookahead_gain)

    def control(self, state: np.ndarray, reference: Reference) -> Control:
        xy, yaw = np.asarray(state[:2], dtype=float), float(state[2])
        i = self._progress(reference, xy)
        v = self._speed(reference, i)
        ld = self.lookahead + self.lookahead_gain * v
        # first point ahead of the projection that is at least ld away from the robot
        j = i
        n = len(reference)
        chunk = 64
        for start in range(0, n, chunk):
            idx = np.arange(i + start, i + start + chunk)
            idx = idx % n if reference.closed else idx[idx < n]
            if len(idx) == 0:
                break
            far = np.nonzero(np.sum((reference.points[idx] - xy) ** 2, axis=1) >= ld * ld)[0]
            j = int(idx[far[0]]) if len(far) else int(idx[-1])
            if len(far) or (not reference.closed and idx[-1] == n - 1):
                break
        dx, dy = reference.points[j] - xy
        dist = math.hypot(dx, dy)
        if dist < 1e-9:
            return Control(v, 0.0)
        alpha = _wrap(math.atan2(dy, dx) - yaw)
        return Control(v, self._clip(2.0 * math.sin(alpha) / dist))


class Stanley(_Tracker):
    """Stanley steering (Thrun et al. 2006) for a robot with wheelbase ``wheelbase``
    (a unicycle uses a virtual front point that far ahead)."""

    def __init__(
        self,
        gain: float = 2.0,
        speed: float = 1.0,
        wheelbase: float = 0.3,
        softening: float = 0.5,
        max_curvature: float = 2.0,
        decel: float = 1.0,
        window: int = 200,
    ) -> None:
        super().__init__(speed, max_curvature, decel, window)
        if wheelbase <= 0 or gain <= 0:
            raise UserError("wheelbase and gain must be positive")
        self.gain = float(gain)
        self.wheelbase = float(wheelbase)
        self.softening = float(softening)

    def control(self, state: np.ndarray, reference: Reference) -> Control:
        xy, yaw = np.asarray(state[:2], dtype=float), float(state[2])
        front = xy + self.wheelbase * np.array([math.cos(yaw), math.sin(yaw)])
        i = self._progress(reference, front)
        v = self._speed(reference, i)
        e, heading = reference.errors(front, yaw, i)
        # On a circle the heading error at the front axle settles at -asin(L·κ), so this
        # law already steers the curvature's angle there with e = 0 (no feed-forward).
        steer = -heading - math.atan2(self.gain * e, self.softening + v)
        steer = float(np.clip(steer, -1.4, 1.4))
        return Control(v, self._clip(math.tan(steer) / self.wheelbase))


class MPC(_Tracker):
    """Linear MPC on the lateral / heading errors over ``horizon`` steps of ``dt``.

    Model (small errors, speed v, path curvature κ_r ahead, command κ):
    ``e_lat' = e_lat + v·dt·e_yaw`` and
    ``e_yaw' = e_yaw + v·dt·(κ − κ_r) − v·dt·κ_r²·e_lat``. Cost: Σ ``q_lat·e_lat² +
    q_yaw·e_yaw² + r·(κ − κ_r)²`` plus a terminal cost, minimised exactly by a backward
    Riccati recursion each call; the first command is applied (receding horizon).
    """

    def __init__(
        self,
        horizon: int = 20,
        dt: float = 0.1,
        speed: float = 1.0,
        q_lat: float = 10.0,
        q_yaw: float = 1.0,
        r: float = 0.5,
        max_curvature: float = 2.0,
        decel: float = 1.0,
        window: int = 200,
    ) -> None:
        super().__init__(speed, max_curvature, decel, window)
        if horizon < 1 or dt <= 0 or min(q_lat, q_yaw, r) < 0 or r == 0:
            raise UserError("MPC needs horizon ≥ 1, dt > 0, costs ≥ 0 and r > 0")
        self.horizon = int(horizon)
        self.dt = float(dt)
        self.q = np.diag([q_lat, q_yaw])
        self.r = float(r)

    def control(self, state: np.ndarray, reference: Reference) -> Control:
        xy, yaw = np.asarray(state[:2], dtype=float), float(state[2])
        i = self._progress(reference, xy)
        v = self._speed(reference, i)
        e = np.array(reference.errors(xy, yaw, i))
        h = v * self.dt
        # path curvature the robot will meet at each step of the horizon
        kr = reference.curvature[reference.ahead(i, h * np.arange(self.horizon))].tolist()
        # Riccati recursion written out for the 2×2 case (A = [[1, h], [c, 1]], B = [0, h]):
        # K = (r + BᵀPB)⁻¹ BᵀPA,  P ← Q + AᵀPA − AᵀPB·K
        q1, q2 = float(self.q[0, 0]), float(self.q[1, 1])
        p11, p12, p22 = q1, 0.0, q2  # terminal cost
        g1 = g2 = 0.0
        for k in range(self.horizon - 1, -1, -1):
            c = -h * kr[k] ** 2
            w1, w2 = h * (p12 + p22 * c), h * (p12 * h + p22)  # AᵀPB = (BᵀPA)ᵀ
            den = self.r + p22 * h * h
            g1, g2 = w1 / den, w2 / den
            m11, m12 = p11 + p12 * c, p11 * h + p12  # M = P·A
            m21, m22 = p12 + p22 * c, p12 * h + p22
            p11 = q1 + m11 + c * m21 - w1 * g1
            p12 = m12 + c * m22 - w1 * g2
            p22 = q2 + h * m12 + m22 - w2 * g2
        u = -(g1 * e[0] + g2 * e[1])
        return Control(v, self._clip(kr[0] + u))


def track(
    tracker: PurePursuit | Stanley | MPC,
    reference: Reference,
    start: np.ndarray,
    dt: float,
    steps: int,
    robot: str = "unicycle",
    wheelbase: float = 0.5,
    max_steer: float = math.radians(35.0),
) -> np.ndarray:
    """Simulate ``tracker`` driving a ``'unicycle'`` or ``'bicycle'`` along ``reference``
    for ``steps`` steps of ``dt``; returns the (steps + 1, 3) states. For tests and demos."""
    if robot not in ("unicycle", "bicycle"):
        raise UserError(f"robot must be 'unicycle' or 'bicycle', got {robot!r}")
    tracker.reset()
    states = [np.asarray(start, dtype=float)[:3]]
    for _ in range(steps):
        c = tracker.control(states[-1], reference)
        if robot == "unicycle":
            v, w = unicycle_command(c)
            states.append(unicycle_step(states[-1], v, w, dt))
        else:
            v, steer = bicycle_command(c, wheelbase, max_steer)
            states.append(bicycle_step(states[-1], v, steer, wheelbase, dt))
    return np.array(states)


def _wrap(a):
    return (a + math.pi) % (2.0 * math.pi) - math.pi
