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
from .models import (
    NetworkEvaluator,
    RolloutEvaluator,
    SimulatorModel,
    snapshot_env,
    uniform_evaluator,
)

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
