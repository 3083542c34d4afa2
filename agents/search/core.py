"""Batched Monte-Carlo tree search: PUCT or Gumbel root selection over many trees at once.

The B trees of a batch live in the same numpy arrays, indexed ``[tree, node]`` (and
``[tree, node, action]`` for edges), so one simulation descends all trees together with a
handful of vectorised array operations per depth level, and all new leaves are expanded by
*one* call of the simulator model and *one* call of the network. ``leaves_per_call > 1``
descends each tree several times before that call, with a virtual loss on the paths
already taken so the descents spread over different leaves.

:func:`search` is composed of the three classic steps:

* :func:`simulate` — from each root, pick actions (PUCT, or Gumbel MuZero's root and
  interior rules) until an edge that has no node yet, or a terminal node;
* :func:`expand` — step the model on the new edges (batched), evaluate the new states
  with the network (batched) and write the nodes;
* :func:`backup` — add the discounted returns to every node on the paths.

Values are returns of the single-agent MDP: ``Q(s, a) = r(s, a) + γ V(s')``, with
``V = 0`` at terminal states. Unbounded returns are normalised per node by the min and max
of the node's own value and its children's Q values before they meet the prior (MuZero's
normalisation, as mctx does it). Nothing here draws or reads global state; randomness comes
from the generator passed in.

References: Silver et al. 2017/2018 (PUCT with Dirichlet root noise, the ``c_init``/
``c_base`` schedule); Schrittwieser et al. 2020 (value normalisation); Danihelka et al.
2022, "Policy improvement by planning with Gumbel" (Gumbel root selection with sequential
halving, completed Q values with the mixed value, the interior rule).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol

import numpy as np

from pilot.config import field


# ------------------------------------------------------------------------------- typed API
@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """How to search. Defaults follow AlphaZero (PUCT) and mctx (Gumbel)."""

    num_simulations: int = field(32, "simulations per search (per tree)")
    root_selection: Literal["puct", "gumbel"] = field(
        "puct", "puct: AlphaZero's rule with Dirichlet noise; gumbel: sequential halving"
    )
    discount: float = field(0.99, "discount of the single-agent MDP inside the tree")
    pb_c_init: float = field(1.25, "PUCT exploration constant c_init")
    pb_c_base: float = field(19652.0, "PUCT exploration schedule c_base")
    dirichlet_alpha: float = field(0.3, "Dirichlet noise concentration at the root (PUCT)")
    dirichlet_fraction: float = field(
        0.25, "share of Dirichlet noise in the root prior when exploring (0: none)"
    )
    gumbel_max_actions: int = field(16, "Gumbel: actions considered at the root (m)")
    gumbel_scale: float = field(1.0, "Gumbel: scale of the Gumbel noise (0: none)")
    c_visit: float = field(50.0, "Gumbel: sigma(q) = (c_visit + max N) * c_scale * q")
    c_scale: float = field(0.1, "Gumbel: sigma(q) = (c_visit + max N) * c_scale * q")
    leaves_per_call: int = field(
        1, "leaves per tree expanded by one model/network call (virtual loss when > 1)"
    )
    max_depth: int = field(200, "longest path a descent may take (guards cyclic models)")

    def __post_init__(self) -> None:
        if self.num_simulations < 1:
            raise ValueError("num_simulations must be >= 1")
        if not 0.0 <= self.discount <= 1.0:
            raise ValueError("discount must be in [0, 1]")
        if not 0.0 <= self.dirichlet_fraction <= 1.0:
            raise ValueError("dirichlet_fraction must be in [0, 1]")
        if self.dirichlet_alpha <= 0:
            raise ValueError("dirichlet_alpha must be > 0")
        if self.gumbel_max_actions < 1 or self.leaves_per_call < 1 or self.max_depth < 1:
            raise ValueError("gumbel_max_actions, leaves_per_call and max_depth must be >= 1")


@dataclasses.dataclass(frozen=True)
class Root:
    """The B roots of a batched search.

    ``prior_logits``: (B, A) float, the network's policy logits at the roots;
    ``value``: (B,) float, its value estimates; ``states``: B opaque model states (what
    :meth:`Model.step` starts from); ``invalid_actions``: optional (B, A) bool mask.
    """

    prior_logits: np.ndarray
    value: np.ndarray
    states: Sequence[Any]
    invalid_actions: np.ndarray | None = None


@dataclasses.dataclass(frozen=True)
class Transition:
    """What a model returns for n (state, action) pairs.

    ``states``: n next states; ``observations``: the batch the evaluator reads (stacked
    observations for a simulator, latent vectors for a learned model); ``rewards``: (n,)
    float; ``terminals``: (n,) bool, the next state ends the episode.
    """

    states: list[Any]
    observations: Any
    rewards: np.ndarray
    terminals: np.ndarray


class Model(Protocol):
    """One step of the world, batched. The true simulator (state snapshots) and a learned
    model (MuZero-style latent dynamics) both fit: the search never looks inside a state."""

    num_actions: int

    def step(self, states: Sequence[Any], actions: np.ndarray) -> Transition: ...


#: ``evaluate(observations, states) -> (logits (n, A), values (n,))``: the network (or a
#: uniform prior with rollouts). ``states`` lets a rollout evaluator play from them.
Evaluator = Callable[[Any, Sequence[Any]], tuple[np.ndarray, np.ndarray]]


@dataclasses.dataclass(frozen=True)
class SearchOutput:
    """The result for the B trees.

    ``action``: (B,) the action to play (most visited; Gumbel: the sequential-halving
    winner); ``action_weights``: (B, A) the policy target (visit distribution; Gumbel: the
    improved policy ``softmax(logits + sigma(completed Q))``); ``visit_counts``: (B, A);
    ``q_values``: (B, A), NaN where unvisited; ``root_value``: (B,) the search's value of
    the root; ``tree``: the searched trees, for :func:`reuse_subtree`.
    """

    action: np.ndarray
    action_weights: np.ndarray
    visit_counts: np.ndarray
    q_values: np.ndarray
    root_value: np.ndarray
    tree: Tree


# ------------------------------------------------------------------------------- the trees
class Tree:
    """B search trees in flat arrays; node 0 of each tree is its root."""

    def __init__(self, batch: int, num_actions: int, capacity: int) -> None:
        b, a, n = batch, num_actions, capacity
        self.batch, self.num_actions, self.capacity = b, a, n
        self.children = np.full((b, n, a), -1, dtype=np.int64)
        self.edge_reward = np.zeros((b, n, a), dtype=np.float64)
        self.logits = np.zeros((b, n, a), dtype=np.float64)
        self.prior = np.zeros((b, n, a), dtype=np.float64)  # softmax of logits
        self.visits = np.zeros((b, n), dtype=np.int64)
        self.value_sum = np.zeros((b, n), dtype=np.float64)
        # each child's visits and value sum again on its parent's edge, so selection reads
        # one (M, A) row per node instead of gathering the children one by one
        self.edge_visits = np.zeros((b, n, a), dtype=np.int64)
        self.edge_value = np.zeros((b, n, a), dtype=np.float64)
        self.raw_value = np.zeros((b, n), dtype=np.float64)
        self.terminal = np.zeros((b, n), dtype=bool)
        self.parent = np.full((b, n), -1, dtype=np.int64)
        self.parent_action = np.full((b, n), -1, dtype=np.int64)
        self.size = np.zeros(b, dtype=np.int64)
        self.states = np.empty((b, n), dtype=object)
        # root-only: noisy prior (PUCT), Gumbel noise and the invalid-action mask
        self.root_prior = np.zeros((b, a), dtype=np.float64)
        self.gumbel = np.zeros((b, a), dtype=np.float64)
        self.invalid = np.zeros((b, a), dtype=bool)

    # Hot paths index flat views with ``take`` on global node ids ``b * capacity + n``:
    # several times faster than fancy indexing with two index arrays on small batches.
    def gid(self, b: np.ndarray, n: np.ndarray) -> np.ndarray:
        return b * self.capacity + n

    def flat(self, name: str) -> np.ndarray:
        """A (B·N,) or (B·N, A) view of a node or edge array."""
        arr = getattr(self, name)
        return arr.reshape(self.batch * self.capacity, *arr.shape[2:])

    def node_value(self, b: np.ndarray, n: np.ndarray) -> np.ndarray:
        g = self.gid(b, n)
        return self.flat("value_sum").take(g) / np.maximum(self.flat("visits").take(g), 1)

    def child_stats(self, b: np.ndarray, n: np.ndarray, discount: float):
        """(visits, Q) of the children of nodes ``(b, n)``, (M, A) each; Q is NaN where
        the child was never visited. A terminal child's value sum stays 0 (it is always
        backed up with 0), so its Q is its reward."""
        visits, q = self._edge_q(self.gid(b, n), discount)
        return visits, np.where(visits > 0, q, np.nan)

    def _edge_q(self, g: np.ndarray, discount: float) -> tuple[np.ndarray, np.ndarray]:
        visits = self.flat("edge_visits").take(g, axis=0)
        value = self.flat("edge_value").take(g, axis=0) / np.maximum(visits, 1)
        return visits, self.flat("edge_reward").take(g, axis=0) + discount * value

    def add(self, b: np.ndarray, n: np.ndarray, visits: int, values: np.ndarray, unique: bool):
        """Add to the stats of nodes ``(b, n)`` and to their parents' edges; ``unique``
        promises no node repeats (plain indexing instead of ``np.add.at``). Returns which
        nodes have a parent, the parents, and the flat ids of those parents' edges."""
        g = self.gid(b, n)
        p = self.flat("parent").take(g)
        up = p >= 0
        edge = (self.gid(b[up], p[up])) * self.num_actions + self.flat("parent_action").take(g[up])
        vals = values[up] if np.ndim(values) else values
        ev, evalue = self.edge_visits.reshape(-1), self.edge_value.reshape(-1)
        nv, nval = self.flat("visits"), self.flat("value_sum")
        if unique:
            nv[g] += visits
            nval[g] += values
            ev[edge] += visits
            evalue[edge] += vals
        else:
            np.add.at(nv, g, visits)
            np.add.at(nval, g, values)
            np.add.at(ev, edge, visits)
            np.add.at(evalue, edge, vals)
        return up, p, edge


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _masked_logits(logits: np.ndarray, invalid: np.ndarray | None) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    if invalid is None:
        return logits
    return np.where(invalid, -1e9, logits)


