"""The Driving Score of the CARLA Leaderboard 2.0, from a driving episode's final info.

Driving Score = Route Completion (%) × Infraction Penalty, where the penalty is the
product of one coefficient per infraction (pedestrian collision 0.50, vehicle collision
0.60, static collision 0.65, red light 0.70, stop sign 0.80, scenario timeout 0.70) and,
for driving outside lanes, ``1 − fraction of the route driven outside lanes``. Route
deviation and agent blocked end the route (Route Completion stops where they happened)
and carry no coefficient of their own. See https://leaderboard.carla.org/ (Leaderboard 2.0).

Leaderboard 2.0 also multiplies by its minimum-speed test (each stretch of the route where
the car was slower than the traffic around it). Bench2Drive (Jia et al. 2024) dropped that
factor from its Driving Score on 2024-08-19 and reports the pace on its own, so
:attr:`DrivingScore.driving_score_without_min_speed` gives the score by that rule too, from
the same route: it tells a car that breaks rules from one that keeps them but waits.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

#: Penalty coefficient per infraction (CARLA Leaderboard 2.0).
PENALTIES: dict[str, float] = {
    "collision_pedestrian": 0.50,
    "collision_vehicle": 0.60,
    "collision_static": 0.65,
    "red_light": 0.70,
    "stop_sign": 0.80,
    "timeout": 0.70,
}

#: The minimum-speed coefficient at 0 % of the traffic's speed (1 at 100 %).
MIN_SPEED_PENALTY = 0.70

#: Infractions counted in "infractions per km" (outside-lane driving is a fraction instead).
COUNTED = (*PENALTIES, "min_speed", "speeding", "route_deviation", "agent_blocked")


@dataclasses.dataclass(frozen=True)
class DrivingScore:
    """One route's scores. Percentages are 0..100."""

    driving_score: float
    route_completion: float
    infraction_penalty: float
    outside_lane_fraction: float
    speeding_fraction: float  # share of the route's metres driven above the limit
    km: float  # kilometres of the route completed
    route_length: float  # metres of the whole route
    counts: dict[str, int]
    per_km: dict[str, float]  # each counted infraction per km of route completed
    infractions_per_km: float  # all counted infractions per km

    @property
    def driving_score_without_min_speed(self) -> float:
        """Route Completion × every coefficient but the minimum-speed test's (Bench2Drive)."""
        return self.route_completion * rules_penalty(self.counts or {}, self.outside_lane_fraction)


def rules_penalty(counts: Mapping[str, int], outside_fraction: float) -> float:
    """The penalty of the infractions with a fixed coefficient and of driving outside
    lanes (``outside_fraction`` of the route), the minimum-speed test left out."""
    prod = math.prod(PENALTIES[k] ** int(counts.get(k, 0)) for k in PENALTIES)
    return prod * (1.0 - outside_fraction)


def driving_score(
    route_completion: float,
    counts: Mapping[str, int],
    route_length: float,
    outside_lane_distance: float = 0.0,
    timed_out: bool = False,
    min_speed_percentages: Sequence[float] = (),
    speeding_distance: float = 0.0,
) -> DrivingScore:
    """Score one route.

    ``route_completion`` is a fraction (0..1); ``counts`` maps infraction names (those of
    :data:`PENALTIES` and ``route_deviation`` / ``agent_blocked``; others are ignored) to
    how often they happened; ``outside_lane_distance`` is the metres driven outside lanes;
    ``timed_out`` adds one scenario timeout (the route did not finish in time);
    ``min_speed_percentages`` are the minimum-speed test's failed stretches (each one
    counts as a ``min_speed`` infraction, whatever ``counts`` says); ``speeding_distance``
    is the metres driven above the limit.
    """
    if not 0.0 <= route_completion <= 1.0 + 1e-9:
        raise ValueError(f"route_completion must be a fraction in [0, 1], got {route_completion}")
    if route_length <= 0:
        raise ValueError("route_length must be positive")
    counts = {k: int(counts.get(k, 0)) for k in COUNTED}
    if timed_out:
        counts["timeout"] += 1
    counts["min_speed"] = len(min_speed_percentages)
    outside = min(max(outside_lane_distance / route_length, 0.0), 1.0)
    penalty = rules_penalty(counts, outside)
    for p in min_speed_percentages:
        penalty *= 1.0 - (1.0 - MIN_SPEED_PENALTY) * (1.0 - min(max(p, 0.0), 100.0) / 100.0)
    rc = 100.0 * min(route_completion, 1.0)
    km = route_length * min(route_completion, 1.0) / 1000.0
    per_km = {k: _per_km(n, km) for k, n in counts.items()}
    return DrivingScore(
        driving_score=rc * penalty,
        route_completion=rc,
        infraction_penalty=penalty,
        outside_lane_fraction=outside,
        speeding_fraction=min(max(speeding_distance / route_length, 0.0), 1.0),
        km=km,
        route_length=float(route_length),
        counts=counts,
        per_km=per_km,
        infractions_per_km=_per_km(sum(counts.values()), km),
    )


def _per_km(n: int, km: float) -> float:
    """``n`` infractions over ``km`` kilometres: 0 without infractions, inf over 0 km."""
    if n == 0:
        return 0.0
    return n / km if km > 0 else math.inf


def episode_score(final_info: Mapping[str, Any], truncated: bool = False) -> DrivingScore:
    """Score a driving episode from its last ``info`` (``pilot/Driving-*`` envs). A
    ``truncated`` episode that did not complete its route counts as a timeout."""
    completed = bool(final_info.get("is_success", False))
    return driving_score(
        route_completion=float(final_info["route_completion"]),
        counts=final_info["infraction_counts"],
        route_length=float(final_info["route_length"]),
        outside_lane_distance=float(final_info.get("outside_lane_distance", 0.0)),
        timed_out=truncated and not completed,
        min_speed_percentages=final_info.get("min_speed_percentages", ()),
        speeding_distance=float(final_info.get("speeding_distance", 0.0)),
    )


def mean_scores(scores: list[DrivingScore]) -> dict[str, float]:
    """Leaderboard-style aggregate over routes: mean Driving Score (and without the
    minimum-speed test), Route Completion and Infraction Penalty, and infractions per km
    over all kilometres driven."""
    if not scores:
        raise ValueError("no scores to aggregate")
    km = sum(s.km for s in scores)
    total = sum(sum(s.counts.values()) for s in scores)
    n = len(scores)
    return {
        "driving_score": sum(s.driving_score for s in scores) / n,
        "driving_score_without_min_speed": sum(s.driving_score_without_min_speed for s in scores)
        / n,
        "route_completion": sum(s.route_completion for s in scores) / n,
        "infraction_penalty": sum(s.infraction_penalty for s in scores) / n,
        "infractions_per_km": _per_km(total, km),
    }
