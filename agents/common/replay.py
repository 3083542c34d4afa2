"""Replay buffers for value-based agents: uniform and prioritized, with n-step returns.

Three decisions shape this module:

* **n-step returns are folded in when a transition is stored**, per env, so a sampled
  transition already reads ``(obs, action, return, discount, next_obs)`` and the TD target
  is ``return + discount * V(next_obs)``. ``discount`` is ``gamma**k`` when the k-step
  window ended by running out of steps or by *truncation* (bootstrap from the final
  observation), and ``0`` when it ended by *termination* (never bootstrap). A window never
  spans two episodes: when an episode ends, every pending window is flushed with the
  shorter horizon it has.
* **uint8 images are stored as frames, not as stacks.** Each env has a ring of single
  (H, W) frames; a stored observation is the position of its newest frame, and its stack
  is rebuilt from the C frames ending there. When an observation arrives, the buffer
  compares it with the frames at the end of that env's ring: an identical stack costs
  nothing, a stack shifted by one frame (the frame-stacking case) costs one frame, and
  anything else (the first stack of an episode, whatever its padding) is written whole.
  Because the reuse is decided by comparing bytes, the rebuilt stacks equal the original
  ones exactly, for any stacking or padding convention. A transition whose oldest frame
  has been overwritten (possible only with many very short episodes) is retired instead
  of being sampled with the wrong pixels. For 1M Atari transitions (4×84×84) this holds
  about 7.5 GB instead of the ~56 GB that separate ``obs`` and ``next_obs`` stacks need.
* **Storage is allocated on the first** :meth:`ReplayBuffer.add`, and :attr:`nbytes`
  is computed from shapes and dtypes, so the footprint of a large buffer can be reported
  (and checked against the machine) before a byte is committed.

Other observations (vectors, discrete ids, and the non-image keys of a ``Dict``) are
stored plainly as ``obs`` and ``next_obs`` arrays. Everything lives on the CPU as numpy;
:meth:`Batch.to` moves a sampled batch to the training device.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
import torch

from .networks import is_channels_last, is_image_space, to_tensor

Specs = dict[str, tuple[tuple[int, ...], Any]]


def _nbytes(specs: Specs) -> int:
    return sum(int(np.prod(shape)) * np.dtype(dtype).itemsize for shape, dtype in specs.values())


def _allocate(owner: object, specs: Specs) -> None:
    for name, (shape, dtype) in specs.items():
        setattr(owner, name, np.zeros(shape, dtype))


def with_final_obs(next_obs: Any, final_obs: dict[int, Any]) -> Any:
    """The true next observations of a same-step-autoreset batch.

    For an env whose episode ended, ``next_obs`` already holds the first observation of the
    next episode; TD targets need the last observation of the ended one (``final_obs``).
    """
    if not final_obs:
        return next_obs
    if isinstance(next_obs, dict):
        out = {k: v.copy() for k, v in next_obs.items()}
        for i, o in final_obs.items():
            for k in out:
                out[k][i] = o[k]
        return out
    out = np.array(next_obs, copy=True)
    for i, o in final_obs.items():
        out[i] = o
    return out


@dataclass
class Batch:
    """A sampled batch: TD target = ``rewards + discounts * V(next_obs)``.

    ``weights`` are importance-sampling weights (ones for uniform replay) and ``indices``
    the buffer slots, to send new priorities back with
    :meth:`PrioritizedReplayBuffer.update_priorities`.
    """

    obs: Any
    actions: Any
    rewards: Any
    discounts: Any
    next_obs: Any
    weights: Any
    indices: np.ndarray

    def to(self, device: torch.device) -> Batch:
        """The same batch as tensors on ``device`` (``indices`` stay numpy)."""
        return replace(
            self,
            obs=to_tensor(self.obs, device),
            actions=torch.as_tensor(self.actions, device=device),
            rewards=torch.as_tensor(self.rewards, device=device),
            discounts=torch.as_tensor(self.discounts, device=device),
            next_obs=to_tensor(self.next_obs, device),
            weights=torch.as_tensor(self.weights, device=device),
        )


class _ArrayStore:
    """Observations kept as they are, one ``obs`` and one ``next_obs`` row per slot."""

    def __init__(self, space: gym.Space, capacity: int) -> None:
        self.shape = tuple(space.shape or ())
        self.dtype = np.dtype(space.dtype)
        self.specs: Specs = {
            "obs": ((capacity, *self.shape), self.dtype),
            "next_obs": ((capacity, *self.shape), self.dtype),
        }

    def register(self, env: int, x: Any) -> np.ndarray:
        """A token standing for observation ``x`` until the transition is written."""
        return np.array(x, dtype=self.dtype, copy=True)

    def write(self, slot: int, obs_token: np.ndarray, next_token: np.ndarray) -> None:
        self.obs[slot] = obs_token
        self.next_obs[slot] = next_token

    def stale(self, env: int, slot: int) -> bool:
        return False

    def gather(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.obs[slots], self.next_obs[slots]

    def saved(self, name: str) -> np.ndarray:
        return getattr(self, name)

    def restore(self, name: str, array: np.ndarray) -> np.ndarray:
        return array


class _FrameStore:
    """uint8 (C, H, W) observations as rings of single frames, one ring per env.

    Tokens are absolute frame positions (frames pushed so far in that env's ring); the
    stack of a position ``p`` is frames ``p-C+1 .. p``. The ring holds a sixteenth more
    frames than the env's share of transitions, so episode starts (C frames each) do not
    retire live transitions unless episodes average fewer than ~16·C steps.
    """

    def __init__(self, space: gym.spaces.Box, capacity_per_env: int, n_envs: int) -> None:
        self.channels, height, width = space.shape
        self.capacity_per_env = capacity_per_env
        self.ring_size = capacity_per_env + capacity_per_env // 16 + 2 * self.channels
        capacity = capacity_per_env * n_envs
        self.specs: Specs = {
            "frames": ((n_envs, self.ring_size, height, width), np.uint8),
            "pushed": ((n_envs,), np.int64),
            "obs_pos": ((capacity,), np.int64),
            "next_pos": ((capacity,), np.int64),
        }

    def _tail(self, env: int, k: int) -> np.ndarray:
        """The last ``k`` frames pushed to ``env``'s ring, oldest first."""
        end = int(self.pushed[env])
        return self.frames[env, np.arange(end - k, end) % self.ring_size]

    def _push(self, env: int, frames: np.ndarray) -> int:
        end = int(self.pushed[env])
        self.frames[env, np.arange(end, end + len(frames)) % self.ring_size] = frames
        self.pushed[env] = end + len(frames)
        return end + len(frames) - 1

    def register(self, env: int, stack: np.ndarray) -> int:
        """Position of ``stack``'s newest frame, pushing only the frames not already there."""
        c, pushed = self.channels, int(self.pushed[env])
        if pushed >= c and np.array_equal(self._tail(env, c), stack):
            return pushed - 1
        if c > 1 and pushed >= c - 1 and np.array_equal(self._tail(env, c - 1), stack[:-1]):
            return self._push(env, stack[-1:])
        return self._push(env, stack)

    def write(self, slot: int, obs_token: int, next_token: int) -> None:
        self.obs_pos[slot] = obs_token
        self.next_pos[slot] = next_token

    def stale(self, env: int, slot: int) -> bool:
        """Whether the oldest frame ``slot`` needs has been overwritten."""
        oldest = min(self.obs_pos[slot], self.next_pos[slot]) - (self.channels - 1)
        return bool(oldest < self.pushed[env] - self.ring_size)

    def saved(self, name: str) -> np.ndarray:
        """``name``'s array as saved: the ring only as far as any env has written it."""
        if name == "frames":
            return self.frames[:, : min(int(self.pushed.max()), self.ring_size)]
        return getattr(self, name)

    def restore(self, name: str, array: np.ndarray) -> np.ndarray:
        if name == "frames" and array.shape[1] < self.ring_size:
            full = np.zeros((array.shape[0], self.ring_size, *array.shape[2:]), array.dtype)
            full[:, : array.shape[1]] = array
            return full
        return array

    def gather(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        env = (slots // self.capacity_per_env)[:, None]
        offsets = np.arange(1 - self.channels, 1)
        obs = self.frames[env, (self.obs_pos[slots, None] + offsets) % self.ring_size]
        nxt = self.frames[env, (self.next_pos[slots, None] + offsets) % self.ring_size]
        return obs, nxt


def _make_store(space: gym.Space, capacity_per_env: int, n_envs: int):
    if is_image_space(space) and not is_channels_last(space.shape):  # frame stacks only
        return _FrameStore(space, capacity_per_env, n_envs)
    return _ArrayStore(space, capacity_per_env * n_envs)


class _Pending(NamedTuple):
    obs: dict[Any, Any]
    next_obs: dict[Any, Any]
    action: int
    reward: float
    terminated: bool


class ReplayBuffer:
    """Uniform experience replay over ``n_envs`` parallel envs, with n-step returns.

    Each env owns ``capacity // n_envs`` slots written in its own order, which keeps an
    env's transitions contiguous (n-step windows and frame rings are per env) and makes
    the live transitions of an env one contiguous range of its writes.
    """

    def __init__(
        self,
        observation_space: gym.Space,
        capacity: int,
        n_envs: int = 1,
        n_step: int = 1,
        gamma: float = 0.99,
    ) -> None:
        if capacity < n_envs:
            raise ValueError(f"capacity {capacity} is smaller than n_envs {n_envs}")
        if n_step < 1:
            raise ValueError("n_step must be >= 1")
        self.observation_space = observation_space
        self.n_envs = n_envs
        self.n_step = n_step
        self.gamma = gamma
        self.capacity_per_env = capacity // n_envs
        self.capacity = self.capacity_per_env * n_envs
        if isinstance(observation_space, gym.spaces.Dict):
            self.stores = {
                k: _make_store(s, self.capacity_per_env, n_envs)
                for k, s in observation_space.spaces.items()
            }
        else:
            self.stores = {None: _make_store(observation_space, self.capacity_per_env, n_envs)}
        self._has_frames = any(isinstance(s, _FrameStore) for s in self.stores.values())
        self.specs: Specs = {
            "actions": ((self.capacity,), np.int64),
            "rewards": ((self.capacity,), np.float32),
            "discounts": ((self.capacity,), np.float32),
        }
        self._written = np.zeros(n_envs, np.int64)  # transitions written per env, ever
        self._head = np.zeros(n_envs, np.int64)  # oldest live write per env
        self._windows: list[deque[_Pending]] = [deque() for _ in range(n_envs)]
        self._allocated = False

    # --- size ------------------------------------------------------------------------
    @property
    def nbytes(self) -> int:
        """Bytes of storage this buffer holds once allocated (computed, not measured)."""
        total = _nbytes(self.specs) + sum(_nbytes(s.specs) for s in self.stores.values())
        return total + self._extra_nbytes()

    def _extra_nbytes(self) -> int:
        return 0

    def __len__(self) -> int:
        """Transitions that can be sampled now."""
        return int((self._written - self._head).sum())

    # --- writing -----------------------------------------------------------------------
    def _allocate(self) -> None:
        _allocate(self, self.specs)
        for store in self.stores.values():
            _allocate(store, store.specs)
        self._allocated = True

    def _part(self, obs: Any, key: Any) -> Any:
        return obs if key is None else obs[key]

    def add(
        self,
        obs: Any,
        next_obs: Any,
        actions: np.ndarray,
        rewards: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
    ) -> None:
        """Store one vectorized step.

        ``next_obs`` must be the true next observations (the final observation for an env
        whose episode ended, see :func:`with_final_obs`), not the autoreset ones.
        """
        if not self._allocated:
            self._allocate()
        for e in range(self.n_envs):
            o = _index(obs, e)
            no = _index(next_obs, e)
            obs_tokens = {k: s.register(e, self._part(o, k)) for k, s in self.stores.items()}
            next_tokens = {k: s.register(e, self._part(no, k)) for k, s in self.stores.items()}
            window = self._windows[e]
            window.append(
                _Pending(
                    obs_tokens, next_tokens, int(actions[e]), float(rewards[e]), bool(terminated[e])
                )
            )
            if len(window) == self.n_step:
                self._emit(e)
            if terminated[e] or truncated[e]:
                while window:
                    self._emit(e)
            if self._has_frames:
                self._retire_stale(e)

    def _emit(self, env: int) -> None:
        """Write the oldest pending transition of ``env`` with the return of its window."""
        window = self._windows[env]
        ret, discount = 0.0, 1.0
        for item in window:
            ret += discount * item.reward
            discount *= self.gamma
        first, last = window[0], window[-1]
        slot = env * self.capacity_per_env + int(self._written[env] % self.capacity_per_env)
        for k, store in self.stores.items():
            store.write(slot, first.obs[k], last.next_obs[k])
        self.actions[slot] = first.action
        self.rewards[slot] = ret
        self.discounts[slot] = 0.0 if last.terminated else discount
        self._written[env] += 1
        self._head[env] = max(self._head[env], self._written[env] - self.capacity_per_env)
        self._on_write(slot)
        window.popleft()

    def _retire_stale(self, env: int) -> None:
        """Retire the oldest transitions of ``env`` whose frames have been overwritten."""
        while self._head[env] < self._written[env]:
            slot = env * self.capacity_per_env + int(self._head[env] % self.capacity_per_env)
            if not any(s.stale(env, slot) for s in self.stores.values()):
                break
            self._on_retire(slot)
            self._head[env] += 1

    def _on_write(self, slot: int) -> None:
        """Hook for prioritized replay: a slot received a new transition."""

    def _on_retire(self, slot: int) -> None:
        """Hook for prioritized replay: a slot may no longer be sampled."""

    # --- saving ------------------------------------------------------------------------
    def state(self) -> dict[str, np.ndarray]:
        """Every array of the buffer by name, for ``numpy.savez`` (no copies; a frame ring
        only as far as it is written). Empty before the first :meth:`add`. The n-step
        windows of episodes still running are not kept: a resumed run starts new episodes."""
        if not self._allocated:
            return {}
        out = {"written": self._written, "head": self._head}
        out.update({name: getattr(self, name) for name in self.specs})
        for key, store in self.stores.items():
            for name in store.specs:
                out[f"{_store_prefix(key)}{name}"] = store.saved(name)
        return {**out, **self._extra_state()}

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Take over arrays written by :meth:`state` (without copying them); arrays that do
        not fit this buffer's spaces and sizes raise ``ValueError`` naming the first."""
        expected: Specs = {
            "written": ((self.n_envs,), np.int64),
            "head": ((self.n_envs,), np.int64),
        }
        expected.update(self.specs)
        for key, store in self.stores.items():
            expected.update({f"{_store_prefix(key)}{n}": spec for n, spec in store.specs.items()})
        expected.update(self._extra_specs())
        if set(arrays) != set(expected):
            odd = sorted(set(arrays) ^ set(expected))
            raise ValueError(f"the replay arrays differ from this buffer's ({odd[0]})")
        restored = {}
        for name, (shape, dtype) in expected.items():
            a = arrays[name]
            # a frame ring may be saved only as far as it was written (axis 1)
            trimmed = (
                name.endswith(".frames")
                and a.ndim == len(shape)
                and a.shape[1] <= shape[1]
                and a.shape[:1] + a.shape[2:] == shape[:1] + shape[2:]
            )
            if a.dtype != np.dtype(dtype) or (a.shape != tuple(shape) and not trimmed):
                raise ValueError(f"replay array '{name}' is {a.dtype}{a.shape}, not {shape}")
            restored[name] = a
        written, head = restored["written"], restored["head"]
        if (
            (head < 0).any()
            or (head > written).any()
            or (written - head > self.capacity_per_env).any()
        ):
            raise ValueError("the replay's write counters are inconsistent")
        self._written, self._head = written.copy(), head.copy()
        for name in self.specs:
            setattr(self, name, restored[name])
        for key, store in self.stores.items():
            for n in store.specs:
                setattr(store, n, store.restore(n, restored[f"{_store_prefix(key)}{n}"]))
        self._load_extra(restored)
        self._windows = [deque() for _ in range(self.n_envs)]
        self._allocated = True

    def _extra_state(self) -> dict[str, np.ndarray]:
        return {}

    def _extra_specs(self) -> Specs:
        return {}

    def _load_extra(self, arrays: dict[str, np.ndarray]) -> None:
        """Hook for prioritized replay: take over its own saved arrays."""

    # --- reading -----------------------------------------------------------------------
    def observations(self, slots: np.ndarray) -> tuple[Any, Any]:
        """Batched ``(obs, next_obs)`` of ``slots``, stacks rebuilt from stored frames."""
        parts = {k: s.gather(slots) for k, s in self.stores.items()}
        if None in parts:
            return parts[None]
        return {k: p[0] for k, p in parts.items()}, {k: p[1] for k, p in parts.items()}

    def live_slots(self) -> np.ndarray:
        """Every slot that can be sampled now, per env in write order (for tests and tools)."""
        out = []
        for e in range(self.n_envs):
            writes = np.arange(self._head[e], self._written[e])
            out.append(e * self.capacity_per_env + writes % self.capacity_per_env)
        return np.concatenate(out) if out else np.zeros(0, np.int64)

    def _batch(self, slots: np.ndarray, weights: np.ndarray) -> Batch:
        obs, next_obs = self.observations(slots)
        return Batch(
            obs=obs,
            actions=self.actions[slots],
            rewards=self.rewards[slots],
            discounts=self.discounts[slots],
            next_obs=next_obs,
            weights=weights.astype(np.float32),
            indices=slots,
        )

    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch:
        """A batch drawn uniformly (with replacement) from the live transitions."""
        counts = self._written - self._head
        total = int(counts.sum())
        if total == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        k = rng.integers(total, size=batch_size)
        env = np.searchsorted(np.cumsum(counts), k, side="right")
        offset = k - (np.cumsum(counts) - counts)[env]
        writes = self._head[env] + offset
        slots = env * self.capacity_per_env + writes % self.capacity_per_env
        return self._batch(slots, np.ones(batch_size, np.float32))


def _store_prefix(key: Any) -> str:
    """Name prefix of an observation store's arrays in a saved buffer."""
    return "obs." if key is None else f"obs[{key}]."


def _index(batch: Any, i: int) -> Any:
    if isinstance(batch, dict):
        return {k: v[i] for k, v in batch.items()}
    return batch[i]


class SumTree:
    """Binary tree whose internal nodes hold the sum of their leaves.

    Sampling a leaf with probability proportional to its value, and changing a value,
    both take O(log n), which is what makes proportional prioritized replay affordable.
    Operations are vectorized over a batch of leaves.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.depth = max(0, (capacity - 1).bit_length())
        self.leaves_start = 1 << self.depth  # leaves live at [leaves_start, 2 * leaves_start)
        self.nodes = np.zeros(2 * self.leaves_start, np.float64)

    @property
    def total(self) -> float:
        return float(self.nodes[1])

    def __getitem__(self, index: Any) -> np.ndarray:
        return self.nodes[np.asarray(index) + self.leaves_start]

    def update(self, index: Any, values: Any) -> None:
        """Set leaves ``index`` to ``values`` (duplicates: the last one wins)."""
        if np.ndim(index) == 0:
            self._update_one(int(index), float(values))
            return
        node = np.asarray(index, np.int64).reshape(-1) + self.leaves_start
        self.nodes[node] = np.asarray(values, np.float64).reshape(-1)
        for _ in range(self.depth):
            node = node // 2  # repeated parents just write the same sum twice
            self.nodes[node] = self.nodes[2 * node] + self.nodes[2 * node + 1]

    def _update_one(self, index: int, value: float) -> None:
        """One leaf in plain Python: every stored transition does this, and numpy's
        per-call overhead on one-element arrays would cost ten times more."""
        nodes = self.nodes
        node = index + self.leaves_start
        nodes[node] = value
        for _ in range(self.depth):
            node //= 2
            nodes[node] = nodes[2 * node] + nodes[2 * node + 1]

    def find(self, mass: np.ndarray) -> np.ndarray:
        """Leaf whose cumulative range holds each value of ``mass`` (in [0, total)).

        A step never enters an empty subtree, so rounding at the right edge cannot select
        a leaf of value zero.
        """
        node = np.ones(len(mass), np.int64)
        mass = np.asarray(mass, np.float64).copy()
        for _ in range(self.depth):
            left = self.nodes[2 * node]
            right = self.nodes[2 * node + 1]
            go_right = (mass >= left) & (right > 0)
            mass = np.where(go_right, mass - left, mass)
            node = 2 * node + go_right
        return node - self.leaves_start


class PrioritizedReplayBuffer(ReplayBuffer):
    """Proportional prioritized replay (Schaul et al., 2016).

    P(i) = p_i^α / Σ p^α with p_i = |δ_i| + ε; new transitions get the largest priority
    seen so far, so each is replayed at least about once. Importance-sampling weights
    (N·P(i))^-β are divided by the batch maximum, which keeps them ≤ 1 without letting one
    tiny priority anywhere in the buffer shrink every update; β is annealed by the caller.
    Sampling is stratified: the total mass is cut into ``batch_size`` equal segments and
    one leaf is drawn in each.
    """

    def __init__(
        self,
        observation_space: gym.Space,
        capacity: int,
        n_envs: int = 1,
        n_step: int = 1,
        gamma: float = 0.99,
        alpha: float = 0.6,
        eps: float = 1e-6,
    ) -> None:
        super().__init__(observation_space, capacity, n_envs, n_step, gamma)
        self.alpha = alpha
        self.eps = eps
        self.max_priority = 1.0
        self.tree = SumTree(self.capacity)

    def _extra_nbytes(self) -> int:
        return self.tree.nodes.nbytes

    def _extra_state(self) -> dict[str, np.ndarray]:
        return {"tree": self.tree.nodes, "max_priority": np.array(self.max_priority)}

    def _extra_specs(self) -> Specs:
        return {"tree": (self.tree.nodes.shape, np.float64), "max_priority": ((), np.float64)}

    def _load_extra(self, arrays: dict[str, np.ndarray]) -> None:
        self.tree.nodes = arrays["tree"]
        self.max_priority = float(arrays["max_priority"])

    def _on_write(self, slot: int) -> None:
        self.tree.update(slot, self.max_priority**self.alpha)

    def _on_retire(self, slot: int) -> None:
        self.tree.update(slot, 0.0)

    def sample(self, batch_size: int, rng: np.random.Generator, beta: float = 0.4) -> Batch:
        """A stratified batch drawn in proportion to priority, with IS weights for ``beta``."""
        total = self.tree.total
        if total <= 0:
            raise ValueError("cannot sample from an empty replay buffer")
        mass = (np.arange(batch_size) + rng.random(batch_size)) / batch_size * total
        slots = self.tree.find(mass)
        probs = self.tree[slots] / total
        weights = (len(self) * probs) ** -beta
        return self._batch(slots, weights / weights.max())

    def update_priorities(self, slots: np.ndarray, td_errors: np.ndarray) -> None:
        """New priorities ``|δ| + ε`` for the slots of a sampled batch."""
        priorities = np.abs(np.asarray(td_errors, np.float64)) + self.eps
        self.max_priority = max(self.max_priority, float(priorities.max()))
        self.tree.update(slots, priorities**self.alpha)
