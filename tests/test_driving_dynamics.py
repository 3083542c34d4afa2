"""The driving world's longitudinal dynamics and speed rules: terminal speed in closed
form, feed-forward drivers that hold their speed, speeding and CARLA's minimum-speed
test from scripted drives, and a reward under which speeding does not pay."""

from __future__ import annotations

import math

import numpy as np
import pytest

import pilot.envs  # noqa: F401 - registers the pilot/... ids
from pilot.envs import make_env
from pilot.envs.driving.config import DrivingConfig
from pilot.envs.driving.dynamics import (
    acceleration,
    bicycle_step,
    engine_limit,
    pedal_for,
    resistance,
    terminal_speed,
)
from pilot.envs.driving.speed_rules import min_speed_percentages, stretch_percentage
from pilot.envs.driving.traffic import EgoCar
from pilot.eval.driving import MIN_SPEED_PENALTY, driving_score, episode_score

LANEKEEP, HIGHWAY = "pilot/Driving-LaneKeep-v0", "pilot/Driving-Highway-v0"
CAR = DrivingConfig(max_speed=80.0)


def settle(pedal: float, v0: float = 0.0, seconds: float = 1500.0) -> float:
    """The speed after driving straight with a constant pedal for ``seconds`` (near its
    terminal speed the approach has a time constant of 1 / (2 k v), ~100 s at 18 m/s)."""
    ego = EgoCar(v=v0)
    for _ in range(int(seconds / CAR.dt)):
        bicycle_step(ego, 0.0, pedal, CAR.dt, CAR.physics_substeps, 2.7, 2.0, CAR.max_speed, CAR)
    return ego.v


# --- the model -----------------------------------------------------------------------------
@pytest.mark.parametrize("pedal", [0.3, 0.5, 1.0])
def test_constant_throttle_settles_at_the_closed_form_terminal_speed(pedal):
    v = terminal_speed(CAR, pedal)
    # 0.3 settles below the traction/power crossover (22.2 m/s), 0.5 and 1.0 above it
    assert 10.0 < v < 80.0
    assert settle(pedal) == pytest.approx(v, rel=2e-3)
    assert settle(pedal, v0=v + 15.0) == pytest.approx(v, rel=2e-3)  # from above too
    assert acceleration(CAR, pedal, v) == pytest.approx(0.0, abs=1e-9)


def test_the_terminal_speed_regimes_by_hand():
    k = 0.5 * 1.225 * 0.7 / 1500.0
    c = 0.015 * 9.81
    # traction-limited: 0.3 · 3 = k v² + 0.7 · 0.08 v + c, a quadratic
    b = 0.7 * 0.08
    v = terminal_speed(CAR, 0.3)
    assert v == pytest.approx((-b + math.sqrt(b * b + 4 * k * (0.9 - c))) / (2 * k))
    assert v < 100e3 / (1500.0 * 3.0)
    # power-limited: 0.5 P / (m v) = k v² + 0.5 · 0.08 v + c; check the balance
    v = terminal_speed(CAR, 0.5)
    assert 0.5 * 100e3 / (1500.0 * v) == pytest.approx(k * v * v + 0.04 * v + c)
    assert terminal_speed(CAR, 0.04) == 0.0  # 0.12 m/s² cannot beat rolling resistance
    # the throttle sets the speed, as in a car in gear: ~0.26 holds 10 m/s, ~0.5 25 m/s
    assert pedal_for(CAR, 0.0, 10.0) == pytest.approx(0.257, abs=0.005)
    assert terminal_speed(CAR, pedal_for(CAR, 0.0, 10.0)) == pytest.approx(10.0)


def test_coasting_slows_the_car_and_never_reverses_it():
    assert settle(0.0, v0=20.0, seconds=10.0) < 20.0 - 10.0 * resistance(CAR, 15.0) * 0.9
    assert settle(0.0, v0=2.0, seconds=60.0) == 0.0
    assert settle(-1.0, v0=5.0, seconds=5.0) == 0.0


def test_pedal_for_feeds_the_resistance_forward():
    for v in (0.0, 5.0, 10.0, 25.0):
        for a in (-4.0, 0.0, 1.0):
            pedal = pedal_for(CAR, a, v)
            assert -1.0 <= pedal <= 1.0
            assert acceleration(CAR, pedal, v) == pytest.approx(a)
    assert pedal_for(CAR, 0.0, 20.0) > 0.0  # holding speed needs throttle
    assert pedal_for(CAR, 50.0, 20.0) == 1.0  # asking too much saturates
    assert engine_limit(CAR, 40.0) < CAR.max_accel  # power-limited at speed