def init_tree(root: Root, config: SearchConfig, rng: np.random.Generator, extra: int = 0) -> Tree:
    """A fresh tree per root: node 0 holds the root's state, prior and one visit of its
    value (as mctx does); room for ``num_simulations + extra`` more nodes."""
    logits = _masked_logits(root.prior_logits, root.invalid_actions)
    b, a = logits.shape
    value = np.asarray(root.value, dtype=np.float64).reshape(b)
    if len(root.states) != b:
        raise ValueError(f"{len(root.states)} root states for {b} roots")
    tree = Tree(b, a, config.num_simulations + extra + 1)
    tree.logits[:, 0] = logits
    tree.prior[:, 0] = _softmax(logits)
    tree.raw_value[:, 0] = value
    tree.value_sum[:, 0] = value
    tree.visits[:, 0] = 1
    tree.size[:] = 1
    for i, s in enumerate(root.states):
        tree.states[i, 0] = s
    if root.invalid_actions is not None:
        tree.invalid[:] = np.asarray(root.invalid_actions, dtype=bool)
    return tree  # search() sets the root's (noised) prior once the subtrees are grafted


def _init_root_noise(tree: Tree, config: SearchConfig, rng: np.random.Generator, explore: bool):
    prior = tree.prior[:, 0]
    if config.root_selection == "puct" and explore and config.dirichlet_fraction > 0:
        noise = rng.dirichlet([config.dirichlet_alpha] * tree.num_actions, size=tree.batch)
        prior = (1 - config.dirichlet_fraction) * prior + config.dirichlet_fraction * noise
    tree.root_prior[:] = np.where(tree.invalid, 0.0, prior)
    if config.root_selection == "gumbel" and explore and config.gumbel_scale > 0:
        tree.gumbel[:] = config.gumbel_scale * rng.gumbel(size=(tree.batch, tree.num_actions))
    else:
        tree.gumbel[:] = 0.0


