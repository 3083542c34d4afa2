"""MCTS benchmark: batched vs recursive search speed, and what search buys on navigation.

Sections (``--sections``, default all):

* ``speed`` — simulations per second for ``pilot.agents.search`` at batch 1, 16 and 64
  against a recursive search written here the way most small AlphaZero implementations
  do it (node objects, a Python loop over actions per selection, one network call per
  leaf), same PUCT rule, same network, same machine, in one run. Two models: the true
  navigation simulator (state snapshots, ~50 µs per step in Python on both sides) and a
  learned MuZero-style dynamics network (one more network call per simulation).
* ``curve`` — success rate on 100 held-out maps vs simulations per move, pure search
  (uniform prior, zero value) against search with a network trained by ``pilot.agents.mcts``.
* ``compare`` — MCTS, PPO and DQN after the same number of env steps on those maps.

Run: ``python bench/mcts.py`` (``--threads`` sets torch threads, default 1).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from pilot.agents import build_config, get_algorithm
from pilot.agents.common.policies import ActorCritic
from pilot.agents.common.recorder import Recorder
from pilot.agents.search import (
    NetworkEvaluator,
    Root,
    SearchConfig,
    SimulatorModel,
    Transition,
    search,
    uniform_evaluator,
)
from pilot.envs import make_env
from pilot.eval.evaluate import run_episodes

GRID = "pilot/Nav-Grid-v0"
HELD_OUT = range(1_000_000, 1_000_100)


# ------------------------------------------------------------------ the recursive baseline
class _Node:
    __slots__ = ("prior", "visits", "value_sum", "children", "reward", "state", "terminal")

    def __init__(self, prior: float) -> None:
        self.prior = prior
        self.visits = 0
        self.value_sum = 0.0
        self.children: dict[int, _Node] = {}
        self.reward = 0.0
        self.state: Any = None
        self.terminal = False

    def value(self) -> float:
        return self.value_sum / self.visits if self.visits else 0.0


class RecursiveSearch:
    """One tree at a time, one leaf per network call, recursion for descent and backup;
    the same PUCT rule and per-node min-max normalisation as the batched search."""

    def __init__(self, model, evaluate, config: SearchConfig) -> None:
        self.model, self.evaluate, self.config = model, evaluate, config

    def _expand(self, node: _Node, logits: np.ndarray) -> None:
        p = np.exp(logits - logits.max())
        p /= p.sum()
        node.children = {a: _Node(float(p[a])) for a in range(len(p))}

    def run(self, state: Any, obs: Any) -> int:
        cfg = self.config
        logits, value = self.evaluate(obs, [state])
        root = _Node(1.0)
        root.state = state
        root.visits, root.value_sum = 1, float(value[0])
        self._expand(root, logits[0])
        for _ in range(cfg.num_simulations):
            self._simulate(root)
        return max(root.children, key=lambda a: root.children[a].visits)

    def _simulate(self, node: _Node) -> float:
        cfg = self.config
        if node.terminal:
            return 0.0
        action, child = self._select(node)
        if child.state is None:  # a leaf: one model step, one network call
            out = self.model.step([node.state], np.array([action]))
            child.state, child.reward = out.states[0], float(out.rewards[0])
            child.terminal = bool(out.terminals[0])
            logits, value = self.evaluate(out.observations, out.states)
            v = 0.0 if child.terminal else float(value[0])
            if not child.terminal:
                self._expand(child, logits[0])
        else:
            v = self._simulate(child)
        child.visits += 1
        child.value_sum += v
        g = child.reward + cfg.discount * v
        node.visits += 1
        node.value_sum += g
        return g

    def _select(self, node: _Node) -> tuple[int, _Node]:
        cfg = self.config
        mean = node.value()
        qs = {}
        for a, c in node.children.items():
            qs[a] = (
                c.reward + cfg.discount * (0.0 if c.terminal else c.value()) if c.visits else mean
            )
        lo, hi = min(min(qs.values()), mean), max(max(qs.values()), mean)
        span = hi - lo
        c_puct = cfg.pb_c_init + math.log((node.visits + cfg.pb_c_base + 1) / cfg.pb_c_base)
        sqrt_n = math.sqrt(node.visits)
        best, best_score = 0, -math.inf
        for a, c in node.children.items():
            q = (qs[a] - lo) / span if span > 1e-8 else 0.0
            score = q + c_puct * sqrt_n * c.prior / (1 + c.visits)
            if score > best_score:
                best, best_score = a, score
        return best, node.children[best]


# -------------------------------------------------------------------- a learned model
class LatentModel:
    """MuZero-style dynamics: (latent, action) → (next latent, reward), a small MLP.
    Untrained weights: the benchmark measures search cost, not what the model knows."""

    def __init__(self, latent: int, num_actions: int) -> None:
        self.num_actions = num_actions
        self.net = nn.Sequential(
            nn.Linear(latent + num_actions, 64), nn.Tanh(), nn.Linear(64, latent + 1)
        )
        self.eye = torch.eye(num_actions)

    @torch.no_grad()
    def step(self, states, actions: np.ndarray) -> Transition:
        z = torch.as_tensor(np.stack(states), dtype=torch.float32)
        out = self.net(torch.cat([z, self.eye[torch.as_tensor(actions)]], dim=1))
        nxt = torch.tanh(out[:, :-1]).numpy()
        return Transition(list(nxt), nxt, out[:, -1].double().numpy(), np.zeros(len(nxt), bool))


# -------------------------------------------------------------------------------- speed
def _nav_roots(batch: int) -> tuple[list, Any, SimulatorModel]:
    envs = [make_env(GRID) for _ in range(batch)]
    obs = np.stack([e.reset(seed=1000 + i)[0] for i, e in enumerate(envs)])
    states = [e.unwrapped.get_state() for e in envs]
    return states, obs, SimulatorModel(make_env(GRID))


def _measure(model, evaluate, states: list, obs: Any, cfg: SearchConfig, seconds: float):
    """Simulations/s of both searches on the same roots, model and network."""
    batch, sims = len(states), cfg.num_simulations
    rng = np.random.default_rng(0)
    recursive = RecursiveSearch(model, evaluate, cfg)

    def ours() -> int:
        logits, values = evaluate(obs, states)
        search(model, evaluate, Root(logits, values, states), cfg, rng, explore=False)
        return batch * sims

    def theirs() -> int:
        for i in range(batch):
            recursive.run(states[i], obs[i : i + 1])
        return batch * sims

    rates = {}
    for name, fn in (("ours", ours), ("theirs", theirs)):
        fn()  # warm-up
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            done += fn()
        rates[name] = done / (time.perf_counter() - start)
    return rates


def speed(seconds: float, sims: int) -> None:
    from gymnasium import spaces

    env = make_env(GRID)
    grid_net = ActorCritic(env.observation_space, env.action_space, (64, 64)).eval()
    latent = 64
    latent_net = ActorCritic(
        spaces.Box(-1, 1, (latent,), np.float32), env.action_space, (64, 64)
    ).eval()
    cfg = SearchConfig(num_simulations=sims, dirichlet_fraction=0.0)
    print(f"\n== speed: simulations/s, {sims} simulations per search, PUCT ==")
    print("| model | batch | batched (ours) | recursive | ratio |")
    print("|---|---|---|---|---|")
    for model_name in ("navigation simulator", "learned latent model"):
        for batch in (1, 16, 64):
            if model_name == "navigation simulator":
                states, obs, model = _nav_roots(batch)
                evaluate = NetworkEvaluator(grid_net.policy_value, torch.device("cpu"))
            else:
                rng = np.random.default_rng(batch)
                obs = np.tanh(rng.normal(size=(batch, latent))).astype(np.float32)
                states = list(obs)
                model = LatentModel(latent, 8)
                evaluate = NetworkEvaluator(latent_net.policy_value, torch.device("cpu"))
            rates = _measure(model, evaluate, states, obs, cfg, seconds)
            print(
                f"| {model_name} | {batch} | {rates['ours']:,.0f} | {rates['theirs']:,.0f} | "
                f"{rates['ours'] / rates['theirs']:.1f}× |",
                flush=True,
            )


# ------------------------------------------------------------------ curve and compare
def _success(act) -> float:
    results = run_episodes(act, GRID, seeds=HELD_OUT, episodes_per_seed=1)
    return float(np.mean([r.terminated for r in results]))


def _train(algo: str, steps: int, seed: int):
    agent = get_algorithm(algo)(GRID, build_config(algo, GRID), seed=seed)
    start = time.perf_counter()
    agent.learn(steps, Recorder(None, steps))
    return agent, time.perf_counter() - start


def curve_and_compare(steps: int, seed: int, sections: set[str]) -> None:
    mcts, wall = _train("mcts", steps, seed)
    print(f"\nMCTS trained {steps:,} env steps in {wall:.0f} s (seed {seed})")
    if "curve" in sections:
        model = SimulatorModel(make_env(GRID))
        uniform = uniform_evaluator(8)
        rng = np.random.default_rng(0)
        print("\n== curve: success on 100 held-out maps vs simulations per move ==")
        print("| simulations | pure search (uniform prior, zero value) | search + trained net |")
        print("|---|---|---|")
        for sims in (1, 2, 4, 8, 16, 32):
            cfg = SearchConfig(num_simulations=sims)

            def pure(obs, envs, cfg=cfg):
                states = [e.unwrapped.get_state() for e in envs]
                logits, values = uniform(obs, states)
                root = Root(logits, values, states)
                return search(model, uniform, root, cfg, rng, explore=False).action

            mcts.config = dataclasses.replace(mcts.config, eval_simulations=sims)
            guided = _success(lambda obs, envs: mcts.act(obs, True, envs))
            print(f"| {sims} | {_success(pure):.2f} | {guided:.2f} |", flush=True)
        net_alone = _success(lambda obs, envs: mcts.act(obs, True))
        print(f"(the trained network alone, no search: {net_alone:.2f})")
    if "compare" in sections:
        print(f"\n== compare: held-out success after {steps:,} env steps (seed {seed}) ==")
        print("| agent | success | train wall s |")
        print("|---|---|---|")
        sims = mcts.config.search.num_simulations
        mcts.config = dataclasses.replace(mcts.config, eval_simulations=None)
        print(
            f"| MCTS ({sims} simulations/move) | "
            f"{_success(lambda obs, envs: mcts.act(obs, True, envs)):.2f} | {wall:.0f} |"
        )
        print(
            f"| MCTS network alone | {_success(lambda obs, envs: mcts.act(obs, True)):.2f} | "
            f"{wall:.0f} |"
        )
        for algo in ("ppo", "dqn"):
            agent, w = _train(algo, steps, seed)
            rate = _success(lambda obs, envs, a=agent: a.act(obs, deterministic=True))
            print(f"| {algo.upper()} | {rate:.2f} | {w:.0f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", nargs="+", default=["speed", "curve", "compare"])
    parser.add_argument("--seconds", type=float, default=3.0, help="timing per cell")
    parser.add_argument("--simulations", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10_000, help="env steps for curve/compare")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sections = set(args.sections)
    if "speed" in sections:
        speed(args.seconds, args.simulations)
    if sections & {"curve", "compare"}:
        curve_and_compare(args.steps, args.seed, sections)


if __name__ == "__main__":
    main()
