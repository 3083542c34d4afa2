"""The outcome of every learning test, as a function of the agent seed.

A learning test trains an agent and compares a number with a bar. Float results differ
between CPUs (AVX2 vs AVX-512 kernels, thread counts), so a bar tuned on one seed on one
machine is a coin flip on another: each bar is set from the outcome's distribution over
many seeds. The tests call these functions with one seed and assert; ``bench/learning_seeds.py``
calls them over many seeds (and with learning switched off, ``broken=True``: learning rate
0) and prints the distribution that the comments beside the tests quote.

Every function returns a dict of plain floats.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import torch

import pilot.envs  # noqa: F401 - registers the pilot/... ids
from pilot.agents import build_config, get_algorithm
from pilot.agents.common.recorder import Recorder
from pilot.envs import make_env
from pilot.eval.evaluate import run_episodes

NO_LEARNING = {"learning_rate": 0.0}


def make_agent(algo: str, env_id: str, seed: int = 0, broken: bool = False, **overrides):
    """An agent with its preset for ``env_id``; ``broken`` freezes its weights (lr 0)."""
    if broken:
        overrides = {**overrides, **NO_LEARNING, **({"lr_end": None} if algo == "dqn" else {})}
    config = build_config(algo, env_id, overrides=overrides)
    return get_algorithm(algo)(env_id, config, seed=seed, device="cpu")


def train(agent, steps: int | None = None) -> Recorder:
    steps = agent.config.steps if steps is None else steps
    recorder = Recorder(None, steps)
    agent.learn(steps, recorder)
    return recorder


def pg_values(agent, obs) -> np.ndarray:
    with torch.no_grad():
        return agent.policy.value(torch.as_tensor(np.asarray(obs, np.float32))).numpy()


def dqn_q(agent, obs) -> np.ndarray:
    with torch.no_grad():
        return agent.q_values(torch.as_tensor(np.asarray(obs))).numpy()


# --- probes: policy gradient ---------------------------------------------------------------
def pg_probe(algo: str, probe: str, seed: int = 0, broken: bool = False) -> dict[str, float]:
    """Error of a policy-gradient agent on one probe (lower is better)."""
    if probe == "constant":
        agent = make_agent(algo, "pilot/Probe-Constant-v0", seed, broken)
        train(agent, 5_000)
        return {"err": float(abs(pg_values(agent, [[0.0]])[0] - 1.0))}
    if probe == "obs_reward":
        agent = make_agent(algo, "pilot/Probe-ObsReward-v0", seed, broken)
        train(agent, 5_000)
        return {"err": float(np.abs(pg_values(agent, [[-1.0], [1.0]]) - [-1, 1]).max())}
    if probe == "discount":
        # γ = 0.5 so that V(first) = γ is far from the undiscounted answer 1.
        agent = make_agent(algo, "pilot/Probe-Discount-v0", seed, broken, gamma=0.5)
        train(agent, 5_000)
        return {"err": float(np.abs(pg_values(agent, [[0.0], [1.0]]) - [0.5, 1.0]).max())}
    if probe == "identity":
        agent = make_agent(algo, "pilot/Probe-Identity-v0", seed, broken)
        train(agent)
        probs = agent.action_distribution(np.arange(4))
        return {
            "correct": float((probs.argmax(axis=1) == np.arange(4)).sum()),
            "p_min": float(probs[np.arange(4), np.arange(4)].min()),
            "acts_right": float((agent.act(np.arange(4)) == np.arange(4)).sum()),
        }
    if probe == "continuous":
        agent = make_agent(algo, "pilot/Probe-ContinuousTarget-v0", seed, broken)
        train(agent)
        targets = np.linspace(-0.9, 0.9, 7, dtype=np.float32)[:, None]
        actions = agent.act(targets)
        return {
            "err": float(np.abs(actions - targets).max()),
            "log_std": float(agent.policy.head.log_std.item()),
        }
    raise ValueError(probe)


# --- probes: DQN ---------------------------------------------------------------------------
DQN_SWITCHES = {
    "double-dueling-per-nstep": {
        "double_q": True,
        "dueling": True,
        "prioritized": True,
        "n_step": 3,
    },
    "c51": {
        "distributional": True,
        "double_q": True,
        "dueling": True,
        "n_step": 2,
        "v_min": -2.0,
        "v_max": 2.0,
    },
}


def dqn_probe(
    probe: str, seed: int = 0, broken: bool = False, switches: str = ""
) -> dict[str, float]:
    """Error of DQN's Q-values on one probe (lower is better)."""
    env_id = {
        "constant": "pilot/Probe-Constant-v0",
        "obs_reward": "pilot/Probe-ObsReward-v0",
        "discount": "pilot/Probe-Discount-v0",
        "identity": "pilot/Probe-Identity-v0",
    }[probe]
    agent = make_agent("dqn", env_id, seed, broken, **DQN_SWITCHES.get(switches, {}))
    rec = train(agent)
    assert rec.metrics["train/loss"], "the agent never updated"
    gamma = agent.config.gamma
    if probe == "constant":
        return {"err": float(np.abs(dqn_q(agent, [[0.0]]) - 1.0).max())}
    if probe == "obs_reward":
        return {"err": float(np.abs(dqn_q(agent, [[-1.0], [1.0]]).max(1) - [-1, 1]).max())}
    if probe == "discount":
        return {"err": float(np.abs(dqn_q(agent, [[0.0], [1.0]]).max(1) - [gamma, 1]).max())}
    # identity: Q(k, k) = 1 + γV and Q(k, other) = γV with V = 1 / (1 - γ), because the
    # 10-step time limit is a truncation (bootstrapped), not a termination.
    v = 1 / (1 - gamma)
    want = np.full((4, 4), gamma * v) + np.eye(4)
    q = dqn_q(agent, np.arange(4))
    return {
        "correct": float((agent.act(np.arange(4)) == np.arange(4)).sum()),
        "err": float(np.abs(q - want).max()),
    }


