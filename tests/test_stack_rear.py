"""The learned stack's rear watch: cars behind the perception grid, found in the raw lidar
returns (:mod:`pilot.planning.stack.rear`), keep a lane change out of a car closing from
behind."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_stack_learned_perception import CFG, SEED, train_tiny

from pilot.envs import make_env
from pilot.envs.driving.sensors import Lidar
from pilot.perception.dataset import PerceptionDataset, collect
from pilot.perception.episodes import CollectConfig
from pilot.perception.labels import ego_xy, scene, to_ego
from pilot.perception.sensors import sweep
from pilot.planning.stack.agent import ModularAgent
from pilot.planning.stack.learned import LearnedPerception
from pilot.planning.stack.rear import groups, rear_boxes

HIGHWAY = "pilot/Driving-Highway-v0"


def test_groups_join_a_cars_returns_and_keep_lanes_apart():
    # one car's front face, its side sampled 1.7 m apart, and its roof 2 m behind the face
    car = np.array([[-10.0, -0.5], [-10.0, 0.5], [-11.7, 0.9], [-13.4, 0.9], [-12.0, 0.0]])
    beside = car + (0.0, 3.5)  # the same car one lane to the left
    queued = car + (-9.0, 0.0)  # the next car in the lane, 4.5 m bumper to bumper
    label = groups(np.vstack([car, beside, queued]))
    assert len(set(label[:5])) == len(set(label[5:10])) == len(set(label[10:])) == 1
    assert len({label[0], label[5], label[10]}) == 3
    assert len(groups(np.zeros((0, 2)))) == 0 and list(groups(np.zeros((1, 2)))) == [0]


def highway(vehicles: list[dict]):
    """The highway, seed 0 (the car on lane 0, lane 1 to its right), with scripted cars."""
    env = make_env(HIGHWAY)
    env.reset(seed=0, options={"vehicles": vehicles})
    return env


def test_rear_boxes_stand_where_the_cars_behind_are():
    cars = [
        {"lane": 1, "ahead": -15.0, "speed": 20.0},  # behind, to the right
        {"lane": 0, "ahead": -23.0, "speed": 20.0},  # right behind
        {"lane": 1, "ahead": 20.0, "speed": 20.0},  # ahead: not the rear watch's
        {"lane": 0, "ahead": -45.0, "speed": 20.0},  # beyond its reach
        # alongside, reaching back past the rear bumper: on the grid, the network's (cut
        # at the bumper, its front would stay there and seem to move with the car)
        {"lane": 1, "ahead": -3.0, "speed": 20.0},
    ]
    env = highway(cars)
    try:
        u = env.unwrapped
        lidar = Lidar(CollectConfig().lidar)
        truth = scene(env)
        ranges, _ = sweep(lidar, u.world, truth.pose, np.random.default_rng(0))
        found = rear_boxes(ranges, lidar, truth.pose, u.net, reach=40.0)
    finally:
        env.close()
    behind = ego_xy(truth.boxes[:2, :2], truth.pose)
    assert found.shape == (2, 7)
    order = np.argsort(-found[:, 0])  # nearest first, as the cars are listed
    # within a few decimetres: the front is the nearest return, the side the one seen
    np.testing.assert_allclose(found[order, :2], behind, atol=0.3)
    assert (found[:, 3:5] == (4.5, 1.9)).all() and (found[:, 5:] == 0).all()
    empty = highway([])
    try:
        pose = scene(empty).pose
        ranges, _ = sweep(lidar, empty.unwrapped.world, pose, np.random.default_rng(0))
        assert len(rear_boxes(ranges, lidar, pose, empty.unwrapped.net, reach=40.0)) == 0
    finally:
        empty.close()


@pytest.fixture(scope="module")
def lidar_run(tmp_path_factory):
    """A tiny lidar-only perception run, as `pilot perception train` leaves it (its
    boxes are replaced by the ground truth on its grid in the test below)."""
    root = tmp_path_factory.mktemp("rear")
    collect(root / "data", "train", ["Intersection"], [SEED], CFG)
    data = PerceptionDataset(root / "data", "train")
    train_tiny(root / "run", data, modalities="lidar")
    (root / "run" / "run.json").write_text(json.dumps({"data": {"root": str(data.root)}}))
    (root / "run" / "config.yaml").write_text("{}\n")
    return root / "run"


def grid_truth(env, perceive: LearnedPerception):
    """``detect`` of a perfect network: the ground-truth boxes on its grid (ego frame,
    velocities 0, as decoded boxes come), the light 'none'."""
    grid = perceive.collect.labels.grid

    def detect(_inputs):
        now = scene(env)
        boxes = to_ego(now.boxes, now.pose)
        on = grid.inside(boxes[:, 0], boxes[:, 1])
        boxes[:, 5:] = 0.0
        return {"boxes": boxes[on], "box_class": now.box_class[on]}, 0

    return detect


def test_the_rear_watch_keeps_a_lane_change_out_of_a_car_closing_from_behind(lidar_run):
    """A slow lead ahead on lane 0 and a faster car coming up on lane 1, 15 m behind. The
    stack seeing only its grid (4 m behind) moves right into that car; with the rear
    watch it lets the car pass, then changes lanes behind it."""
    cars = [{"lane": 0, "ahead": 35.0, "speed": 8.0}, {"lane": 1, "ahead": -15.0, "speed": 22.0}]
    outcome = {}
    for reach in (0.0, 40.0):
        env = highway(cars)
        keys = {"perception": str(lidar_run), "perception_rear": reach}
        agent = ModularAgent(HIGHWAY, ModularAgent.configure(HIGHWAY, keys))
        agent._perceive.detect = grid_truth(env, agent._perceive)
        assert agent._perceive.rear == reach
        entered, info = None, {}
        try:
            for _ in range(600):
                _, _, term, trunc, info = env.step(agent.act(None, envs=[env])[0])
                sim = env.unwrapped.get_state().sim
                here = env.unwrapped.net.locate(sim.ego.x, sim.ego.y, sim.ego.yaw)
                if here.lane == 1 and entered is None:
                    entered = here.s - float(sim.traffic.s[1])  # ego ahead of the fast car
                if term or trunc:
                    break
        finally:
            env.close()
        outcome[reach] = (info["outcome"], info["infraction_counts"]["collision_vehicle"], entered)
    assert outcome[0.0][:2] == ("collision", 1)  # blind behind: into the closing car
    done, hits, entered = outcome[40.0]
    assert done == "route_completed" and hits == 0
    assert entered is not None and entered < -4.5  # behind the car it let pass
