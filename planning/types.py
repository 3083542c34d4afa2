"""Shared result types of the planners.

Every planner returns ``(path, info)``: the path as a numpy array (empty when there is
none) and a :class:`PlanInfo`. A failed search is a result, not an exception, so callers
(the CLI, an environment, a benchmark) can count failures without try/except.
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class PlanInfo:
    """What a planner reports about one query.

    ``cost`` is the length of the returned path in the planner's units (cells for the
    grid planners, metres for hybrid A* and RRT*), ``inf`` when no path was found.
    ``expansions`` counts nodes taken out of the open list and expanded (grid planners,
    hybrid A*) or sampling iterations (RRT*). ``message`` says why a search failed.
    ``extras`` holds planner-specific figures (documented by each planner).
    """

    success: bool
    cost: float
    expansions: int
    time_s: float
    message: str = ""
    extras: dict[str, Any] = dataclasses.field(default_factory=dict)
