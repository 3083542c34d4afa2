"""The actor-critic network shared by PPO, A2C and REINFORCE.

One module holds the torso(s) from :func:`~pilot.agents.common.networks.make_torso` (MLP,
Nature CNN or multi-input, chosen by the observation space), an action head and a value
head. Collection calls the policy once per env step, so on small problems its fixed costs
matter more than its arithmetic:

* the action heads are written out by hand instead of going through
  ``torch.distributions`` (whose objects and argument checks cost more than the network);
* sampling happens in numpy on the distribution parameters, which come back from the
  device in one transfer together with the values, using the agent's numpy generator;
* two separate MLP torsos (actor and critic) run as one :class:`TwinMLP`;
* on the CPU, collection with such a policy runs a numpy copy of its weights
  (:class:`NumpyActorCritic`, refreshed every rollout): numpy's per-call cost on 8×64
  matrices is a fraction of torch's, and acting is all per-call cost.

:class:`CategoricalHead` serves ``Discrete`` actions; :class:`GaussianHead` serves ``Box``
actions with a state-independent log-std. Gaussian samples are unclipped (their
log-probability is what the update uses); clipping to the bounds happens only on the way
to the env.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from .networks import is_image_space, layer_init, make_torso, to_tensor

Obs = Any  # torch.Tensor or dict[str, torch.Tensor], batched

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
_ACTIVATION_FNS = {"tanh": torch.tanh, "relu": torch.relu}


class CategoricalHead(nn.Module):
    """Discrete actions. Small initial weights (gain 0.01) start the policy near uniform."""

    def __init__(self, in_dim: int, n: int) -> None:
        super().__init__()
        self.logits = layer_init(nn.Linear(in_dim, n), gain=0.01)

    def params(self, features: torch.Tensor) -> torch.Tensor:
        """Log-probabilities of every action, (B, n)."""
        return torch.log_softmax(self.logits(features), dim=-1)

    @staticmethod
    def sample(
        log_probs: np.ndarray, rng: np.random.Generator, deterministic: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Actions (int64, (B,)) and their log-probabilities from :meth:`params` output.

        Gumbel-max sampling (argmax of log-probabilities plus Gumbel noise): a few
        vectorised numpy calls. NaN log-probabilities pass through to the stored
        log-probability, so a diverged network is caught by the loss checks.
        """
        if deterministic:
            actions = log_probs.argmax(axis=1)
        else:
            gumbel = -np.log(-np.log(rng.random(log_probs.shape)))
            actions = (log_probs + gumbel).argmax(axis=1)
        return actions, log_probs[np.arange(len(actions)), actions]

    def log_prob_entropy(
        self, features: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        log_probs = self.params(features)
        entropy = -(log_probs.exp() * log_probs).sum(dim=-1)
        return log_probs.gather(1, actions.long().unsqueeze(1)).squeeze(1), entropy

    def probs(self, features: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(features), dim=-1)


class GaussianHead(nn.Module):
    """Continuous actions: diagonal Gaussian, mean from the features, one learned log-std.

    A state-independent log-std is the PPO default for continuous control (Schulman et al.
    2017); it keeps exploration noise a single, easily logged number per action dimension.
    """

    def __init__(self, in_dim: int, dim: int, log_std_init: float = 0.0) -> None:
        super().__init__()
        self.mean = layer_init(nn.Linear(in_dim, dim), gain=0.01)
        self.log_std = nn.Parameter(torch.full((dim,), float(log_std_init)))

    def params(self, features: torch.Tensor) -> torch.Tensor:
        """Mean and log-std side by side, (B, 2·dim)."""
        mean = self.mean(features)
        return torch.cat([mean, self.log_std.expand_as(mean)], dim=1)

    @staticmethod
    def sample(
        params: np.ndarray, rng: np.random.Generator, deterministic: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Unclipped actions (B, dim) and their log-probabilities from :meth:`params` output."""
        mean, log_std = np.split(params, 2, axis=1)
        if deterministic:
            return mean, (-log_std - _LOG_SQRT_2PI).sum(axis=1)
        z = rng.standard_normal(mean.shape, dtype=np.float32)
        actions = mean + np.exp(log_std) * z
        return actions, (-0.5 * z * z - log_std - _LOG_SQRT_2PI).sum(axis=1)

    def log_prob_entropy(
        self, features: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        mean = self.mean(features)
        z = (actions - mean) * torch.exp(-self.log_std)
        log_prob = (-0.5 * z.square() - self.log_std - _LOG_SQRT_2PI).sum(dim=-1)
        entropy = (0.5 + _LOG_SQRT_2PI + self.log_std).sum().expand(mean.shape[0])
        return log_prob, entropy


class TwinMLP(nn.Module):
    """Two MLPs of one shape (actor and critic torsos) evaluated as one.

    Mathematically these are two independent MLPs, initialised like
    :class:`~pilot.agents.common.networks.MLP` (orthogonal, gain √2, zero bias). Stacking
    their weights as (2, in, out) makes each layer one batched matmul instead of two small
    ones; on CPU-sized policies the cost is per call, not per FLOP, so this cuts collection
    and update time of separate-torso MLP policies substantially.
    """

    def __init__(self, in_dim: int, hidden: tuple[int, ...], activation: str = "tanh") -> None:
        super().__init__()
        self.names = []
        for i, h in enumerate(hidden):
            towers = [layer_init(nn.Linear(in_dim, h)).weight.detach().t() for _ in range(2)]
            self.register_parameter(f"w{i}", nn.Parameter(torch.stack(towers).contiguous()))
            self.register_parameter(f"b{i}", nn.Parameter(torch.zeros(2, 1, h)))
            self.names.append((f"w{i}", f"b{i}"))
            in_dim = h
        self.activation_name = activation
        self.activation = _ACTIVATION_FNS[activation]
        self.out_dim = in_dim

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        params = self._parameters  # direct lookups: this runs once per env step
        h = x.flatten(1).float().expand(2, -1, -1)
        for w, b in self.names:
            h = self.activation(torch.baddbmm(params[b], h, params[w]))
        return h[0], h[1]


class ActorCritic(nn.Module):
    """Policy and value function over one observation space.

    ``shared_torso`` puts both heads on one torso (the usual choice for Atari, where the
    CNN is most of the compute); otherwise the critic has its own torso of the same shape,
    so value regression cannot disturb the policy's features (the usual MLP choice). Two
    separate MLP torsos are held as one :class:`TwinMLP`.
    """

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        hidden: tuple[int, ...] = (64, 64),
        activation: str = "tanh",
        shared_torso: bool = False,
        log_std_init: float = 0.0,
    ) -> None:
        super().__init__()
        vector = isinstance(observation_space, gym.spaces.Box) and not is_image_space(
            observation_space
        )
        self.twin = vector and not shared_torso and len(hidden) > 0
        self.critic_torso: nn.Module | None = None
        if self.twin:
            in_dim = int(np.prod(observation_space.shape))
            self.torso: nn.Module = TwinMLP(in_dim, hidden, activation)
        else:
            self.torso = make_torso(observation_space, hidden, activation)
            if not shared_torso:
                self.critic_torso = make_torso(observation_space, hidden, activation)
        if isinstance(action_space, gym.spaces.Discrete):
            self.head: CategoricalHead | GaussianHead = CategoricalHead(
                self.torso.out_dim, int(action_space.n)
            )
        elif isinstance(action_space, gym.spaces.Box):
            dim = int(np.prod(action_space.shape))
            self.head = GaussianHead(self.torso.out_dim, dim, log_std_init)
        else:
            raise TypeError(
                f"policy-gradient agents support Discrete and Box actions, not {action_space}"
            )
        critic_dim = (self.critic_torso or self.torso).out_dim
        self.value_head = layer_init(nn.Linear(critic_dim, 1), gain=1.0)

    def _features(self, obs: Obs) -> tuple[torch.Tensor, torch.Tensor]:
        """(actor features, critic features)."""
        if self.twin:
            return self.torso(obs)
        actor = self.torso(obs)
        return actor, actor if self.critic_torso is None else self.critic_torso(obs)

    def _actor_features(self, obs: Obs) -> torch.Tensor:
        return self.torso(obs)[0] if self.twin else self.torso(obs)

    def value(self, obs: Obs) -> torch.Tensor:
        """V(obs), shape (B,)."""
        if self.critic_torso is not None:
            return self.value_head(self.critic_torso(obs)).squeeze(1)
        return self.value_head(self._features(obs)[1]).squeeze(1)

    def policy_value(self, obs: Obs) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probabilities of every action (B, n) and V(obs) (B,): what a tree search
        reads at a leaf and what its training fits (discrete actions only)."""
        if not isinstance(self.head, CategoricalHead):
            raise TypeError("policy_value needs discrete actions")
        actor, critic = self._features(obs)
        return self.head.params(actor), self.value_head(critic).squeeze(1)

    @torch.no_grad()
    def act(
        self, obs: Obs, rng: np.random.Generator, deterministic: bool = False
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Actions, their log-probabilities and V(obs) as numpy: what collection stores.

        The network runs in torch; the distribution parameters and values come back in one
        transfer and the sampling happens in numpy with ``rng``, which on small policies
        costs a fraction of the equivalent chain of tiny torch calls.
        """
        actor, critic = self._features(obs)
        out = torch.cat([self.head.params(actor), self.value_head(critic)], dim=1)
        out = out.float().cpu().numpy()
        actions, log_probs = self.head.sample(out[:, :-1], rng, deterministic)
        return actions, log_probs, out[:, -1]

    @torch.no_grad()
    def actions(self, obs: Obs, rng: np.random.Generator, deterministic: bool = True) -> np.ndarray:
        """Actions only (evaluation and ``watch``: no critic pass)."""
        params = self.head.params(self._actor_features(obs)).float().cpu().numpy()
        return self.head.sample(params, rng, deterministic)[0]

    def evaluate(
        self, obs: Obs, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Log-probabilities of ``actions``, policy entropy and V(obs), for the update."""
        actor, critic = self._features(obs)
        log_prob, entropy = self.head.log_prob_entropy(actor, actions)
        return log_prob, entropy, self.value_head(critic).squeeze(1)

    def action_scores(self, obs: Obs) -> torch.Tensor:
        """Differentiable scores behind the action, (B, n): the logits of a discrete
        policy, the Gaussian means of a continuous one (what saliency maps explain)."""
        features = self._actor_features(obs)
        if isinstance(self.head, CategoricalHead):
            return self.head.logits(features)
        return self.head.mean(features)

    def probs(self, obs: Obs) -> torch.Tensor | None:
        """Action probabilities (discrete policies), else None."""
        if isinstance(self.head, CategoricalHead):
            return self.head.probs(self._actor_features(obs))
        return None

    def acting(self, device: torch.device) -> TorchActing | NumpyActorCritic:
        """What collection calls for actions and values with numpy observations: a numpy
        copy of the current weights for twin-MLP policies on the CPU, else this network.
        Take a fresh one after every update (the copy does not follow the weights)."""
        if self.twin and device.type == "cpu":
            return NumpyActorCritic(self)
        return TorchActing(self, device)


class TorchActing:
    """:meth:`ActorCritic.act` / :meth:`ActorCritic.value` on numpy observations."""

    def __init__(self, policy: ActorCritic, device: torch.device) -> None:
        self.policy, self.device = policy, device

    def act(self, obs: Any, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.policy.act(to_tensor(obs, self.device), rng)

    @torch.no_grad()
    def value(self, obs: Any) -> np.ndarray:
        return self.policy.value(to_tensor(obs, self.device)).float().cpu().numpy()


class NumpyActorCritic:
    """A numpy copy of a twin-MLP :class:`ActorCritic` (actor and critic torsos, action
    and value heads), computing what :meth:`ActorCritic.act` and :meth:`ActorCritic.value`
    compute, in float32, to rounding (~1e-7; tested). Sampling is the head's own."""

    def __init__(self, policy: ActorCritic) -> None:
        def arr(t: torch.Tensor) -> np.ndarray:
            return t.detach().cpu().float().numpy().copy()

        torso = policy.torso
        assert isinstance(torso, TwinMLP), "only twin-MLP policies have a numpy copy"
        self.layers = [
            (arr(torso._parameters[w]), arr(torso._parameters[b])) for w, b in torso.names
        ]
        self.relu = torso.activation_name == "relu"
        self.head = policy.head
        if isinstance(policy.head, CategoricalHead):
            self.w_pi, self.b_pi = arr(policy.head.logits.weight.t()), arr(policy.head.logits.bias)
            self.log_std = None
        else:
            self.w_pi, self.b_pi = arr(policy.head.mean.weight.t()), arr(policy.head.mean.bias)
            self.log_std = arr(policy.head.log_std)
        self.w_v, self.b_v = arr(policy.value_head.weight.t()), arr(policy.value_head.bias)

    def _features(self, obs: np.ndarray) -> np.ndarray:
        """(2, B, hidden): actor and critic features, as :class:`TwinMLP` computes them."""
        h = np.asarray(obs, dtype=np.float32).reshape(len(obs), -1)
        for w, b in self.layers:  # (B, in) or (2, B, in) @ (2, in, out) -> (2, B, out)
            h = np.matmul(h, w)
            h += b
            h = np.maximum(h, 0.0, out=h) if self.relu else np.tanh(h, out=h)
        return h

    def act(
        self, obs: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        h = self._features(obs)
        out = h[0] @ self.w_pi + self.b_pi
        if self.log_std is None:  # log-softmax
            out -= out.max(axis=1, keepdims=True)
            out -= np.log(np.exp(out).sum(axis=1, keepdims=True))
        else:
            out = np.concatenate([out, np.broadcast_to(self.log_std, out.shape)], axis=1)
        actions, log_probs = self.head.sample(out, rng, False)
        return actions, log_probs, (h[1] @ self.w_v + self.b_v)[:, 0]

    def value(self, obs: np.ndarray) -> np.ndarray:
        return (self._features(obs)[1] @ self.w_v + self.b_v)[:, 0]