# --- CartPole ------------------------------------------------------------------------------
def cartpole_mean(act: Callable, n: int = 20) -> float:
    """Mean return of ``n`` deterministic episodes on seeds no agent trains on."""
    results = run_episodes(lambda obs, envs: act(obs), "CartPole-v1", range(10_000, 10_000 + n), 1)
    return float(np.mean([r.ret for r in results]))


def cartpole(algo: str, seed: int = 0, broken: bool = False) -> dict[str, float]:
    """Greedy mean return over 20 held-out episodes after the CartPole preset's budget."""
    torch.set_num_threads(1)
    agent = make_agent(algo, "CartPole-v1", seed, broken)
    train(agent)
    return {"eval_mean": cartpole_mean(lambda obs: agent.act(obs, deterministic=True))}


# --- navigation ----------------------------------------------------------------------------
NAV_HELD_OUT = range(1_000_000, 1_000_200)  # maps no agent trains on


def nav_success(act: Callable, env_id: str, n: int, seeds: range = NAV_HELD_OUT) -> float:
    results = run_episodes(act, env_id, seeds=seeds[:n], episodes_per_seed=1)
    return float(np.mean([r.terminated for r in results]))


def navigation(
    env_id: str, algo: str, n: int, seed: int = 0, broken: bool = False
) -> dict[str, float]:
    """Greedy success on ``n`` held-out maps before and after the preset's budget."""
    torch.set_num_threads(1)
    agent = make_agent(algo, env_id, seed, broken)

    def greedy(obs, envs):
        return agent.act(obs, deterministic=True)

    before = nav_success(greedy, env_id, n)
    train(agent)
    return {"before": before, "after": nav_success(greedy, env_id, n)}


# --- MCTS ----------------------------------------------------------------------------------
GRID = "pilot/Nav-Grid-v0"
MCTS_HELD_OUT = range(1_000_000, 1_000_100)


def mcts_success(agent, simulations: int | None, n: int = 100) -> float:
    """Success on held-out maps searching with ``simulations`` (None: the network alone)."""
    if simulations is None:

        def act(obs, envs):
            return agent.act(obs, deterministic=True)
    else:
        agent.config = dataclasses.replace(agent.config, eval_simulations=simulations)

        def act(obs, envs):
            return agent.act(obs, deterministic=True, envs=envs)

    return nav_success(act, GRID, n, MCTS_HELD_OUT)


def mcts_navigation(seed: int = 0, broken: bool = False) -> dict[str, float]:
    """10k env steps of self-play; the search and the network alone before and after,
    and PPO / DQN at the same 10k env steps."""
    torch.set_num_threads(1)
    agent = make_agent("mcts", GRID, seed, broken)
    out = {"before_search": mcts_success(agent, 4), "before_net": mcts_success(agent, None)}
    train(agent, 10_000)
    out["after_search"] = mcts_success(agent, 4)
    out["after_net"] = mcts_success(agent, None)
    out["with_search"] = mcts_success(agent, 8)
    for algo in ("ppo", "dqn"):
        other = make_agent(algo, GRID, seed)
        train(other, 10_000)
        out[algo] = nav_success(
            lambda obs, envs, a=other: a.act(obs, deterministic=True), GRID, 100, MCTS_HELD_OUT
        )
    return out


