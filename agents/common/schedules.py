"""Schedules for learning rates, exploration and priorities, as plain functions of progress."""

from __future__ import annotations


def linear(start: float, end: float, fraction: float, progress: float) -> float:
    """Goes from ``start`` to ``end`` over the first ``fraction`` of training, then holds.

    ``progress`` is the share of the step budget used so far, in [0, 1].
    """
    if fraction <= 0:
        return end
    t = min(max(progress / fraction, 0.0), 1.0)
    return start + t * (end - start)
