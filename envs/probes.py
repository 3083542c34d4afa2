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

from pilot.errors import UserError


class _Probe(gym.Env):
    """Probes draw nothing: any ``render_mode`` other than None is refused when the env is
    made, rather than accepted and failing at the first ``render()``."""

    metadata = {"render_modes": [], "render_fps": 30}

    def __init__(self, render_mode: str | None = None):
        if render_mode is not None:
            raise UserError(
                f"probe envs draw nothing: render_mode must be None, got {render_mode!r}"
            )
        self.render_mode = render_mode


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
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.t += 1
        done = self.t >= 2
        return np.full(1, float(self.t), np.float32), float(done), done, False, {}


class IdentityProbe(_Probe):
    """Observation is a random class k of n; reward 1 for action k. Tests policy learning.

    The episode never terminates; the registered time limit (10 steps) truncates it, so
    agents must bootstrap there.
    """

    def __init__(self, n: int = 4, render_mode: str | None = None):
        super().__init__(render_mode)
        self.n = n
        self.observation_space = spaces.Discrete(n)
        self.action_space = spaces.Discrete(n)
        self._k = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._k = int(self.np_random.integers(self.n))
        return self._k, {}

    def step(self, action):
        reward = float(int(action) == self._k)
        self._k = int(self.np_random.integers(self.n))
        return self._k, reward, False, False, {}


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


#: id -> (class, natural episode length, whether the probe ends it by termination, text)
PROBES = {
    "pilot/Probe-Constant-v0": (
        "ConstantProbe",
        1,
        True,
        "probe: constant obs, reward +1 (value fitting)",
    ),
    "pilot/Probe-ObsReward-v0": (
        "ObsRewardProbe",
        1,
        True,
        "probe: reward equals the ±1 obs (input dependence)",
    ),
    "pilot/Probe-Discount-v0": (
        "DiscountProbe",
        2,
        True,
        "probe: reward +1 after two steps (discounting)",
    ),
    "pilot/Probe-Identity-v0": (
        "IdentityProbe",
        10,
        False,
        "probe: act the observed class (policy learning)",
    ),
    "pilot/Probe-ContinuousTarget-v0": (
        "ContinuousTargetProbe",
        1,
        True,
        "probe: continuous action toward a target",
    ),
}


def register_probes(descriptions: dict[str, str]) -> None:
    """Register every probe. A probe that terminates gets a time limit one step past its
    end, a guard that never fires: a limit equal to its length would truncate the very
    step that terminates it (terminated and truncated together, which Gymnasium's checker
    rejects and which tells agents to bootstrap where they must not). The Identity probe
    never terminates, so its limit is its length."""
    for env_id, (cls, steps, terminates, text) in PROBES.items():
        if env_id not in gym.registry:
            limit = steps + 1 if terminates else steps
            gym.register(env_id, entry_point=f"pilot.envs.probes:{cls}", max_episode_steps=limit)
        descriptions[env_id] = text
