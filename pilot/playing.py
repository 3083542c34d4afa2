"""Loading a trained agent and acting with it, shared by `pilot watch` and `pilot eval`.

Both commands check every argument — numbers, the device's name, the target's checkpoint
metadata, where results go — before anything imports torch, so a mistake is answered at
once and nothing plays for minutes only to be refused at the end.
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pilot.errors import UserError, close_matches

_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def plural(n: int, word: str) -> str:
    """``1 episode``, ``3 episodes``, ``1,800 frames``."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def check_at_least(value: float | None, least: float, flag: str) -> None:
    if value is not None and value < least:
        raise UserError(f"{flag} must be at least {least:g}, got {value:g}")


def check_device(name: str) -> None:
    """The device's spelling (whether CUDA is there is asked of torch when loading)."""
    if not _DEVICE.match(name):
        hint = close_matches(name, ["auto", "cpu", "cuda"])
        raise UserError(f"unknown device '{name}'{hint}; use auto, cpu, cuda or cuda:N")


def add_builtin_flags(parser: argparse.ArgumentParser) -> None:
    """``--env`` and ``--set``: the env and config of a built-in agent played by name."""
    parser.add_argument(
        "--env", help="env id, for a built-in agent such as modular (see pilot list)"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a built-in agent's config value (repeatable), such as tracker=stanley",
    )


def read_target(
    target: str, env_id: str | None = None, overrides: list[str] | None = None
) -> dict[str, Any]:
    """The checkpoint metadata behind a run directory, checkpoint folder or file, checked
    without loading the weights (and without torch): a path that is not a pilot checkpoint,
    or one for an unknown algorithm or env, is a UserError. A built-in agent's name
    (``modular``) with ``env_id`` and ``overrides`` gives its metadata and checked config."""
    from pilot.agents import ALGORITHMS, BUILTIN
    from pilot.agents.common import checkpoint

    if target in BUILTIN and not Path(target).exists():
        return _builtin_target(target, env_id, overrides or [])
    if env_id is not None or overrides:
        raise UserError("--env and --set apply to built-in agents; a checkpoint knows its env")

    meta = checkpoint.read_meta(target)
    pt = checkpoint.resolve(target)
    if not pt.is_file():
        raise UserError(f"checkpoint file missing: {pt}")
    for key in ("algo", "env_id", "config"):
        if key not in meta:
            raise UserError(f"{pt} metadata lacks '{key}': not a pilot agent checkpoint")
    if meta["algo"] not in ALGORITHMS:
        raise UserError(f"{pt} was written by an unknown algorithm '{meta['algo']}'")
    from pilot.envs import check_id

    check_id(meta["env_id"])
    meta["_path"] = pt
    return meta


def _builtin_target(name: str, env_id: str | None, overrides: list[str]) -> dict[str, Any]:
    from pilot.agents import get_builtin
    from pilot.config import parse_overrides
    from pilot.envs import check_id

    if env_id is None:
        raise UserError(
            f"built-in agent '{name}' needs --env, e.g. --env pilot/Driving-Intersection-v0"
        )
    check_id(env_id)
    cls = get_builtin(name)
    config = cls.configure(env_id, parse_overrides(overrides))
    return {
        "algo": name,
        "env_id": env_id,
        "config": {"env": {}},
        "step": 0,
        "_builtin": (cls, config),
        "_path": Path("runs") / f"{env_id.replace('/', '_')}__{name}" / name,
    }


def training_step(meta: dict[str, Any]) -> int | None:
    """The step the target's checkpoint was saved at; None for a built-in agent, which is
    not trained (its metadata's step is a placeholder)."""
    return None if "_builtin" in meta else int(meta["step"])


def trained_label(meta: dict[str, Any], prefix: str = "checkpoint ") -> str:
    """How far the target was trained, for people: "checkpoint step N" (``prefix`` and the
    step), or "built-in"."""
    step = training_step(meta)
    return "built-in" if step is None else f"{prefix}step {step:,}"


def default_folder(meta: dict[str, Any]) -> Path:
    """The run directory of a checkpoint, or the checkpoint's own folder outside a run
    (for a built-in agent: ``runs/<env>__<name>``)."""
    from pilot.runs import run_of_checkpoint

    if "_builtin" in meta:
        return meta["_path"].parent

    run = run_of_checkpoint(meta["_path"])
    return run.path if run is not None else meta["_path"].parent


def check_writable(path: Path, flag: str) -> None:
    """``path`` can be created: its nearest existing folder is a folder we may write in."""
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"cannot write {flag} {path}: {parent} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(dir=parent, prefix=".pilot-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UserError(
            f"cannot write {flag} {path}: {parent} is not writable ({exc.strerror})"
        ) from None