# -------------------------------------------------------------------------- selection rules
def _puct_scores(tree: Tree, b: np.ndarray, n: np.ndarray, config: SearchConfig, root: bool):
    """PUCT: Q min-max normalised per node over the node's mean value and its children's Q
    (unvisited children take the node's mean; rows without spread map to 0), plus
    ``(c_init + log((N + c_base + 1) / c_base)) · sqrt(N) · P / (1 + n)``."""
    g = tree.gid(b, n)
    visits, q = tree._edge_q(g, config.discount)
    parent_visits = tree.flat("visits").take(g).astype(np.float64)
    mean = tree.flat("value_sum").take(g) / parent_visits
    filled = np.where(visits > 0, q, mean[:, None])
    lo = np.minimum(filled.min(axis=1), mean)
    span = np.maximum(filled.max(axis=1), mean) - lo
    scale = 1.0 / np.where(span > 1e-8, span, np.inf)
    qn = (filled - lo[:, None]) * scale[:, None]
    c = config.pb_c_init + np.log((parent_visits + config.pb_c_base + 1) / config.pb_c_base)
    prior = tree.root_prior.take(b, axis=0) if root else tree.flat("prior").take(g, axis=0)
    return qn + (c * np.sqrt(parent_visits))[:, None] * prior / (1.0 + visits)


