"""Probe environments: tiny MDPs whose optimal values and actions are known by hand.

Each isolates one piece an agent can get wrong (value fitting, observation dependence,
discounting, action dependence, continuous actions), after Andy Jones' "debugging RL"
probes and Stable-Baselines3's identity envs. Every agent must solve them; a failure points
at the broken piece rather than at "it does not learn".

| id | obs | actions | reward | solved when |
|---|---|---|---|---|
| Probe-Constant | 0 | 2 | +1, one step | V(s) = 1 |
| Probe-ObsReward | ±1 | 2 | = obs, one step | V(s) = obs |
| Probe-Discount | 0 then 1 | 2 | +1 at step 2 | V(0) = γ, V(1) = 1 |
| Probe-Identity | random k of n | n | 1 if a == k | π(k) = 1, 10 steps |
| Probe-ContinuousTarget | target in [-1, 1] | Box(1) | −(a − target)² | a ≈ target |
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class _Probe(gym.Env):
    metadata = {"render_modes": [], "render_fps": 30}

    def __init__(self, render_mode: str | None = None):
        self.render_mode = render_mode
        self.t = 0


class ConstantProbe(_Probe):
    """One step, constant observation, reward +1: tests value fitting alone."""

    def __init__(self, render_mode: str | None = None):
        super().__init__(render_mode)
        self.observation_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(1, np.float32), {}

    def step(self, action):
        return np.zeros(1, np.float32), 1.0, True, False, {}


class ObsRewardProbe(_Probe):
    """One step, observation ±1, reward = observation: tests that values read the input."""

    def __init__(self, render_mode: str | None = None):
        super().__init__(render_mode)
        self.observation_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.action_space = spaces.Discrete(2)
        self._obs = np.zeros(1, np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._obs = np.array([self.np_random.choice([-1.0, 1.0])], np.float32)
        return self._obs.copy(), {}

    def step(self, action):
        return self._obs.copy(), float(self._obs[0]), True, False, {}


class DiscountProbe(_Probe):
    """Two steps, reward +1 only at the end: V(first) must be γ, testing discounting."""

    def __init__(self, render_mode: str | None = None):
        super().__init__(render_mode)
        self.observation_space = spaces.Box(0.0, 1.0, (1,), np.float32)
        self.action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.t += 1
        done = self.t >= 2
        return np.full(1, float(self.t), np.float32), float(done), done, False, {}


class IdentityProbe(_Probe):
    """Observation is a random class k of n; reward 1 for action k. Tests policy learning."""

    def __init__(self, n: int = 4, length: int = 10, render_mode: str | None = None):
        super().__init__(render_mode)
        self.n, self.length = n, length
        self.observation_space = spaces.Discrete(n)
        self.action_space = spaces.Discrete(n)
        self._k = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self._k = int(self.np_random.integers(self.n))
        return self._k, {}

    def step(self, action):
        reward = float(int(action) == self._k)
        self.t += 1
        self._k = int(self.np_random.integers(self.n))
        return self._k, reward, False, self.t >= self.length, {}


class ContinuousTargetProbe(_Probe):
    """Observation is a target in [-1, 1]; reward −(a − target)². Tests Gaussian policies."""

    def __init__(self, render_mode: str | None = None):
        super().__init__(render_mode)
        self.observation_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
        self._target = np.zeros(1, np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._target = self.np_random.uniform(-1, 1, 1).astype(np.float32)
        return self._target.copy(), {}

    def step(self, action):
        a = np.clip(np.asarray(action, np.float32), -1, 1)
        reward = -float(((a - self._target) ** 2).sum())
        return self._target.copy(), reward, True, False, {}


PROBES = {
    "pilot/Probe-Constant-v0": (
        "ConstantProbe",
        1,
        "probe: constant obs, reward +1 (value fitting)",
    ),
    "pilot/Probe-ObsReward-v0": (
        "ObsRewardProbe",
        1,
        "probe: reward equals the ±1 obs (input dependence)",
    ),
    "pilot/Probe-Discount-v0": (
        "DiscountProbe",
        2,
        "probe: reward +1 after two steps (discounting)",
    ),
    "pilot/Probe-Identity-v0": (
        "IdentityProbe",
        10,
        "probe: act the observed class (policy learning)",
    ),
    "pilot/Probe-ContinuousTarget-v0": (
        "ContinuousTargetProbe",
        1,
        "probe: continuous action toward a target",
    ),
}


def register_probes(descriptions: dict[str, str]) -> None:
    for env_id, (cls, steps, text) in PROBES.items():
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=f"pilot.envs.probes:{cls}", max_episode_steps=steps)
        descriptions[env_id] = text