def load_for_playing(target: str, device: str, meta: dict[str, Any] | None = None):
    """``(agent, checkpoint)``; the first thing that imports torch, so it comes last. A
    built-in agent (``meta`` from :func:`read_target`) is built from its config."""
    if meta is not None and "_builtin" in meta:
        from types import SimpleNamespace

        cls, config = meta["_builtin"]
        agent = cls(meta["env_id"], config)
        return agent, SimpleNamespace(path=f"built-in {meta['algo']}")
    import torch

    from pilot.agents import load_agent

    count = torch.cuda.device_count()
    if device.startswith("cuda:") and count and int(device[5:]) >= count:
        raise UserError(f"--device {device}: this machine has {plural(count, 'CUDA device')}")
    return load_agent(target, device=device)


def atari_actions(meta: dict[str, Any], protocol: str) -> tuple[bool, str]:
    """(play on the full 18-action set, how the agent's actions map onto it).

    Machado et al. (2018) play on the full action set; an agent trained on the game's
    minimal set keeps choosing among its own actions, each sent as the same ALE action's
    index in the full set (ε's random actions are drawn from all 18). DeepMind's protocol
    keeps the agent's own set.
    """
    from pilot.envs.atari.env import resolve_settings

    trained = meta["config"].get("env") or {}
    agent_full = resolve_settings(
        protocol=trained.get("protocol", "deepmind"),
        full_action_space=trained.get("full_action_space"),
    ).full_action_space
    if "_builtin" in meta:  # a built-in agent acts in the protocol's own action set
        return resolve_settings(protocol=protocol).full_action_space, "none"
    if protocol != "machado" or agent_full:
        return agent_full, "none"
    if meta["algo"] == "mcts":
        raise UserError(
            "--protocol machado plays on the full 18-action set, but this MCTS agent searches "
            "through the env in the minimal set it was trained on; use --protocol deepmind"
        )
    return True, "minimal->full"


def play_env(meta: dict[str, Any], protocol: str | None) -> tuple[dict[str, Any], str | None, str]:
    """``(env kwargs, protocol, action mapping)`` to play ``meta``'s agent (from
    :func:`read_target`) in evaluation: the env settings it was trained with, and on Atari
    ``protocol`` (default: the one it was trained with) with its action set."""
    from pilot.envs import is_atari

    env_kwargs = {k: v for k, v in (meta["config"].get("env") or {}).items() if k != "training"}
    if not is_atari(meta["env_id"]):
        return env_kwargs, None, "none"
    protocol = protocol or env_kwargs.get("protocol", "deepmind")
    env_kwargs["protocol"] = protocol
    env_kwargs["full_action_space"], mapping = atari_actions(meta, protocol)
    return env_kwargs, protocol, mapping