@pytest.mark.parametrize("target", [8.0, 12.0])
def test_the_scripted_driver_holds_its_target_speed(target):
    env = make_env(LANEKEEP)
    env.reset(seed=3)
    speeds = []
    for _ in range(300):
        _, _, term, _, info = env.step(env.unwrapped.follow_route(target))
        speeds.append(info["speed"])
        assert not term or info["outcome"] == "route_completed"
        if term:
            break
    env.close()
    assert np.mean(speeds[100:]) == pytest.approx(target, rel=0.03)


# --- speeding ------------------------------------------------------------------------------
def _drive(env_id: str, speed: float, seed: int = 0, steps: int = 400, **kwargs):
    env = make_env(env_id, **kwargs)
    env.reset(seed=seed)
    events, info = [], {}
    for _ in range(steps):
        _, _, term, trunc, info = env.step(env.unwrapped.follow_route(speed))
        events += info["infractions"]
        if term or trunc:
            break
    env.close()
    return info, events


def test_driving_over_the_limit_is_speeding_and_a_lawful_drive_is_not():
    limit = 15.0  # LaneKeep's roads
    info, events = _drive(LANEKEEP, limit + 3.0)
    speeding = [e for e in events if e["type"] == "speeding"]
    assert len(speeding) >= 1 and info["infraction_counts"]["speeding"] == len(speeding)
    assert info["speeding_time"] > 0.5 * info["time"]
    score = episode_score(info)
    assert score.speeding_fraction == pytest.approx(info["speeding_distance"] / 300.0, rel=1e-6)
    assert score.per_km["speeding"] > 0
    assert score.driving_score == score.route_completion  # no coefficient for speeding

    info, events = _drive(LANEKEEP, limit - 1.0)
    assert info["speeding_time"] == 0.0 and not [e for e in events if e["type"] == "speeding"]


def test_where_junction_paths_overlap_the_most_permissive_limit_holds():
    # a car going straight over a town junction is, near its start, also inside the
    # slower turning connector beside it: it is judged by the straight one's limit
    env = make_env("pilot/Driving-Town-v0")
    env.reset(seed=0)
    net = env.unwrapped.net
    pairs = 0
    for lane in (ln for ln in net.lanes if ln.kind == "junction"):
        for s in np.linspace(0.0, lane.length, 12):
            x, y, h = lane.pose_at(float(s))
            for off in (-0.8, 0.8):  # off the centre line, where the neighbour is nearer
                p = net.locate(x - math.sin(h) * off, y + math.cos(h) * off, h)
                inside = [lane.speed_limit] + ([net.lanes[p.lane].speed_limit] if p.in_lane else [])
                assert p.speed_limit >= max(inside) - 1e-9
                pairs += p.in_lane and p.lane != lane.id
    assert pairs > 100  # overlaps are common; the nearest lane alone would often be slower
    p = net.locate(1e5, 1e5, 0.0)  # far off the road: the nearest lane's limit
    assert not p.in_lane and p.speed_limit == net.lanes[p.lane].speed_limit


# --- minimum speed (CARLA's MinimumSpeedRouteTest) -----------------------------------------
def test_minimum_speed_coefficient_by_hand():
    base = driving_score(1.0, {}, 500.0)
    slow = driving_score(1.0, {}, 500.0, min_speed_percentages=[50.0, 80.0])
    expected = (1 - (1 - MIN_SPEED_PENALTY) * 0.5) * (1 - (1 - MIN_SPEED_PENALTY) * 0.2)
    assert slow.infraction_penalty == pytest.approx(base.infraction_penalty * expected)
    assert slow.counts["min_speed"] == 2
    assert driving_score(1.0, {}, 500.0, min_speed_percentages=[0.0]).driving_score == 70.0


def test_driving_score_without_min_speed_keeps_every_other_coefficient():
    """Bench2Drive's rule: the same route's score with the minimum-speed factor left out,
    and only that one (a red light, a timeout and 10% outside lanes still count)."""
    s = driving_score(
        0.8,
        {"red_light": 1},
        500.0,
        outside_lane_distance=50.0,
        timed_out=True,
        min_speed_percentages=[50.0, 80.0],
    )
    rules = 0.70 * 0.70 * 0.9
    assert s.driving_score_without_min_speed == pytest.approx(80.0 * rules)
    assert s.driving_score == pytest.approx(80.0 * rules * 0.85 * 0.94)
    clean = driving_score(1.0, {}, 500.0, min_speed_percentages=[10.0])
    assert clean.driving_score == pytest.approx(73.0)
    assert clean.driving_score_without_min_speed == 100.0


