"""Monte-Carlo tree search: a batched search core and the models it plans through.

``search(model, evaluate, root, config, rng)`` searches B trees at once and returns a
:class:`SearchOutput`; see :mod:`.core` for the algorithm and :mod:`.models` for the true
simulator model and the leaf evaluators.
"""

from .core import (
    Model,
    Root,
    SearchConfig,
    SearchOutput,
    Transition,
    Tree,
    backup,
    considered_visit_sequence,
    expand,
    search,
    simulate,
)

_MODELS = (
    "NetworkEvaluator",
    "RolloutEvaluator",
    "SimulatorModel",
    "snapshot_env",
    "uniform_evaluator",
)


def __getattr__(name: str):
    """The models need torch; the core and its config load without it (the CLI checks
    a config before it imports torch)."""
    if name in _MODELS:
        from . import models

        return getattr(models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Model",
    "NetworkEvaluator",
    "Root",
    "RolloutEvaluator",
    "SearchConfig",
    "SearchOutput",
    "SimulatorModel",
    "Transition",
    "Tree",
    "backup",
    "considered_visit_sequence",
    "expand",
    "search",
    "simulate",
    "snapshot_env",
    "uniform_evaluator",
]