# --- driving -------------------------------------------------------------------------------
LANEKEEP = "pilot/Driving-LaneKeep-v0"
# Road networks and routes come from the reset seed; training envs are seeded from the
# agent seed (0, 1, 2, ...), so these routes are new to the agent.
DRIVING_HELD_OUT = range(1_000_000, 1_000_020)


def drive(agent, seeds: range = DRIVING_HELD_OUT) -> dict[str, float]:
    """Mean route completion (0..1), return and speed (m/s) of deterministic episodes, and
    the share of their time above the speed limit."""
    env = make_env(LANEKEEP, **agent.config.env)
    completion, returns, speeds, fast, time = [], [], [], 0.0, 0.0
    for s in seeds:
        obs, _ = env.reset(seed=s)
        total, done = 0.0, False
        while not done:
            action = agent.act({k: v[None] for k, v in obs.items()}, deterministic=True)[0]
            obs, reward, terminated, truncated, info = env.step(action)
            total += float(reward)
            speeds.append(info["speed"])
            done = terminated or truncated
        completion.append(info["route_completion"])
        returns.append(total)
        fast, time = fast + info["speeding_time"], time + info["time"]
    env.close()
    return {
        "completion": float(np.mean(completion)),
        "return": float(np.mean(returns)),
        "speed": float(np.mean(speeds)),
        "speeding": fast / time,
    }


def lane_keeping(seed: int = 0, broken: bool = False, steps: int = 24_576) -> dict[str, float]:
    """PPO on camera + lidar + state, a reduced budget, 20 held-out routes before/after."""
    torch.set_num_threads(1)
    agent = make_agent("ppo", LANEKEEP, seed, broken, steps=steps)
    before = drive(agent)
    train(agent)
    after = drive(agent)
    return {
        "before": before["completion"],
        "after": after["completion"],
        "before_return": before["return"],
        "after_return": after["return"],
        "speed": after["speed"],
        "speeding": after["speeding"],
    }


def lane_keeping_speed(seed: int = 0, broken: bool = False, steps: int = 81_920):
    """PPO on the ego state alone, trained through ``pilot train`` (the CLI, its preset
    and its run directory), then driven on the held-out routes from the saved checkpoint:
    route completion, mean speed and the share of time above the speed limit."""
    import tempfile

    from pilot import cli
    from pilot.agents import load_agent
    from pilot.runs import run_dirs

    argv = ["train", "ppo", "--env", LANEKEEP, "--steps", str(steps), "--seed", str(seed)]
    argv += ["--set", "env.sensors=[state]", "--no-progress", "--threads", "1"]
    if broken:
        argv += ["--set", "learning_rate=0"]
    with tempfile.TemporaryDirectory() as tmp:
        if cli.main([*argv, "--runs-dir", tmp]) != 0:
            raise RuntimeError("pilot train failed")
        (run,) = run_dirs(tmp)
        agent, _ = load_agent(run, device="cpu")
        out = drive(agent)
    return {"completion": out["completion"], "speed": out["speed"], "speeding": out["speeding"]}


# --- perception: the light read from crops ---------------------------------------------------
#: the light colours painted into the synthetic images (none, green, yellow, red)
PAINT = {1: (25, 230, 50), 2: (255, 205, 0), 3: (240, 25, 25)}