# ----------------------------------------------------------------------------- acting
def add_acting_flags(parser: argparse.ArgumentParser, default: str) -> None:
    """``--deterministic`` / ``--stochastic`` / ``--epsilon``: how actions are chosen."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--deterministic", action="store_true", help="the agent's greedy/mean action, no ε"
    )
    group.add_argument(
        "--stochastic", action="store_true", help="sample actions from the agent's policy"
    )
    group.add_argument(
        "--epsilon",
        type=float,
        metavar="E",
        help=f"ε-greedy around the greedy action with this ε ({default})",
    )


def check_epsilon(epsilon: float | None) -> None:
    if epsilon is not None and not 0.0 <= epsilon <= 1.0:
        raise UserError(f"--epsilon must lie in [0, 1], got {epsilon:g}")


@dataclass(frozen=True)
class Acting:
    """How actions are chosen: the agent's greedy action or a sample from its policy, and
    the ε of an ε-greedy layer around it (0: none)."""

    sample: bool
    epsilon: float
    source: str = ""  # where ε comes from, e.g. "deepmind protocol"

    def describe(self) -> str:
        if self.sample:
            return "actions sampled from the policy"
        if self.epsilon > 0:
            return f"ε-greedy, ε = {self.epsilon:g} ({self.source})"
        return "greedy actions"


def choose_acting(args: argparse.Namespace, env_id: str, protocol: str | None) -> Acting:
    """Atari plays ε-greedy with its protocol's ε unless told otherwise (a greedy agent
    that never presses FIRE would play a whole 27,000-step game); other envs play greedy."""
    check_epsilon(args.epsilon)
    if args.stochastic:
        return Acting(sample=True, epsilon=0.0)
    if args.deterministic:
        return Acting(sample=False, epsilon=0.0)
    if args.epsilon is not None:
        return Acting(sample=False, epsilon=args.epsilon, source="--epsilon")
    from pilot.envs import is_atari

    if is_atari(env_id):
        from pilot.envs.atari.env import EVAL_EPSILON

        name = protocol or "deepmind"
        return Acting(sample=False, epsilon=EVAL_EPSILON[name], source=f"{name} protocol")
    return Acting(sample=False, epsilon=0.0)


def act(agent: Any, batch: Any, deterministic: bool, envs: list) -> Any:
    """Actions for a batch; a searching agent (MCTS) also gets the live envs to plan from."""
    if agent.uses_simulator:
        return agent.act(batch, deterministic=deterministic, envs=envs)
    return agent.act(batch, deterministic=deterministic)


def policy(agent: Any, sample: bool, table: Any = None) -> Any:
    """``policy(obs, envs) -> actions`` for evaluation: the agent's greedy (or sampled)
    actions, sent through ``table`` (minimal → full action-set indices) when given."""

    def play(obs: Any, envs: list) -> Any:
        actions = act(agent, obs, not sample, envs)
        return actions if table is None else table[actions]

    return play


def batch1(obs: Any) -> Any:
    import numpy as np

    if isinstance(obs, dict):
        return {k: np.asarray(v)[None] for k, v in obs.items()}
    return np.asarray(obs)[None]


# ----------------------------------------------------------------------------- explaining
EXPLAIN_METHODS = ("ig", "gradcam")


def image_keys(space: Any) -> list[str | None]:
    """The image inputs of an observation space — uint8 arrays of three dimensions, Atari
    frame stacks ``(C, H, W)`` or cameras ``(H, W, C)``, the ones the agents' CNNs read —
    by key for a Dict space, ``[None]`` for an image space itself, ``[]`` for none. Asked
    of the space alone, so it answers before torch loads."""
    import numpy as np
    from gymnasium import spaces

    def image(s: Any) -> bool:
        return isinstance(s, spaces.Box) and s.dtype == np.uint8 and len(s.shape) == 3

    if isinstance(space, spaces.Dict):
        return [k for k, s in space.spaces.items() if image(s)]
    return [None] if image(space) else []


def check_explainable(space: Any, env_id: str) -> None:
    """``--explain`` needs an image the network reads; refuse in one line otherwise."""
    if not image_keys(space):
        raise UserError(
            f"--explain maps saliency over an image input (Atari frames, a driving camera); "
            f"{env_id} observations have none"
        )


def _display_image(obs: Any) -> Any:
    """The picture a heat map is drawn over, (H, W, 3) uint8: a frame stack's latest frame
    (channel-first stacks as Atari's, or channel-last), a camera image as it is."""
    import numpy as np

    x = np.asarray(obs)
    last = x.shape[-1] <= 4 < x.shape[0]  # (H, W, C), the torsos' rule
    if last:
        x = x if x.shape[-1] == 3 else x[..., -1]
    else:
        x = x[-1] if x.shape[0] != 3 else np.moveaxis(x, 0, -1)
    if x.ndim == 2:
        x = np.repeat(x[..., None], 3, axis=2)
    return x.astype(np.uint8)


class ActionExplainer:
    """Saliency maps of the action an agent chose: the chosen action's logit or Q-value
    (discrete), or its means signed by the action taken (continuous), over each image input.

    Returns data — ``[(title, picture, heat)]`` with ``picture`` (H, W, 3) uint8 and
    ``heat`` (H, W) in [0, 1] at the input's resolution — and leaves drawing to the caller.
    """

    def __init__(self, agent: Any, method: str, space: Any) -> None:
        from pilot.eval.saliency import Saliency

        self.agent, self.method = agent, method
        self.keys = image_keys(space)
        dict_obs = self.keys != [None]
        self.saliency = Saliency(
            agent.action_scores,
            method,
            image_keys=self.keys if dict_obs else None,
            network=list(agent.modules().values()),
        )

    def __call__(self, batch: Any, action: Any) -> list[tuple[str, Any, Any]]:
        import numpy as np

        from pilot.agents.common.networks import to_tensor

        obs = to_tensor(batch, self.agent.device)
        action = np.asarray(action)
        if action.ndim == 0:  # a discrete action: its score
            target: Any = int(action)
        else:  # a continuous one: its means, each signed the way the action went
            import torch

            sign = torch.as_tensor(np.sign(action), dtype=torch.float32, device=self.agent.device)
            target = lambda scores: (scores * sign).sum(dim=1)  # noqa: E731
        maps = self.saliency(obs, target)
        out = []
        for key in self.keys:
            heat = (maps if key is None else maps[key])[0]
            picture = _display_image((batch if key is None else batch[key])[0])
            name = {"ig": "integrated gradients", "gradcam": "Grad-CAM"}[self.method]
            out.append((f"{name}{'' if key is None else f' ({key})'}", picture, heat))
        return out
