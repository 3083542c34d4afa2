"""The driving env's reward: named terms, each ``weight × raw value``, summed in order.

The raw values are measured on one step, from where the car was before it
(:class:`~.episode.StepStart`) to where it is now; ``info["reward_terms"]`` carries the
weighted terms so a reader sees what the reward was made of.

Speeding never pays: progress is paid only up to the distance the cruise speed (the
target speed within the lane's limit) covers in a step, so above it the speed term's cost
is all that changes, and the best steady speed is the target itself. (Paid per metre
without a cap, 0.1 per metre against a speed cost of 0.05 × relative error, a car gained
0.005 per step for every m/s above a 10 m/s target: trained lane keepers drove 16 m/s.)

``speed_change`` is potential-based shaping (Ng, Harada & Russell 1999) with the potential
``-|v - v_target| / v_cruise``: it pays for closing the gap to the target speed on this
step and sums over an episode to the change of the potential, so it cannot be farmed (it
is exactly potential-based for an undiscounted return, ``F = Φ(s') − Φ(s)``; PPO's
γ = 0.99 makes it nearly so). It is there for credit: the pedal moves the speed over
seconds, and without it PPO's per-step signal for the pedal drowned in noise (one pedal
for every state, 14.5 m/s against 10 after 49k steps of state-only training; with it
10.9 m/s).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from pilot.config import field

if TYPE_CHECKING:
    from .config import DrivingConfig
    from .episode import EpisodeState, StepStart
    from .roads import LanePoint

#: Names of the reward terms, in the order they are summed.
REWARD_TERMS = (
    "progress",
    "speed",
    "speed_change",
    "centring",
    "comfort",
    "collision",
    "off_road",
)


@dataclasses.dataclass(frozen=True)
class RewardWeights:
    """Weights of the named reward terms; each term is ``weight × raw value``. Raw values:
    metres of route progress this step, at most what the cruise speed covers in it;
    ``-|v - v_target| / v_target``; the decrease of ``|v - v_target| / v_target`` this step; ``-|lane offset|
    / half lane width`` (capped at 1); ``-(|Δ acceleration| / range + |Δ steering| /
    range)``; -1 per new collision; -1 per step off the road."""

    progress: float = field(0.1, "reward per metre of progress along the route")
    speed: float = field(0.05, "cost of missing the target speed (relative error)")
    speed_change: float = field(
        2.0, "reward for closing the gap to the target speed this step (shaping)"
    )
    centring: float = field(0.05, "cost of the offset from the lane's centre line")
    comfort: float = field(0.02, "cost of changes of acceleration and steering (jerk)")
    collision: float = field(10.0, "cost of a collision")
    off_road: float = field(1.0, "cost of every step with the car's centre off the road")


def reward_terms(
    cfg: DrivingConfig,
    sim: EpisodeState,
    start: StepStart,
    lane: LanePoint,
    target: float,
    limit: float,
    collisions: int,
) -> dict[str, float]:
    """The weighted terms of this step: ``sim`` is the episode after the move, ``start``
    the car before it, ``target`` the speed asked for now and ``limit`` the lane's speed
    limit; ``collisions`` counts the bodies the car touched this step and not the last."""
    ego = sim.ego
    cruise = min(cfg.target_speed, limit)
    raw = {
        "progress": min(sim.route_s - start.route_s, cruise * cfg.dt),
        "speed": -abs(ego.v - target) / max(cruise, 1.0),
        "speed_change": (abs(start.v - target) - abs(ego.v - target)) / max(cruise, 1.0),
        "centring": -min(abs(lane.lateral) / (0.5 * cfg.lane_width), 1.0),
        "comfort": -(
            abs(ego.accel - start.accel) / (cfg.max_accel + cfg.max_brake)
            + abs(ego.steer - start.steer) / (2 * cfg.max_steer)
        ),
        "collision": -float(collisions),
        "off_road": -float(not lane.on_road),
    }
    w = cfg.weights
    return {k: getattr(w, k) * raw[k] for k in REWARD_TERMS}