def test_crawling_among_traffic_fails_the_minimum_speed_test():
    env = make_env(HIGHWAY, route_length=300.0)
    env.reset(seed=1)
    u = env.unwrapped
    ego_sum = traffic_sum = 0.0
    percentages = []
    for _ in range(500):
        _, _, term, trunc, info = env.step(u.follow_route(8.0))
        active = u._sim.traffic.active
        if active.any():
            ego_sum += info["speed"]
            traffic_sum += float(u._sim.traffic.v[active].mean())
        for e in info["infractions"]:
            if e["type"] == "min_speed":
                percentages.append(e["percentage"])
                # the event's percentage is the stretch's mean speeds, car over traffic
                assert e["percentage"] == pytest.approx(100 * ego_sum / traffic_sum, abs=0.01)
                ego_sum = traffic_sum = 0.0
        if term or trunc:
            break
    env.close()
    assert info["outcome"] == "route_completed"
    assert len(percentages) == 4  # every stretch of the route: 8 m/s among ~25 m/s traffic
    assert all(p < 60 for p in percentages)
    assert info["min_speed_percentages"] == percentages
    score = episode_score(info)
    assert score.driving_score < 0.85 * score.route_completion


def test_the_minimum_speed_test_judged_after_the_fact_matches_the_env():
    """Slow for the first stretches, then at traffic speed: the failed stretches computed
    afterwards from the steps (``min_speed_percentages``, used on traffic trips) are the
    env's own, and the later stretches pass."""
    env = make_env(HIGHWAY, route_length=300.0)
    env.reset(seed=1)
    u = env.unwrapped
    progress, speed, traffic = [], [], []
    for k in range(500):
        _, _, term, trunc, info = env.step(u.follow_route(8.0 if k < 150 else 28.0))
        active = u._sim.traffic.active
        progress.append(u._sim.best_s)
        speed.append(info["speed"])
        traffic.append(float(u._sim.traffic.v[active].mean()) if active.any() else np.nan)
        if term or trunc:
            break
    env.close()
    assert info["outcome"] == "route_completed"
    env_says = info["min_speed_percentages"]
    assert 1 <= len(env_says) <= 3  # slow stretches fail, fast ones pass
    after = min_speed_percentages(
        np.array(progress), np.array(speed), np.array(traffic), info["route_length"], 4
    )
    assert after == env_says


def test_minimum_speed_stretches_by_hand():
    # 100 m in four stretches (ends 25, 50, 75, 99); a step counts in the stretch open
    # when it began, so the step from 20 to 30 m is the first stretch's
    progress = np.array([10.0, 20.0, 30.0, 40.0, 60.0, 80.0, 99.0])
    speed = np.array([5.0, 5.0, 5.0, 10.0, 10.0, 2.0, 10.0])
    traffic = np.array([10.0, 10.0, 10.0, 10.0, np.nan, 8.0, 8.0])
    # stretch 1: 15/30; 2: the step without traffic is not compared, 10/10 passes;
    # 3: 2/8; 4: 10/8 passes
    assert min_speed_percentages(progress, speed, traffic, 100.0, 4) == [50.0, 25.0]
    # a path not yet at its second end: only the first stretch is judged
    assert min_speed_percentages(progress[:3], speed[:3], traffic[:3], 100.0, 4) == [50.0]
    assert stretch_percentage(3.0, 0.0) is None  # no moving traffic: not judged


def test_keeping_up_with_traffic_passes_the_minimum_speed_test():
    info, _ = _drive(HIGHWAY, None, seed=1, steps=500, route_length=300.0)
    assert info["outcome"] == "route_completed"
    assert info["min_speed_percentages"] == []


# --- the reward ----------------------------------------------------------------------------
def test_speeding_does_not_pay():
    """Mean reward per step over a settled stretch at the target speed (10 m/s) beats the
    same drive at 14 m/s (paid per metre without a cap, the faster drive won)."""

    def mean_reward(speed: float) -> float:
        env = make_env(LANEKEEP)
        env.reset(seed=5)
        rewards = []
        for _ in range(180):  # 300 m route: 180 steps at 14 m/s stay short of its end
            _, r, term, _, _ = env.step(env.unwrapped.follow_route(speed))
            rewards.append(r)
            assert not term
        env.close()
        return float(np.mean(rewards[80:]))

    at_target, fast = mean_reward(10.0), mean_reward(14.0)
    assert at_target > fast + 0.01


def test_traffic_trips_are_whole_trips_through_the_junction():
    """``bench/min_speed_traffic.py`` judges each traffic vehicle's trip from the start of
    an approach to the end of an exit road: 60 m, the junction's connector (~10-20 m),
    60 m. A trip counted from where a car was placed, or cut at a lane's end, is shorter."""
    from pilot.bench.min_speed_traffic import trip_scores

    trips = trip_scores("Intersection", seed=0, seconds=150.0)
    assert len(trips) >= 5
    for score, metres, seconds in trips:
        assert 125.0 < metres < 145.0
        assert seconds >= metres / 12.0  # never over the 12 m/s limit
        assert 0.0 < score <= 100.0