def _completed_q(tree: Tree, b: np.ndarray, n: np.ndarray, config: SearchConfig):
    """Gumbel MuZero's sigma(completed Q): visited children keep Q, unvisited ones get the
    mixed value; min-max rescaled, times ``(c_visit + max N) * c_scale``."""
    visits, q = tree.child_stats(b, n, config.discount)
    prior = tree.prior[b, n]
    raw = tree.raw_value[b, n]
    total = visits.sum(axis=1)
    seen = visits > 0
    seen_prior = np.where(seen, prior, 0.0).sum(axis=1)
    weighted_q = np.where(seen, prior * np.nan_to_num(q), 0.0).sum(axis=1) / np.maximum(
        seen_prior, np.finfo(np.float64).tiny
    )
    mixed = np.where(total > 0, (raw + total * weighted_q) / (total + 1.0), raw)
    completed = np.where(seen, q, mixed[:, None])
    lo, hi = completed.min(axis=1, keepdims=True), completed.max(axis=1, keepdims=True)
    completed = (completed - lo) / np.maximum(hi - lo, 1e-8)
    scale = (config.c_visit + visits.max(axis=1)) * config.c_scale
    return visits, completed * scale[:, None]


@functools.lru_cache(maxsize=256)
def considered_visit_sequence(max_considered: int, num_simulations: int) -> tuple[int, ...]:
    """Sequential halving's schedule: at simulation i the root visits one of the considered
    actions whose visit count equals ``sequence[i]`` (Danihelka et al. 2022). Each phase
    gives every remaining action the same number of visits, then halves them."""
    if max_considered <= 1:
        return tuple(range(num_simulations))
    log2max = math.ceil(math.log2(max_considered))
    sequence: list[int] = []
    visits = [0] * max_considered
    considered = max_considered
    while len(sequence) < num_simulations:
        extra = max(1, int(num_simulations / (log2max * considered)))
        for _ in range(extra):
            sequence.extend(visits[:considered])
            for i in range(considered):
                visits[i] += 1
        considered = max(2, considered // 2)
    return tuple(sequence[:num_simulations])


def _gumbel_root_scores(tree: Tree, b: np.ndarray, config: SearchConfig, target: np.ndarray):
    n = np.zeros_like(b)
    visits, sigma_q = _completed_q(tree, b, n, config)
    score = tree.gumbel[b] + tree.logits[b, 0] + sigma_q
    valid = ~tree.invalid[b]
    # A reused subtree's visits need not match the schedule: then the least visited.
    match = valid & (visits == target[:, None])
    fewest = np.where(valid, visits, np.iinfo(np.int64).max).min(axis=1, keepdims=True)
    match = np.where(match.any(axis=1, keepdims=True), match, valid & (visits == fewest))
    return np.where(match, score, -np.inf)


def _gumbel_interior_scores(tree: Tree, b: np.ndarray, n: np.ndarray, config: SearchConfig):
    visits, sigma_q = _completed_q(tree, b, n, config)
    improved = _softmax(tree.logits[b, n] + sigma_q)
    return improved - visits / (1.0 + visits.sum(axis=1, keepdims=True))


def _select(
    tree: Tree, b: np.ndarray, n: np.ndarray, config: SearchConfig, depth: int, ctx: _Context
) -> np.ndarray:
    """The action to take at nodes ``(b, n)`` of one descent level."""
    if depth == 0 and config.root_selection == "gumbel":
        scores = _gumbel_root_scores(tree, b, config, ctx.considered[b])
    elif depth == 0:
        scores = _puct_scores(tree, b, n, config, root=True)
    elif config.root_selection == "gumbel":
        scores = _gumbel_interior_scores(tree, b, n, config)
    else:
        scores = _puct_scores(tree, b, n, config, root=False)
    if depth == 0:
        scores = np.where(tree.invalid[b], -np.inf, scores)
    return scores.argmax(axis=1)


# ------------------------------------------------------------------------ the three steps
NEW, PENDING, EXISTING = 0, 1, 2


@dataclasses.dataclass
class Leaves:
    """Where the descents of one :func:`simulate` call ended, one entry per descent.

    ``node``: the node to back up from; ``kind``: ``NEW`` (a node just allocated behind
    the edge ``(parent, action)``, to be expanded), ``PENDING`` (a node allocated by an
    earlier descent of the same round, expanded once for both) or ``EXISTING`` (a terminal
    node, or the depth limit: backed up with its current value).
    """

    tree: np.ndarray
    node: np.ndarray
    kind: np.ndarray

    @staticmethod
    def concat(parts: Sequence[Leaves]) -> Leaves:
        return Leaves(
            *(np.concatenate([getattr(p, f) for p in parts]) for f in ("tree", "node", "kind"))
        )


@dataclasses.dataclass
class _Context:
    considered: np.ndarray  # Gumbel: the visit count the root's next action must have
    pending: np.ndarray  # (B, capacity) bool: allocated this round, not yet expanded


def simulate(tree: Tree, config: SearchConfig, ctx: _Context) -> Leaves:
    """Descend every tree from its root, all levels vectorised across trees. A descent
    stops at an edge without a node (the node is allocated there and marked pending), at
    a pending node, at a terminal node, or at the depth limit."""
    batch = tree.batch
    trees = np.arange(batch)
    cur = np.zeros(batch, dtype=np.int64)
    kind = np.full(batch, EXISTING, dtype=np.int64)
    live = trees
    for depth in range(config.max_depth):
        if len(live) == 0:
            break
        b, n = live, cur[live]
        a = _select(tree, b, n, config, depth, ctx)
        child = tree.children.reshape(-1).take(tree.gid(b, n) * tree.num_actions + a)
        new = child < 0
        if new.any():
            nb, nn, na = b[new], n[new], a[new]
            slot = tree.size[nb]
            if np.any(slot >= tree.capacity):
                raise RuntimeError("search tree is full")
            tree.size[nb] += 1
            tree.children[nb, nn, na] = slot
            tree.parent[nb, slot] = nn
            tree.parent_action[nb, slot] = na
            ctx.pending[nb, slot] = True
            child = child.copy()
            child[new] = slot
            kind[nb] = NEW
        at = tree.gid(b, np.maximum(child, 0))
        pending = ~new & ctx.pending.reshape(-1).take(at)
        kind[b[pending]] = PENDING
        stop = new | pending | tree.flat("terminal").take(at)
        cur[b] = child
        live = b[~stop]
    return Leaves(trees, cur.copy(), kind)


def expand(
    tree: Tree, leaves: Leaves, model: Model, evaluate: Evaluator, ctx: _Context
) -> np.ndarray:
    """Fill the ``NEW`` nodes of ``leaves``: one model call steps all their parents'
    states, one network call evaluates all new states. Returns the value to back up per
    descent (the new node's estimate, 0 when terminal, or an existing node's mean)."""
    fresh = np.flatnonzero(leaves.kind == NEW)
    if len(fresh):
        b, n = leaves.tree[fresh], leaves.node[fresh]
        p, a = tree.parent[b, n], tree.parent_action[b, n]
        out = model.step([tree.states[bi, pi] for bi, pi in zip(b, p, strict=True)], a)
        logits, values = evaluate(out.observations, out.states)
        terminal = np.asarray(out.terminals, dtype=bool)
        tree.edge_reward[b, p, a] = np.asarray(out.rewards, dtype=np.float64)
        tree.terminal[b, n] = terminal
        logits = np.asarray(logits, dtype=np.float64)
        tree.logits[b, n] = logits
        tree.prior[b, n] = _softmax(logits)
        tree.raw_value[b, n] = np.where(terminal, 0.0, np.asarray(values, np.float64).reshape(-1))
        for k in range(len(fresh)):
            tree.states[b[k], n[k]] = out.states[k]
        ctx.pending[b, n] = False
    b, n = leaves.tree, leaves.node
    mean = np.where(tree.terminal[b, n], 0.0, tree.node_value(b, n))
    return np.where(leaves.kind == EXISTING, mean, tree.raw_value[b, n])


def backup(
    tree: Tree,
    trees: np.ndarray,
    node: np.ndarray,
    value: np.ndarray,
    discount: float,
    unique: bool = False,
) -> None:
    """Add ``value`` to ``node`` and the discounted return to each ancestor, all paths
    walked up together (``unique``: no two paths share a node at the same level)."""
    g = np.asarray(value, dtype=np.float64).copy()
    b, n = trees, node
    while len(n):
        up, p, edge = tree.add(b, n, 1, g, unique)
        b, n = b[up], p[up]
        g = tree.edge_reward.reshape(-1).take(edge) + discount * g[up]


_STATS = ("visits", "value_sum", "edge_visits", "edge_value")


def _virtual_loss(tree: Tree, leaves: Leaves, low: np.ndarray) -> None:
    """Count a pending descent as a visit of value ``low`` (the lowest estimate in its
    tree) on every node of its path, so the next descent of the round looks elsewhere.
    The caller restores the stats before the real backup."""
    b, n = leaves.tree, leaves.node
    while len(n):
        up, p, _ = tree.add(b, n, 1, low[b], unique=False)
        b, n = b[up], p[up]


def search(
    model: Model,
    evaluate: Evaluator,
    root: Root,
    config: SearchConfig,
    rng: np.random.Generator,
    previous: tuple[Tree, np.ndarray, np.ndarray] | None = None,
    explore: bool = True,
) -> SearchOutput:
    """Search B trees together and return what to play.

    ``previous = (tree, actions, keep)`` reuses, for the trees where ``keep`` is true, the
    subtree below ``actions`` of the last search as the new root's subtree (its visits and
    values carry over). ``explore=False`` turns the root noise off (evaluation).
    """
    kept = _subtrees(*previous) if previous is not None else {}
    extra = max((len(order) for order in kept.values()), default=0)
    tree = init_tree(root, config, rng, extra=extra)
    if kept:
        _graft(tree, previous[0], kept)
    _init_root_noise(tree, config, rng, explore)
    if config.root_selection == "gumbel":  # the sequential-halving schedule per tree
        sequence = np.asarray(
            [
                considered_visit_sequence(
                    min(config.gumbel_max_actions, int(k)), config.num_simulations
                )
                for k in (~tree.invalid).sum(axis=1)
            ]
        )
    else:  # PUCT does not read it
        sequence = np.zeros((tree.batch, config.num_simulations), dtype=np.int64)
    pending = np.zeros((tree.batch, tree.capacity), dtype=bool)
    done = 0
    while done < config.num_simulations:
        k = min(config.leaves_per_call, config.num_simulations - done)
        rounds = []
        if k > 1:
            used = np.arange(tree.capacity)[None, :] < tree.size[:, None]
            low = np.where(used & ~pending, tree.raw_value, np.inf).min(axis=1)
            # restored, not subtracted, afterwards: exact (no rounding residue)
            saved = [getattr(tree, name).copy() for name in _STATS]
        for j in range(k):
            ctx = _Context(sequence[:, done + j], pending)
            leaves = simulate(tree, config, ctx)
            if k > 1:
                _virtual_loss(tree, leaves, low)
            rounds.append(leaves)
        if k > 1:
            for name, values in zip(_STATS, saved, strict=True):
                getattr(tree, name)[:] = values
        merged = Leaves.concat(rounds)
        value = expand(tree, merged, model, evaluate, ctx)
        backup(tree, merged.tree, merged.node, value, config.discount, unique=k == 1)
        done += k
    return _output(tree, config)


def _output(tree: Tree, config: SearchConfig) -> SearchOutput:
    b = np.arange(tree.batch)
    n = np.zeros_like(b)
    visits, q = tree.child_stats(b, n, config.discount)
    # a reused subtree may hold visits of actions the new root masks: never play them
    visits = np.where(tree.invalid, 0, visits)
    if config.root_selection == "gumbel":
        _, sigma_q = _completed_q(tree, b, n, config)
        weights = _softmax(np.where(tree.invalid, -1e9, tree.logits[:, 0] + sigma_q))
        top = visits.max(axis=1)
        best = (visits == top[:, None]) & ~tree.invalid
        score = np.where(best, tree.gumbel + tree.logits[:, 0] + sigma_q, -np.inf)
        action = score.argmax(axis=1)
    else:
        weights = visits / np.maximum(visits.sum(axis=1, keepdims=True), 1)
        action = _argmax_visits(
            visits, np.where(tree.invalid, -np.inf, np.nan_to_num(q, nan=-np.inf))
        )
    return SearchOutput(action, weights, visits, q, tree.node_value(b, n), tree)


def _argmax_visits(visits: np.ndarray, q: np.ndarray) -> np.ndarray:
    """The most visited action; among equally visited ones, the better Q."""
    best = visits == visits.max(axis=1, keepdims=True)
    return np.where(best, q, -np.inf).argmax(axis=1)


def _subtrees(old: Tree, actions: np.ndarray, keep: np.ndarray) -> dict[int, np.ndarray]:
    """For each kept tree, the old node ids of the subtree below the root's ``actions[b]``,
    breadth-first (its root first)."""
    out: dict[int, np.ndarray] = {}
    for b in np.flatnonzero(keep):
        start = old.children[b, 0, int(actions[b])]
        if start < 0 or old.terminal[b, start] or old.visits[b, start] == 0:
            continue
        order = [int(start)]
        i = 0
        while i < len(order):
            kids = old.children[b, order[i]]
            order.extend(int(c) for c in kids[kids >= 0])
            i += 1
        out[int(b)] = np.asarray(order)
    return out


def _graft(tree: Tree, old: Tree, kept: dict[int, np.ndarray]) -> None:
    """Copy the kept subtrees into ``tree``, renumbered so their roots become node 0."""
    for b, old_ids in kept.items():
        remap = np.full(old.capacity, -1, dtype=np.int64)
        m = len(old_ids)
        remap[old_ids] = np.arange(m)
        kids = old.children[b, old_ids]
        tree.children[b, :m] = np.where(kids >= 0, remap[np.maximum(kids, 0)], -1)
        for name in (
            "edge_reward",
            "logits",
            "prior",
            "visits",
            "value_sum",
            "edge_visits",
            "edge_value",
            "raw_value",
            "terminal",
            "parent_action",
            "states",
        ):
            getattr(tree, name)[b, :m] = getattr(old, name)[b, old_ids]
        parents = old.parent[b, old_ids]
        tree.parent[b, :m] = np.where(parents >= 0, remap[np.maximum(parents, 0)], -1)
        tree.parent[b, 0] = -1
        tree.parent_action[b, 0] = -1
        tree.size[b] = m
