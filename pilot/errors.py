"""Errors that are the user's to fix.

The CLI turns a :class:`UserError` into a one-line message and exit code 2; everything
else is a bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """A mistake in the input (unknown id, bad flag, missing or foreign file)."""


class TrainingDiverged(Exception):
    """NaN/inf appeared in a loss, an action or an observation during training."""


def close_matches(word: str, choices: Iterable[str], n: int = 3) -> str:
    """A ' (did you mean: a, b?)' suffix for error messages, or '' when nothing is close."""
    choices = list(choices)
    found = difflib.get_close_matches(word, choices, n=n, cutoff=0.5)
    if not found:
        lowered = word.lower()
        found = [c for c in choices if lowered in c.lower()][:n]
    return f" (did you mean: {', '.join(found)}?)" if found else ""
