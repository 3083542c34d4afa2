"""Learned perception as the modular stack's input: the inputs built from a live env are
the dataset's arrays for the same frame, the percept is the decoded network output moved
to the world frame, velocities come from associating consecutive percepts, and a run
that is not a perception network is a one-line error. A tiny network trained on a few
frames collected here stands in for a real run (its boxes are noise, which is all the
plumbing checks need)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import pilot.envs
from pilot.agents.common import checkpoint
from pilot.errors import UserError
from pilot.perception.batches import FrameBank
from pilot.perception.dataset import PerceptionDataset, collect
from pilot.perception.episodes import SCENARIOS, CollectConfig, record_episode
from pilot.perception.grid import GridConfig
from pilot.perception.heads import decode
from pilot.perception.labels import LabelConfig, to_ego
from pilot.perception.model import Geometry
from pilot.perception.train import build_config, train
from pilot.planning.stack.behaviour import STATIC
from pilot.planning.stack.learned import (
    LIGHTS,
    LearnedPerception,
    Tracks,
    apart,
    to_world,
    update_tracks,
)
from pilot.planning.stack.perception import NO_LIGHT

torch.set_num_threads(1)

SEED = 7  # objects on the grid in every frame, a stop line ahead in the last two
#: a coarse grid and few frames keep collection and training to seconds
CFG = CollectConfig(frames=4, every=10, labels=LabelConfig(grid=GridConfig(0.5, 28.0, 4.0, 16.0)))
#: the association gate of the live percepts: the frames are 1 s apart and the car drives
#: 5-6 m in between, which the tiny network's boxes (noise, standing still in the car's
#: frame) move in the world; the default 4 m left them all unassociated for some weights
GATE = 8.0


def noise() -> np.random.Generator:
    """The lidar noise generator collection gives this episode (see episodes.py)."""
    return np.random.default_rng([SEED, list(SCENARIOS).index("Intersection"), 2])


def train_tiny(root, data, **model) -> None:
    """A 4-step run on ``data`` in ``root`` whose decoder keeps every peak above 1% (so
    there are boxes to compare); ``model`` adds to the reduced network's config."""
    config = build_config(
        overrides={
            "model": {"channels": 8, "camera_widths": [8, 8, 8], "head_channels": 8, **model},
            "batch_size": 4,
            "steps": 4,
            "warmup": 0,
            "score_threshold": 0.01,
            "top_k": 16,
        }
    )
    geometry = Geometry.from_manifest(data.manifest)
    bank = FrameBank.from_dataset(data)
    train(bank, geometry, config, root, torch.device("cpu"), progress=False)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One Intersection episode collected as a dataset, and a 4-step fusion run on it."""
    root = tmp_path_factory.mktemp("learned")
    collect(root / "data", "train", ["Intersection"], [SEED], CFG)
    data = PerceptionDataset(root / "data", "train")
    train_tiny(root / "run", data)
    return root / "run", data


def drive_again(monkeypatch, calls) -> list[list]:
    """The collected episode driven again by the collection code; at each recorded frame,
    what each of ``calls`` returns for the live env."""
    envs = []
    make = pilot.envs.make_env

    def capture(*args, **kwargs):
        envs.append(make(*args, **kwargs))
        return envs[-1]

    monkeypatch.setattr(pilot.envs, "make_env", capture)
    out = []
    record_episode(
        "Intersection", SEED, CFG, on_frame=lambda: out.append([f(envs[-1]) for f in calls])
    )
    monkeypatch.setattr(pilot.envs, "make_env", make)
    return out


@pytest.fixture(scope="module")
def live(run, monkeypatch_module):
    """At each recorded frame, what two LearnedPerceptions (noise seeded as the
    collection's) build and perceive."""
    run_dir, _ = run
    built = LearnedPerception(run_dir, collect=CFG, noise=noise())
    perceiving = LearnedPerception(run_dir, collect=CFG, noise=noise(), gate=GATE)
    out = drive_again(monkeypatch_module, [built.inputs, perceiving])
    return built, perceiving, [tuple(o) for o in out]


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def test_inputs_from_a_live_env_are_the_datasets_arrays(run, live):
    _, data = run
    _, _, out = live
    assert len(out) == len(data) == CFG.frames
    for frame, (inputs, _) in zip(data, out, strict=True):
        assert set(inputs) == {"camera", "lidar", "lidar_bev"}
        for key, array in inputs.items():
            assert array.dtype == frame[key].dtype, key
            np.testing.assert_array_equal(array, frame[key], err_msg=key)
        assert frame["lidar_bev"][1].sum() > 0  # something stands on the grid


def test_percept_boxes_are_the_decoded_network_output_in_the_world_frame(run, live):
    _, data = run
    _, lp, out = live
    model, config = lp.model, lp.config
    prev, dropped = None, 0
    for frame, (_, percept) in zip(data, out, strict=True):
        with torch.no_grad():
            raw = model(
                torch.from_numpy(frame["camera"][None]), torch.from_numpy(frame["lidar_bev"][None])
            )
        (found,) = decode(
            raw["heatmap"],
            raw["reg"],
            model.geometry,
            config.model.bev_stride,
            config.top_k,
            config.score_threshold,
        )
        assert len(found["boxes"]) > 0
        keep = apart(found["boxes"])  # one object read as several is one box
        dropped += int(not keep.all())
        found = {key: value[keep] for key, value in found.items()}
        x0, y0, yaw = frame["pose"]
        c, s = math.cos(yaw), math.sin(yaw)
        ex, ey = found["boxes"][:, 0], found["boxes"][:, 1]
        assert percept.pose == tuple(frame["pose"]) and percept.t == pytest.approx(frame["time"])
        np.testing.assert_allclose(percept.boxes[:, 0], x0 + c * ex - s * ey, atol=1e-9)
        np.testing.assert_allclose(percept.boxes[:, 1], y0 + s * ex + c * ey, atol=1e-9)
        np.testing.assert_allclose(
            np.cos(percept.boxes[:, 2]), np.cos(found["boxes"][:, 2] + yaw), atol=1e-9
        )
        np.testing.assert_allclose(percept.boxes[:, 3:5], found["boxes"][:, 3:5])
        np.testing.assert_array_equal(percept.classes, found["box_class"])
        assert percept.classes.dtype == np.uint8 and percept.speed == pytest.approx(frame["speed"])
        # the light: the head's state where the map has a stop line ahead, else none
        state = LIGHTS[model.geometry.light_states[int(raw["light"][0].argmax())]]
        if frame["light"] > 0:  # the dataset's label saw a stop line within 30 m
            assert percept.light == state
            if state != NO_LIGHT:
                assert percept.light_distance == pytest.approx(frame["light_distance"], abs=1e-4)
        if percept.light == NO_LIGHT:
            assert percept.light_distance == math.inf
        # velocities: differenced against the previous call's percept
        if prev is None:
            assert not percept.boxes[:, 5:7].any()
        else:
            expected = plain_velocities(percept, prev)
            expected[percept.classes == STATIC] = 0.0  # road obstacles stand
            np.testing.assert_allclose(percept.boxes[:, 5:7], expected)
        prev = percept
    assert any(p.boxes[:, 5:7].any() for _, p in out)
    assert sum(int(f["light"]) > 0 for f in data) == 2
    assert dropped > 0  # the noise network's boxes overlap: the check was exercised


def test_a_higher_threshold_keeps_only_the_stronger_detections(run, live):
    """``threshold`` (the stack's ``perception_threshold``) replaces the run's decoding
    threshold: the boxes kept are those of the run's own decoding scored at or above it."""
    run_dir, _ = run
    built, _, out = live
    strict = LearnedPerception(run_dir, collect=CFG, threshold=0.5)
    assert built.threshold == 0.01 and strict.threshold == 0.5  # 0: the run's own
    fewer = 0
    for inputs, _ in out:
        loose, _ = built.detect(inputs)
        found, _ = strict.detect(inputs)
        kept = loose["scores"] >= 0.5
        np.testing.assert_allclose(found["boxes"], loose["boxes"][kept])
        np.testing.assert_array_equal(found["box_class"], loose["box_class"][kept])
        fewer += int(kept.sum() < len(kept))
    assert fewer > 0  # the stricter threshold did drop boxes


def test_a_crop_network_reads_the_light_where_the_map_puts_its_heads(run, monkeypatch):
    """A ``light_crop`` run gets the light heads' positions from the map with its inputs,
    the dataset's for the same frame, and its percept's light is the network's reading of
    them (the stop line within the dataset's 30 m in the last two frames)."""
    _, data = run
    crop_run = data.root.parent / "crop-run"
    train_tiny(crop_run, data, modalities="camera", light_crop=True)
    built = LearnedPerception(crop_run, collect=CFG)
    perceiving = LearnedPerception(crop_run, collect=CFG)
    out = drive_again(monkeypatch, [built.inputs, perceiving])
    model = perceiving.model
    for frame, (inputs, percept) in zip(data, out, strict=True):
        assert set(inputs) == {"camera", "light_heads"}
        np.testing.assert_array_equal(inputs["camera"], frame["camera"])
        np.testing.assert_array_equal(inputs["light_heads"], frame["light_heads"])
        assert np.isnan(frame["light_heads"]).all() == (frame["light"] == 0)
        with torch.no_grad():
            raw = model(
                torch.from_numpy(frame["camera"][None]),
                None,
                torch.from_numpy(frame["light_heads"][None]),
            )
        if frame["light"] > 0:
            assert percept.light == LIGHTS[model.geometry.light_states[int(raw["light"].argmax())]]


def test_each_route_has_its_own_lidar_noise(run):
    """The lidar noise of a route is the same played alone, after another route, or with
    another env's route interleaved, and reading it leaves the env's random stream as it
    was: a board route replayed alone plays as it did on the board. (One stream for all
    routes, as before, gave a route's frames that depended on what was played first.)"""
    run_dir, _ = run
    drive = np.array([0.0, 0.3], np.float32)

    def sweeps(before: list[int], beside: int | None = None, base: int = 0, steps: int = 3):
        env = pilot.envs.make_env("pilot/Driving-Intersection-v0")
        other = pilot.envs.make_env("pilot/Driving-Intersection-v0")
        seeing = LearnedPerception(run_dir, collect=CFG, noise=base)
        try:
            for seed in before:
                env.reset(seed=seed)
                for _ in range(steps):
                    seeing.inputs(env)
                    env.step(drive)
            env.reset(seed=11)
            if beside is not None:
                other.reset(seed=beside)
            out = []
            for _ in range(steps):
                if beside is not None:
                    seeing.inputs(other)
                    other.step(drive)
                state = env.unwrapped.np_random.bit_generator.state
                out.append(seeing.inputs(env)["lidar"])
                assert env.unwrapped.np_random.bit_generator.state == state
                env.step(drive)
        finally:
            env.close()
            other.close()
        return out

    alone = sweeps([])
    for again in (sweeps([3]), sweeps([], beside=5)):
        for a, b in zip(alone, again, strict=True):
            np.testing.assert_array_equal(a, b)
    assert not np.array_equal(alone[0], sweeps([], base=1)[0])  # the noise is there


def test_to_world_by_hand_and_as_the_inverse_of_to_ego():
    pose = (3.0, -2.0, math.radians(30))
    box = np.array([[10.0, 0.0, 0.1, 4.5, 1.8, 2.0, 0.0]])
    (x, y, yaw, length, width, vx, vy) = to_world(box, pose)[0]
    c, s = math.cos(pose[2]), math.sin(pose[2])
    assert (x, y) == pytest.approx((3.0 + 10 * c, -2.0 + 10 * s))
    assert (yaw, length, width) == pytest.approx((0.1 + pose[2], 4.5, 1.8))
    assert (vx, vy) == pytest.approx((2 * c, 2 * s))
    rows = np.random.default_rng(0).normal(size=(5, 7)) * 10
    rows[:, 2] = np.random.default_rng(1).uniform(-3, 3, 5)
    np.testing.assert_allclose(to_ego(to_world(rows, pose), pose), rows, atol=1e-9)


def _tracks(t, xy, cls, v=None, tracked=None, missed=None) -> Tracks:
    boxes = np.array([[x, y, 0, 4.5, 1.8, 0, 0] for x, y in xy], dtype=float).reshape(-1, 7)
    if v is not None:
        boxes[:, 5:7] = v
    n = len(boxes)
    return Tracks(
        t,
        boxes,
        np.array(cls, dtype=np.uint8),
        np.zeros(n, bool) if tracked is None else np.array(tracked),
        np.zeros(n) if missed is None else np.array(missed, dtype=float),
    )


def plain_velocities(now, prev) -> np.ndarray:
    """The velocities of ``now``'s boxes differenced against ``prev`` (smoothing 0)."""
    before = _tracks(prev.t, prev.boxes[:, :2], prev.classes)
    out = update_tracks(now.boxes, now.classes, now.t, before, GATE, 0.0, 0.0)
    return out.boxes[: len(now.boxes), 5:7]


def box(x, y, yaw=0.0, length=4.5, width=1.9):
    return [x, y, yaw, length, width, 0.0, 0.0]


def test_boxes_inside_better_ones_are_dropped_whatever_their_class():
    """:func:`apart` by hand: a road obstacle (1 × 2.2 m, across the lane) read also as two
    pedestrians inside it and as a car whose footprint holds its centre; a car read three
    times along its length; the boxes are best first, as decoded."""
    obstacle = box(10.0, 2.5, 0.0, 1.0, 2.2)  # 1 m along, 2.2 m across: y 1.4 to 3.6
    found = np.array(
        [
            obstacle,
            box(10.1, 3.2, 0.0, 0.6, 0.8),  # pedestrian inside it
            box(9.9, 1.6, 0.0, 0.6, 0.8),  # and another
            box(11.6, 2.8),  # a car 1.6 m on whose footprint (9.35-13.85) holds the centre
            box(30.0, 0.0),  # a car ahead
            box(31.8, 0.2),  # the same car again, 1.8 m on
            box(28.3, -0.1),
            box(30.0, 3.5),  # a car in the next lane, 3.5 m across: apart
            box(30.0, 5.2, 0.0, 0.6, 0.8),  # a pedestrian 0.3 m beyond its flank: apart
            box(10.0, 4.1, 0.0, 0.6, 0.8),  # one 0.5 m beside the obstacle: apart
        ]
    )
    keep = apart(found)
    assert keep.tolist() == [1, 0, 0, 0, 1, 0, 0, 1, 1, 1]
    # a better small box inside a worse big one: the big one goes (its footprint holds it)
    assert apart(np.array([box(5.0, 0.0, 0.0, 0.6, 0.8), box(6.0, 0.3)])).tolist() == [1, 0]
    # the footprint turns with the box: 2 m along a car turned 90° is across it
    turned = np.array([box(0.0, 0.0, math.pi / 2), box(0.0, 2.0, 0.0, 0.5, 0.5)])
    assert apart(turned).tolist() == [1, 0]
    assert apart(np.array([box(0.0, 0.0), box(0.0, 2.0, 0.0, 0.5, 0.5)])).tolist() == [1, 1]
    assert apart(np.zeros((0, 7))).shape == (0,)
    # boxes already kept come first and stay: later ones are tested against them alone
    later = np.array(found[[1, 5, 7]])  # inside the obstacle, the car again, the next lane
    assert apart(later, kept=found[keep]).tolist() == [0, 0, 0]
    assert apart(later, kept=found[[0]]).tolist() == [0, 1, 1]  # the two cars are apart
    assert apart(later, kept=np.zeros((0, 7))).tolist() == apart(later).tolist()


def test_velocities_from_two_hand_made_frames():
    """dt = 0.1 s, gate 4 m. Vehicles a, b and a pedestrian moved; a new static obstacle
    and a vehicle where the pedestrian was (another class) have no past; two vehicles
    near one old one: the nearer takes it, the other is new."""
    V, P, S = 5, 6, 7
    prev = _tracks(1.0, [(0, 0), (10, 0), (5, 5), (30, 0)], [V, V, P, V])
    now = _tracks(1.1, [(10.2, 0.1), (1, 0), (5, 5.1), (20, 20), (5.2, 5), (31, 0), (32.5, 0)],
                  [V, V, P, S, V, V, V])  # fmt: skip
    out = update_tracks(now.boxes, now.classes, 1.1, prev, 4.0, 0.0, 0.0)
    np.testing.assert_allclose(
        out.boxes[:, 5:7], [[2, 1], [10, 0], [0, 1], [0, 0], [0, 0], [10, 0], [0, 0]], atol=1e-9
    )
    np.testing.assert_array_equal(out.tracked, [1, 1, 1, 0, 0, 1, 0])
    first = update_tracks(now.boxes, now.classes, 1.1, None, 4.0, 0.0, 0.0)
    assert not first.boxes[:, 5:7].any() and not first.tracked.any()
    same_time = update_tracks(now.boxes, now.classes, 1.0, prev, 4.0, 0.0, 0.0)
    assert not same_time.boxes[:, 5:7].any()  # no time passed
    # smoothing 0.6: a box tracked before blends its old velocity in
    moving = _tracks(1.0, [(0, 0)], [V], v=[[5.0, 0.0]], tracked=[True])
    out = update_tracks(_tracks(1.1, [(0.6, 0)], [V]).boxes, [V], 1.1, moving, 4.0, 0.6, 0.0)
    np.testing.assert_allclose(out.boxes[0, 5:7], [0.6 * 5 + 0.4 * 6, 0.0])
    # a road obstacle (a still class) whose centre jittered 0.15 m stands; a car does not
    obstacle = _tracks(1.0, [(8, 2), (0, 0)], [S, V])
    later = _tracks(1.1, [(8.15, 2), (0.15, 0)], [S, V])
    out = update_tracks(later.boxes, later.classes, 1.1, obstacle, 4.0, 0.0, 0.0, (S,))
    np.testing.assert_allclose(out.boxes[:, 5:7], [[0, 0], [1.5, 0]], atol=1e-9)
    assert out.tracked.all()
    out = update_tracks(later.boxes, later.classes, 1.1, obstacle, 4.0, 0.0, 0.0)
    np.testing.assert_allclose(out.boxes[:, 5:7], [[1.5, 0], [1.5, 0]], atol=1e-9)


def test_a_box_the_network_loses_is_held_then_dropped():
    """hold 0.25 s at dt 0.1 s: a pedestrian walking at 1 m/s in x that the network stops
    finding is kept, moved on 0.1 m per frame, for two frames (missed 0.1, 0.2 s), gone at
    the third (0.3 s); one found again is matched to its held box and tracked on."""
    P = 6
    walking = _tracks(0.0, [(5.0, 2.0)], [P], v=[[1.0, 0.0]], tracked=[True])
    empty = np.zeros((0, 7))
    t1 = update_tracks(empty, [], 0.1, walking, 4.0, 0.6, 0.25)
    np.testing.assert_allclose(t1.boxes[:, :2], [[5.1, 2.0]])
    assert t1.missed == pytest.approx([0.1]) and t1.tracked.all()
    t2 = update_tracks(empty, [], 0.2, t1, 4.0, 0.6, 0.25)
    np.testing.assert_allclose(t2.boxes[:, :2], [[5.2, 2.0]])
    assert len(update_tracks(empty, [], 0.3, t2, 4.0, 0.6, 0.25).boxes) == 0
    assert len(update_tracks(empty, [], 0.1, walking, 4.0, 0.6, 0.0).boxes) == 0  # hold 0
    back = update_tracks(_tracks(0.3, [(5.3, 2.0)], [P]).boxes, [P], 0.3, t2, 4.0, 0.6, 0.25)
    assert len(back.boxes) == 1 and back.missed[0] == 0 and back.tracked[0]
    np.testing.assert_allclose(back.boxes[0, 5:7], [1.0, 0.0])  # 0.1 m in 0.1 s, as held


def test_a_run_that_is_not_a_perception_network_is_a_one_line_error(run, tmp_path):
    run_dir, _ = run
    agent = tmp_path / "agent"
    checkpoint.save(agent / "checkpoints", {"w": torch.zeros(1)}, {"step": 1, "algo": "dqn"})
    cases = [
        (tmp_path / "nowhere", "nowhere"),
        (agent, "holds a dqn agent"),
        (run_dir, "other sensors"),  # trained on a 0.5 m grid, not the default collect's
    ]
    for path, words in cases:
        with pytest.raises(UserError) as err:
            LearnedPerception(path)
        message = str(err.value)
        assert words in message and "\n" not in message, message


def test_the_stack_drives_on_a_perception_run_through_the_cli(run, tmp_path, capsys):
    """`perception=RUN_DIR` wires the network into the stack: it plays an episode, and a
    path that is not a perception run is refused in one line before anything plays."""
    import json
    import shutil

    from pilot.cli import main

    trained, data = run
    run_dir = tmp_path / "run"  # as `pilot perception train` leaves it: run.json names the data
    shutil.copytree(trained, run_dir)
    (run_dir / "run.json").write_text(json.dumps({"data": {"root": str(data.root)}}))
    (run_dir / "config.yaml").write_text("{}\n")
    base = ["eval", "modular", "--env", "pilot/Driving-Intersection-v0", "--seeds", str(SEED)]
    out = tmp_path / "eval"
    argv = [*base, "--episodes", "1", "--max-steps", "5", "--out", str(out)]
    assert main([*argv, "--set", f"perception={run_dir}"]) == 0, capsys.readouterr().err
    assert (out / "summary.json").is_file()
    assert "Driving Score" in capsys.readouterr().out
    assert main([*base, "--set", f"perception={tmp_path / 'none'}"]) == 2
    err = capsys.readouterr().err
    assert "no such perception run" in err and err.count("\n") == 1
    # the stack's perception_* keys reach the network's percept
    from pilot.planning.stack.agent import ModularAgent

    env_id = base[3]
    for on in (True, False):
        keys = {"perception": str(run_dir), "perception_exclusive": on, "perception_hold": 0.2}
        perceive = ModularAgent(env_id, ModularAgent.configure(env_id, keys))._perceive
        assert perceive.exclusive is on and perceive.hold == 0.2