def light_frames(n: int, rng: np.random.Generator, geometry) -> list[dict]:
    """Synthetic camera frames for the light as a car sees it near its stop line: sky
    over road, the governing light's far lamp painted in its colour where its ego-frame
    position (``light_heads``) projects (its near head, 2-9 m ahead and 3.5 m up, is above
    the image), and beside it, as at a junction, the lamps of three other approaches in
    random colours, 3-10 pixels to either side. With no light (a quarter of the frames)
    the three stand where a far lamp would. Only where the lamps are tells the colour."""
    from pilot.perception.sensors import project

    h, w = geometry.image_hw
    K, T = np.array(geometry.camera_K), np.array(geometry.camera_T)
    out = []
    for _ in range(n):
        image = np.zeros((h, w, 3), np.uint8)
        image[: h // 2], image[h // 2 :] = (150, 175, 205), (80, 80, 85)
        light = int(rng.integers(0, 4))
        x = rng.uniform(2.0, 9.0)
        heads = np.array(
            [(x, rng.uniform(-4.0, -2.0), 3.5), (x + 16.0, rng.uniform(-1.0, 1.0), 5.0)],
            np.float32,
        )
        lamp = project(heads[1:], K, T)[0]
        half = max(1, round(K[1, 1] * 0.6 / heads[1, 0]))
        spots = [
            (lamp + (side * rng.uniform(3, 10), rng.uniform(-2, 2)), int(rng.integers(1, 4)))
            for side in rng.choice([-1, 1], 3)
        ]
        if light:
            spots.append((lamp, light))
        else:
            heads[:] = np.nan
        for (u, v), colour in spots:
            r, c = round(v), round(u)
            image[max(r - half, 0) : r + half + 1, max(c - half, 0) : c + half + 1] = PAINT[colour]
        out.append(
            {
                "camera": image,
                "lidar_bev": np.zeros((2, *geometry.grid.shape), np.uint8),
                "bev": np.zeros((5, *geometry.grid.shape), np.uint8),
                "light": np.int8(light),
                "light_heads": heads,
                "waypoints": np.zeros((geometry.waypoints, 2), np.float32),
                "boxes": np.zeros((0, 7), np.float32),
                "box_class": np.zeros(0, np.uint8),
            }
        )
    return out


def light_crop(
    seed: int = 0, broken: bool = False, steps: int = 300, heads=("crop", "pooled")
) -> dict[str, float]:
    """Balanced light accuracy (mean recall over the four states) on 200 held-out
    synthetic frames (:func:`light_frames`) of a small camera network trained ``steps``
    steps on 400 frames with the light read from crops (``crop``), and of the same
    network with the pooled light head (``pooled``)."""
    from test_perception_model import geometry

    from pilot.perception.batches import FrameBank
    from pilot.perception.train import build_config
    from pilot.perception.train import train as train_net

    torch.set_num_threads(1)
    geo = geometry(pitch=8.0)  # the model tests' 48 × 64 camera, 32 × 32 grid
    data = np.random.default_rng([seed, 7])  # the frames change with the seed too
    bank = FrameBank.from_frames(light_frames(400, data, geo))
    held = FrameBank.from_frames(light_frames(200, data, geo))
    truth = held.arrays["light"].astype(int)
    out = {}
    for name in heads:
        crop = name == "crop"
        config = build_config(
            overrides={
                "model": {
                    "modalities": "camera",
                    "channels": 8,
                    "camera_widths": [8, 16, 16],
                    "head_channels": 8,
                    "light_crop": crop,
                },
                "steps": steps,
                "batch_size": 16,
                "lr": 0.0 if broken else 3e-3,
                "warmup": 10,
                "log_every": steps,
                "seed": seed,
            }
        )
        net, _ = train_net(bank, geo, config, None, torch.device("cpu"), progress=False)
        batch = held.batch(np.arange(len(held)), geo, config.model)
        with torch.no_grad():
            guess = net(batch["camera"], None, batch.get("light_heads"))["light"].argmax(1)
        guess = guess.numpy()
        out[name] = float(np.mean([np.mean(guess[truth == k] == k) for k in np.unique(truth)]))
    return out


# --- the registry the seed sweep reads ------------------------------------------------------
CASES: dict[str, Callable[..., dict[str, float]]] = {}
for _algo in ("ppo", "a2c", "reinforce"):
    for _probe in ("constant", "obs_reward", "discount", "identity"):
        CASES[f"pg-{_probe}-{_algo}"] = lambda seed, broken=False, a=_algo, p=_probe: pg_probe(
            a, p, seed, broken
        )
for _algo in ("ppo", "reinforce"):
    CASES[f"pg-continuous-{_algo}"] = lambda seed, broken=False, a=_algo: pg_probe(
        a, "continuous", seed, broken
    )
for _probe in ("constant", "obs_reward", "discount", "identity"):
    CASES[f"dqn-{_probe}"] = lambda seed, broken=False, p=_probe: dqn_probe(p, seed, broken)
for _name in DQN_SWITCHES:
    CASES[f"dqn-discount-{_name}"] = lambda seed, broken=False, s=_name: dqn_probe(
        "discount", seed, broken, s
    )
for _algo in ("ppo", "a2c", "reinforce", "dqn"):
    CASES[f"cartpole-{_algo}"] = lambda seed, broken=False, a=_algo: cartpole(a, seed, broken)
CASES["nav-grid-dqn"] = lambda seed, broken=False: navigation(GRID, "dqn", 200, seed, broken)
CASES["nav-grid-ppo"] = lambda seed, broken=False: navigation(GRID, "ppo", 200, seed, broken)
CASES["nav-continuous-ppo"] = lambda seed, broken=False: navigation(
    "pilot/Nav-Continuous-v0", "ppo", 100, seed, broken
)
CASES["mcts-navigation"] = mcts_navigation
CASES["driving-lanekeep-ppo"] = lane_keeping
CASES["driving-lanekeep-speed-cli"] = lane_keeping_speed
CASES["perception-light-crop"] = light_crop
