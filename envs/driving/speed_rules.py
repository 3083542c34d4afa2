"""Speed rules of the driving env: speeding over the lane's limit, and CARLA Leaderboard
2.0's minimum-speed test.

* **Speeding**: every step the car is faster than its lane's limit plus
  ``speed_tolerance`` adds to the time and distance driven too fast; each excursion
  above the limit is one ``speeding`` event. The leaderboard reports the share of the
  route driven too fast and speeding events per km; CARLA has no speeding coefficient,
  so it does not change the Driving Score.
* **Minimum speed** (CARLA's ``MinimumSpeedRouteTest``): the route is cut into
  ``min_speed_checkpoints`` equal stretches; over each stretch the car's mean speed is
  compared with the mean speed of the other vehicles over the same steps. A stretch where
  the car was slower gives a ``min_speed`` event with the percentage (car / traffic × 100);
  the Driving Score multiplies by ``1 − 0.3 · (1 − percentage / 100)`` for each
  (:data:`pilot.eval.driving.MIN_SPEED_PENALTY`). Stretches without traffic are not judged.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np

from .infractions import record

if TYPE_CHECKING:
    from .config import DrivingConfig
    from .episode import EpisodeState
    from .routes import Route


@dataclasses.dataclass
class SpeedLog:
    """The speed rules' running state (part of the episode state, copied with it)."""

    speeding: bool = False  # above the limit on the last step
    speeding_time: float = 0.0
    speeding_distance: float = 0.0
    checkpoint: int = 0  # stretches of the route judged so far
    ego_speed_sum: float = 0.0  # over this stretch's steps with traffic
    traffic_speed_sum: float = 0.0
    points: int = 0
    percentages: list[float] = dataclasses.field(default_factory=list)

    def copy(self) -> SpeedLog:
        return dataclasses.replace(self, percentages=list(self.percentages))


def check_speed_rules(
    sim: EpisodeState,
    cfg: DrivingConfig,
    route: Route,
    limit: float,
    step_len: float,
    events: list[dict[str, Any]],
) -> None:
    """Account this step (after the move and the outcome) for speeding and minimum speed."""
    log, v = sim.speed, sim.ego.v
    fast = v > limit + cfg.speed_tolerance
    if fast:
        log.speeding_time += cfg.dt
        log.speeding_distance += step_len
        if not log.speeding:
            record(sim, events, "speeding")
    log.speeding = fast

    active = sim.traffic.active
    if active.any():
        log.ego_speed_sum += v
        log.traffic_speed_sum += float(sim.traffic.v[active].mean())
        log.points += 1
    n = cfg.min_speed_checkpoints
    while log.checkpoint < n and sim.best_s >= stretch_end(route.length, n, log.checkpoint):
        _judge_stretch(sim, events)


def stretch_end(length: float, checkpoints: int, k: int) -> float:
    """Where stretch ``k`` of a route ``length`` metres long ends (the last a metre short
    of the end, where the route counts as completed)."""
    return min((k + 1) * (length / checkpoints), length - 1.0)


def stretch_percentage(ego_speed_sum: float, traffic_speed_sum: float) -> float | None:
    """The car's speed over a stretch as a percentage of the traffic's, if it was the
    slower (None: it was not, or there was no moving traffic to compare with)."""
    if traffic_speed_sum <= 0.0:
        return None
    percentage = round(100.0 * ego_speed_sum / traffic_speed_sum, 2)
    return percentage if percentage < 100.0 else None


def min_speed_percentages(
    progress: np.ndarray,
    speed: np.ndarray,
    traffic_speed: np.ndarray,
    length: float,
    checkpoints: int,
) -> list[float]:
    """The minimum-speed test's failed stretches, judged after the fact from one
    vehicle's steps: ``progress`` (metres along its path after each step), its
    ``speed`` and the ``traffic_speed`` (mean of the others; ``nan`` with none) at each.
    Gives what :func:`check_speed_rules` gives step by step, for a path whose ``length``
    is known only at its end (a traffic vehicle's trip, ``bench/min_speed_traffic.py``)."""
    ends = np.array([stretch_end(length, checkpoints, k) for k in range(checkpoints)])
    before = np.concatenate([[-np.inf], progress[:-1]])  # each step counts in the stretch
    stretch = np.searchsorted(ends, before, side="right")  # open when it began
    judged = int(np.searchsorted(ends, progress[-1], side="right")) if len(progress) else 0
    out = []
    for k in range(judged):
        steps = (stretch == k) & np.isfinite(traffic_speed)
        if steps.any():
            p = stretch_percentage(float(speed[steps].sum()), float(traffic_speed[steps].sum()))
            if p is not None:
                out.append(p)
    return out


def _judge_stretch(sim: EpisodeState, events: list[dict[str, Any]]) -> None:
    """Close the current stretch: a ``min_speed`` event if the car was the slower."""
    log = sim.speed
    percentage = stretch_percentage(log.ego_speed_sum, log.traffic_speed_sum)
    if log.points and percentage is not None:
        log.percentages.append(percentage)
        record(sim, events, "min_speed")
        events[-1]["percentage"] = percentage
    log.checkpoint += 1
    log.ego_speed_sum = log.traffic_speed_sum = 0.0
    log.points = 0
