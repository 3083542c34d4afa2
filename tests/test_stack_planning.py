"""The stack's motion-planning pieces on hand-made cases: how long a lateral move is, and
the collision check against standing and moving objects, and what counts as ahead."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pilot.envs.driving.roads import YELLOW
from pilot.envs.driving.routes import Route
from pilot.envs.driving.world import CLASS_NAMES
from pilot.planning.stack import behaviour, frenet, rollout
from pilot.planning.stack.config import ModularConfig
from pilot.planning.stack.perception import Percept
from pilot.planning.stack.prediction import predict
from pilot.planning.stack.stack import ModularStack, moves, needs_pull_away

VEHICLE = CLASS_NAMES.index("vehicle")
PEDESTRIAN = CLASS_NAMES.index("pedestrian")


def test_a_lateral_move_keeps_its_planned_end():
    cfg = ModularConfig(lateral_time=2.5)
    assert frenet.lateral_length(0.2, 0.0, 10.0, 50.0, cfg) == 8.0  # settling
    assert frenet.lateral_length(-3.5, 0.0, 10.0, 50.0, cfg) == 25.0  # a new move: 2.5 s
    assert frenet.lateral_length(-3.5, 0.0, 2.0, 50.0, cfg) == 12.0  # at least 12 m
    # under way since s = 40 towards 0 with its end at 65: 15 m are left, not 25
    assert frenet.lateral_length(-2.0, 0.0, 10.0, 50.0, cfg, (0.0, 65.0)) == 15.0
    assert frenet.lateral_length(-1.0, 0.0, 10.0, 62.0, cfg, (0.0, 65.0)) == 8.0  # at least 8
    # a commitment to another target does not shorten this one
    assert frenet.lateral_length(-2.0, 3.5, 10.0, 50.0, cfg, (0.0, 65.0)) == 25.0


def _straight_candidate(speed: float, lateral: float) -> frenet.Candidate:
    """Driving along +x at ``speed`` for 4 s, ``lateral`` metres to the left of y = 0."""
    t = 0.2 * np.arange(21)
    xy = np.stack([speed * t, np.full_like(t, lateral)], axis=1)
    return frenet.Candidate(
        0.0, speed, xy[:, 0], np.full(21, speed), np.zeros(20), xy, np.zeros(21), xy
    )


def _check(boxes: np.ndarray, classes: np.ndarray, cand: frenet.Candidate, margin: float):
    times = 0.2 * np.arange(1, 21)
    occ = predict(boxes, classes, times, growth=0.3)
    standing = frenet.standing_boxes(boxes, classes, PEDESTRIAN)
    frenet.check(cand, occ, 1.3, standing, margin)
    return cand


def test_standing_cars_are_checked_as_rectangles_moving_ones_as_discs():
    # a car parked beside the path, its side 0.5 m from the ego's side (centres 2.4 m
    # apart): the discs (1.3 m and 1.21 m) would call every pass a contact
    parked = np.array([[20.0, 2.4, 0.0, 4.5, 1.9, 0.0, 0.0]])
    cars = np.array([VEHICLE])
    assert math.isinf(_check(parked, cars, _straight_candidate(5.0, 0.0), 0.3).collides_at)
    assert _check(parked, cars, _straight_candidate(5.0, 0.0), 0.6).collides_at < 4.0
    assert _check(parked, cars, _straight_candidate(5.0, 0.0), 0.3).clearance < 0.0  # cost
    # the same car rolling at 1 m/s: discs, a contact
    rolling = parked.copy()
    rolling[0, 5] = 1.0
    assert _check(rolling, cars, _straight_candidate(5.0, 0.0), 0.3).collides_at < 4.0
    # a pedestrian standing 0.3 m from the car's side: clear as a rectangle with a 0.2 m
    # margin, but never taken as one (it may step off), so its disc is a contact
    person = np.array([[20.0, 1.5, 0.0, 0.5, 0.5, 0.0, 0.0]])
    walker = np.array([PEDESTRIAN])
    assert _check(person, walker, _straight_candidate(5.0, 0.0), 0.2).collides_at < 4.0
    assert math.isinf(_check(person, cars, _straight_candidate(5.0, 0.0), 0.2).collides_at)
    # the parked car in the path is a contact whatever the margin
    ahead = np.array([[12.0, 0.0, 0.0, 4.5, 1.9, 0.0, 0.0]])
    assert _check(ahead, cars, _straight_candidate(5.0, 0.0), 0.0).collides_at < 2.0


def test_a_car_already_close_beside_a_standing_one_may_drive_away_not_nearer():
    # a car stopped beside the ego, 0.25 m between their sides (inside the 0.3 m margin):
    # every plan, standing still too, "touched" it at once, and the ego stood there for
    # good (a town route: it stood with its rear on a crosswalk, and a pedestrian walked
    # into it). It keeps the clearance it has: straight on is free, drifting nearer is not
    beside = np.array([[1.0, 2.15, 0.0, 4.5, 1.9, 0.0, 0.0]])
    cars = np.array([VEHICLE])
    assert math.isinf(_check(beside, cars, _straight_candidate(3.0, 0.0), 0.3).collides_at)
    drift = _straight_candidate(3.0, 0.0)
    drift.xy[:, 1] = np.minimum(0.1 * 0.2 * np.arange(21), 0.2)  # 0.2 m nearer over 2 s
    assert _check(beside, cars, drift, 0.3).collides_at < 2.0
    # nothing changes for a car that is clear of the margin: 0.35 m apart, drifting
    # 0.2 m nearer comes within 0.3 m, a contact
    clear = beside.copy()
    clear[0, 1] = 2.25
    assert _check(clear, cars, drift, 0.3).collides_at < 2.0
    assert math.isinf(_check(clear, cars, _straight_candidate(3.0, 0.0), 0.3).collides_at)


def test_objects_past_the_routes_end_are_not_leads():
    # a 50 m straight route along +x; a car 2 m past its end, in line with it, projects
    # onto the last point and would stand as a lead 1 m ahead of a car near the goal
    route = Route([0], np.array([[0.0, 0.0], [50.0, 0.0]]))
    frame = frenet.RouteFrame(route)
    boxes = np.array([[54.5, 0.0, 0.0, 4.5, 1.9, 0.0, 0.0], [30.0, 0.0, 0.0, 4.5, 1.9, 0.0, 0.0]])
    p = Percept((45.0, 0.0, 0.0), 0.0, 0.0, 45.0, np.array([VEHICLE, VEHICLE]), boxes, -1, math.inf)
    rows = behaviour.objects_on_route(frame, p, 45.0)
    assert np.isnan(rows[0]).all()
    assert np.allclose(rows[1, :2], (30.0, 0.0))
    leads = behaviour.leads_for(0.0, p, rows, frame, 45.0, 3.5, ModularConfig())
    assert leads == []  # nothing ahead of the car within the route


def _pull_away_case(heading_error: float):
    """A car stopped on a straight route along +x, 0.4 m left of its lane centre and
    ``heading_error`` rad left of it, as when stopped mid-turn for pedestrians; a car waits
    facing it at the opposite lane's stop line, 3.1 m ahead and 3.5 m to the left."""
    frame = frenet.RouteFrame(Route([0], np.array([[0.0, 0.0], [100.0, 0.0]])))
    waiting = np.array([[23.1, 3.5, math.pi, 4.5, 1.9, 0.0, 0.0]])
    cars = np.array([VEHICLE])
    occ = predict(waiting, cars, 0.2 * np.arange(1, 21), growth=0.3)
    return frame, (20.0, 0.4, heading_error), occ, frenet.standing_boxes(waiting, cars, PEDESTRIAN)


def test_pulling_away_at_an_angle_turns_back_before_the_car_waiting_beside_the_exit():
    cfg = ModularConfig()
    kappa = math.tan(0.5) / 2.7  # the world's car: 0.5 rad of steering, 2.7 m wheelbase
    targets = [(0.0, f * 10.0, []) for f in cfg.speed_factors]
    for error in (0.3, 0.4):
        frame, pose, occ, standing = _pull_away_case(error)
        # every Frenet plan starts straight along the nose and touches the waiting car
        lattice = frenet.candidates(frame, 20.0, 0.4, math.tan(error), 0.0, targets, cfg)
        for cand in lattice:
            frenet.check(cand, occ, cfg.ego_radius, standing, cfg.standing_margin)
        assert all(c.collides_at < 2.0 for c in lattice)
        # the tracker rolled forward within the steering limit turns back first: clear,
        # and in its lane
        pulls = rollout.candidates(frame, pose, 20.0, 0.0, targets, 2.7, kappa, cfg)
        for cand in pulls:
            frenet.check(cand, occ, cfg.ego_radius, standing, cfg.standing_margin)
            assert math.isinf(cand.collides_at)
            assert cand.s[-1] - cand.s[0] > 5.0  # it does pull away
            assert float(cand.xy[:, 1].max()) < 0.6  # ~0.2 m further out at most
        assert abs(float(pulls[0].xy[-1, 1])) < 0.1  # back on the lane centre at speed
        # the path is one the car can drive: pure pursuit asks ~0.12 /m here; a car that
        # can turn no tighter than 0.08 /m gets a path at that limit
        rear = rollout.tracked_path(frame, pose, 20.0, 0.0, 2.7, 0.08, cfg)
        turn = np.abs(np.diff(rear[:, 2])) / rollout.STEP
        assert turn.max() == pytest.approx(0.08)


def test_a_car_rolling_out_of_a_turn_beside_a_waiting_car_takes_the_path_it_would_drive():
    # the same car and waiting car, but rolling at 3 m/s with its nose 0.4 rad out: every
    # lattice plan, braking where it is included, starts along the nose and touches the
    # waiting car within 0.2 s; before, the stack tried the tracker's own paths only at
    # under 1 m/s, so it braked beside the waiting car (StopSign, seed 0 route 3)
    cfg = ModularConfig()
    kappa = math.tan(0.5) / 2.7
    targets = [(0.0, f * 10.0, []) for f in cfg.speed_factors]
    frame, pose, occ, standing = _pull_away_case(0.4)
    brake = (0.4, 0.0, [(0.0, 0.0, 0.0)])
    lattice = frenet.candidates(frame, 20.0, 0.4, math.tan(0.4), 3.0, [*targets, brake], cfg)
    for cand in lattice:
        frenet.check(cand, occ, cfg.ego_radius, standing, cfg.standing_margin)
    assert all(c.collides_at <= 0.2 for c in lattice)
    best = frenet.choose(lattice, 10.0, 0.4, cfg)
    assert needs_pull_away(best, lattice, 3.0, 0.4)
    assert not needs_pull_away(best, lattice, 3.0, 0.05)  # along its lane: the lattice
    pulls = rollout.candidates(frame, pose, 20.0, 3.0, targets, 2.7, kappa, cfg)
    for cand in pulls:
        frenet.check(cand, occ, cfg.ego_radius, standing, cfg.standing_margin)
        assert math.isinf(cand.collides_at) and moves(cand)
    # a free lattice plan keeps the lattice, at speed or standing
    clear = frenet.candidates(frame, 20.0, 0.0, 0.0, 3.0, targets, cfg)
    assert not needs_pull_away(frenet.choose(clear, 10.0, 0.0, cfg), clear, 3.0, 0.4)
    # standing, with every plan that moves blocked: as before
    stand = frenet.candidates(frame, 20.0, 0.4, math.tan(0.4), 0.0, [*targets, brake], cfg)
    for cand in stand:
        frenet.check(cand, occ, cfg.ego_radius, standing, cfg.standing_margin)
    assert needs_pull_away(frenet.choose(stand, 10.0, 0.4, cfg), stand, 0.0, 0.4)


def test_pulling_away_waits_for_a_pedestrian_at_the_kerb_unless_past_first():
    # a crosswalk across the route at x = 26; a pedestrian stands at its kerb 3.8 m to
    # the left; the car stands with its front 2.45 m before the walker's line
    frame = frenet.RouteFrame(Route([0], np.array([[0.0, 0.0], [100.0, 0.0]])))
    kerb = np.array([[26.0, 3.8, -math.pi / 2, 0.5, 0.5, 0.0, 0.0]])
    walker = np.array([PEDESTRIAN])
    cfg = ModularConfig()

    def leads(x: float, kerb_rule: bool, vy: float = 0.0):
        boxes = kerb.copy()
        boxes[0, 6] = vy
        p = Percept((x, 0.0, 0.0), 0.0, 0.0, x, walker, boxes, -1, math.inf)
        rows = behaviour.objects_on_route(frame, p, x)
        return behaviour.leads_for(0.0, p, rows, frame, x, 3.5, cfg, math.inf, kerb_rule)

    # it could be in the car's path (2 m at a brisk walk: 1.3 s) before the car is past
    assert leads(21.3, False) == []  # the lattice's rule: not in the path, not walking
    (gap, speed, jam), *_ = leads(21.3, True)
    assert gap == pytest.approx(26.0 - 0.25 - 21.3 - frenet.EGO_HALF_LENGTH) and speed == 0.0
    # with its front past the walker's line the car clears the crosswalk, not stands on it
    assert leads(24.0, True) == []
    # one walking away, 3.8 m off, is not waited for
    assert leads(21.3, True, vy=1.3) == []


def _walker_case(x: float, speed: float, walker_y: float, walk: float):
    """``(frame, percept, rows)`` for a car at ``x`` on a straight route along +x, at
    ``speed``, and a pedestrian whose path crosses the route at x = 26 (near side 25.75),
    ``walker_y`` to the side and walking towards the car's lane at ``walk`` m/s."""
    frame = frenet.RouteFrame(Route([0], np.array([[0.0, 0.0], [100.0, 0.0]])))
    boxes = np.array([[26.0, walker_y, math.pi / 2, 0.5, 0.5, 0.0, walk]])
    p = Percept((x, 0.0, 0.0), speed, 0.0, x, np.array([PEDESTRIAN]), boxes, -1, math.inf)
    return frame, p, behaviour.objects_on_route(frame, p, x)


def _stands_for_walker(x: float, speed: float, walker_y: float, walk: float) -> bool:
    """Whether the car of :func:`_walker_case` keeps a lead for the pedestrian."""
    frame, p, rows = _walker_case(x, speed, walker_y, walk)
    return bool(behaviour.leads_for(0.0, p, rows, frame, x, 3.5, ModularConfig()))


def test_a_car_already_over_a_walkers_line_clears_it_rather_than_stands_in_it():
    # the pedestrian walks towards the car's lane at 1 m/s; the car drives at 3.34 m/s,
    # too fast to stop comfortably
    def stops(x: float, walker_y: float) -> bool:
        return _stands_for_walker(x, 3.34, walker_y, 1.0)

    # front 0.4 m past the walker's near side: its rear is past in 1.1 s, the walker in its
    # path in 1.6 s, so it drives on. Stopping (as it did when it kept a second of margin
    # here too) leaves it on the crosswalk, where the walker walks into it (StopSign, seed
    # 1, route 8)
    assert not stops(23.9, -3.2)
    assert stops(23.9, -2.2)  # in its path in 0.6 s, before the car is past: it stops
    # short of the walker's line the second of margin stays: past in 1.8 s, walker in 2.1 s
    assert stops(20.0, -3.7)


def test_a_car_that_cannot_stop_clear_of_a_walkers_line_keeps_no_margin():
    # the car at 1.4 m/s with its front 0.7 m short of the walker's near side: braking its
    # hardest it stands 0.54 m short, in the walker's way. Its rear is past in 2.0 s, the
    # walker (6.05 m out, 1.5 m/s) in its path in 2.9 s: it drives on. With the second of
    # margin it stopped there and was walked into (StopSign, seed 2, route 5)
    assert not _stands_for_walker(22.8, 1.4, -6.05, 1.5)
    # in its path in 1.5 s, before the car is past: it stops
    assert _stands_for_walker(22.8, 1.4, -4.0, 1.5)
    # 1.05 m further back it still cannot stop comfortably, but can stop 1.5 m short of
    # the line braking its hardest: the margin stays (past in 2.2 s, + 1 s > 2.9 s)
    assert _stands_for_walker(21.75, 1.4, -6.05, 1.5)


def test_a_pedestrian_is_waited_for_only_if_the_car_would_meet_it():
    # a straight route; a pedestrian's path crosses it at x = 26; it walks left at
    # ``walk`` m/s; the car is slow enough to stop comfortably in every case below, and
    # the old rule (any pedestrian in or heading into its path within the 4 s horizon)
    # stood before all of them
    frame = frenet.RouteFrame(Route([0], np.array([[0.0, 0.0], [100.0, 0.0]])))
    cfg = ModularConfig()  # pedestrian_gap 1 s

    def stops(gap: float, speed: float, walker_y: float, walk: float) -> bool:
        x = 26.0 - 0.25 - frenet.EGO_HALF_LENGTH - gap  # gap: front to the walker's side
        boxes = np.array([[26.0, walker_y, math.pi / 2, 0.5, 0.5, 0.0, walk]])
        p = Percept((x, 0.0, 0.0), speed, 0.0, x, np.array([PEDESTRIAN]), boxes, -1, math.inf)
        rows = behaviour.objects_on_route(frame, p, x)
        return bool(behaviour.leads_for(0.0, p, rows, frame, x, 3.5, cfg))

    # in its path (1.5 m left of its centre line), walking on out of it: a metre off the
    # lane in 1.25 s. At 5 m/s, 20 m away, the car is there no sooner than 2.8 s: a second
    # and a half after the walker is out, so it drives on (StopSign, seed 2, route 2,
    # where the car stood mid-turn at its exit crosswalk and was walked into, completes
    # with this and collides again without it)
    assert not stops(20.0, 5.0, 1.5, 1.2)
    assert stops(10.0, 5.0, 1.5, 1.2)  # 10 m away: there in 1.6 s, too soon
    # 5.5 m to the right, coming at 1 m/s: in its path in 3.8 s. At 3 m/s, 6 m away, the
    # car's rear is past it in 2.3 s, more than the second before, so it goes first
    assert not stops(6.0, 3.0, -5.5, 1.0)
    assert stops(6.0, 3.0, -4.5, 1.0)  # 4.5 m away: in its path in 2.8 s; it waits
    assert stops(6.0, 3.0, 0.0, 0.0)  # one standing in its path is waited for


def test_a_pedestrian_is_judged_across_the_whole_lane_change():
    # a pedestrian steps off the kerb 3.3 m right of the car's lane centre, walking left
    # at 1.4 m/s, its path 12.9 m ahead of the car's front; the car, at 12.3 m/s, cannot
    # stop comfortably. Judged against the left lane alone (3.5 m left) the pedestrian is
    # 3.6 s from that path, later than the car is past, so a swerve looked free; but the
    # car is in its own lane for most of the move (Obstacles, seed 1, route 2: the
    # pedestrian reached it while it was moving over). Across the offsets the move sweeps
    # the pedestrian is in its path in 1.1 s, before the car is past: it is a lead
    frame = frenet.RouteFrame(Route([0], np.array([[0.0, 0.0], [100.0, 0.0]])))
    x = 26.0 - 0.25 - frenet.EGO_HALF_LENGTH - 12.9
    boxes = np.array([[26.0, -3.3, math.pi / 2, 0.5, 0.5, 0.0, 1.4]])
    p = Percept((x, 0.0, 0.0), 12.3, 0.0, x, np.array([PEDESTRIAN]), boxes, -1, math.inf)
    rows = behaviour.objects_on_route(frame, p, x)
    cfg = ModularConfig()
    assert not behaviour.leads_for(3.5, p, rows, frame, x, 3.5, cfg)  # the lane alone
    assert behaviour.leads_for(3.5, p, rows, frame, x, 3.5, cfg, d0=0.0)  # the sweep
    assert behaviour.leads_for(0.0, p, rows, frame, x, 3.5, cfg)  # staying: a lead too


def test_yellow_is_stopped_for_whenever_the_car_can_still_stop_before_the_line():
    # the stop line 30 m along a straight route; no objects
    frame = frenet.RouteFrame(Route([0], np.array([[0.0, 0.0], [100.0, 0.0]])))
    cfg = ModularConfig(yellow_decel=4.0)

    def stops(front_to_line: float, speed: float) -> bool:
        s0 = 30.0 - frenet.EGO_HALF_LENGTH - front_to_line
        p = Percept((s0, 0.0, 0.0), speed, 0.0, s0, np.zeros(0, np.uint8), np.zeros((0, 7)),
                    YELLOW, 30.0 - s0)  # fmt: skip
        rows = behaviour.objects_on_route(frame, p, s0)
        return bool(behaviour.leads_for(0.0, p, rows, frame, s0, 3.5, cfg))

    # creeping 0.35 m short of the line (inside the 1.5 m stop margin): it stops within
    # 5 cm, so it stops; judged with the margin taken off first, it went on over the line
    # as the light turned red (a town route, then a pedestrian on the crosswalk beyond)
    assert stops(0.35, 0.6)
    assert not stops(-0.2, 0.6)  # its front is over the line already: it goes on
    assert stops(13.0, 10.0)  # 12.5 m needed at 4 m/s²
    assert not stops(12.0, 10.0)  # too late to stop comfortably: it goes on


def test_a_car_in_a_walkers_way_whatever_it_does_goes_on_unless_it_would_be_touched():
    # the car at 4.49 m/s, its front 0.46 m past the near side of a walker who steps off
    # the kerb 3.75 m to its right at 1.31 m/s: braking its hardest it stands 1.2 m further
    # on, in the walker's way. Its rear is past the walker's line in 0.9 s; the walker
    # would be within the half-metre corridor in 0.87 s but at the car's side only in
    # 1.25 s, so it goes on. Braking, as it did, stood it on the crosswalk where the
    # walker walked into it (StopSign, seed 2, route 3, with the bends' braking curve)
    def case(front_past: float, speed: float, walker_y: float, walk: float):
        x = 25.75 + front_past - frenet.EGO_HALF_LENGTH
        _, p, rows = _walker_case(x, speed, walker_y, walk)
        passing = behaviour.passing(p, rows, x, 0.0, 3.5, ModularConfig())[0]
        return _stands_for_walker(x, speed, walker_y, walk), bool(passing)

    assert case(0.46, 4.49, -3.75, 1.31) == (False, True)  # goes on; not checked against
    # at the car's side in 0.72 s, before the rear is past: it stops and is checked
    assert case(0.46, 4.49, -2.15, 1.31) == (True, False)
    # the slow car pulling away with its front 1.3 m past the line of a walker 3.6 m to
    # its left, coming at 1.53 m/s: its rear is past in 1.85 s, the walker at its side in
    # 1.57 s, so the walker stays in the check (Intersection, seed 2, route 9; beside the
    # car, not ahead, it is no lead)
    assert case(1.3, 0.67, 3.6, -1.53) == (False, False)
    assert case(1.3, 0.67, 4.2, -1.53) == (False, True)  # at its side in 1.96 s: passing
    # a car that can still stand short of the walker's line is not passing it
    assert case(-6.0, 4.49, -3.75, 1.31)[1] is False
    # a walker behind the car's rear is nobody's concern
    assert case(7.0, 4.49, -3.75, 1.31) == (False, False)


def test_a_bend_ahead_is_slowed_for_on_a_braking_curve():
    # 60 m straight along +x, then a left arc of radius 10 m (0.5 m steps)
    arc = np.linspace(0.0, math.pi / 2, 32)[1:]
    pts = np.concatenate(
        [np.stack([np.linspace(0.0, 60.0, 121), np.zeros(121)], 1),
         np.stack([60.0 + 10.0 * np.sin(arc), 10.0 - 10.0 * np.cos(arc)], 1)]
    )  # fmt: skip
    frame = frenet.RouteFrame(Route([0], pts))
    bend = 2.0 * 10.0  # the bend speed squared at 2 m/s² of lateral acceleration
    # 20 m before the bend at 8 m/s: the old cap was the bend speed as soon as the bend
    # came within 10 + 2 v metres; on the braking curve (1.5 m/s²) the car keeps its speed
    assert frame.speed_cap(40.0, 8.0, 2.0) == pytest.approx(math.sqrt(bend), rel=0.05)
    curve = frame.speed_cap(40.0, 8.0, 2.0, 1.5)
    assert curve == pytest.approx(math.sqrt(bend + 2.0 * 1.5 * 20.0), rel=0.05)  # 8.9 m/s
    # it falls to the bend speed at the bend, and stays there in it
    assert frame.speed_cap(59.0, 5.0, 2.0, 1.5) < frame.speed_cap(50.0, 7.0, 2.0, 1.5) < curve
    assert frame.speed_cap(65.0, 4.5, 2.0, 1.5) == pytest.approx(math.sqrt(bend), rel=0.05)
    # nothing ahead bends within reach: no cap
    assert math.isinf(frame.speed_cap(5.0, 5.0, 2.0, 1.5))


def test_a_lane_change_that_would_make_the_car_behind_brake_hard_is_a_cut_in():
    # a straight route along +x at y = 0, the car at x = 100 doing 19.5 m/s; a car in the
    # lane to the right (y = -3.5) closes at 21 m/s. By IDM with the stack's parameters
    # (2.5 m jam, 1.2 s, a 1.5, b 2.5), 12 m behind it would have to brake at 33 m/s²
    # (far past any brakes), 35 m behind at 1.3 m/s², under MOBIL's 4; 60 m, not at all
    frame = frenet.RouteFrame(Route([0], np.array([[0.0, 0.0], [300.0, 0.0]])))
    cfg = ModularConfig(target_speed=25.0)

    def percept(behind: float, cls: int = VEHICLE, lateral: float = -3.5) -> Percept:
        box = np.array([[100.0 - behind, lateral, 0.0, 4.5, 1.9, 21.0, 0.0]])
        return Percept((100.0, 0.0, 0.0), 19.5, 0.0, 100.0, np.array([cls]), box, -1, math.inf)

    assert behaviour.cuts_in(-3.5, percept(12.0), frame, 100.0, 3.5, cfg)
    for behind in (35.0, 60.0):
        assert not behaviour.cuts_in(-3.5, percept(behind), frame, 100.0, 3.5, cfg)
    # not a car in that lane: a pedestrian, a car in the other lane, a car ahead
    assert not behaviour.cuts_in(-3.5, percept(12.0, PEDESTRIAN), frame, 100.0, 3.5, cfg)
    assert not behaviour.cuts_in(-3.5, percept(12.0, lateral=3.5), frame, 100.0, 3.5, cfg)
    assert not behaviour.cuts_in(-3.5, percept(-12.0), frame, 100.0, 3.5, cfg)
    # a stricter b_safe closes the 35 m gap too
    strict = ModularConfig(target_speed=25.0, safe_braking=1.0)
    assert behaviour.cuts_in(-3.5, percept(35.0), frame, 100.0, 3.5, strict)


def test_the_cut_in_rule_keeps_the_routes_lane_for_a_car_that_cannot_stay():
    # the car passes in the lane to the right (d0 = -3.5) of its route's lane (y = 0); a car
    # 12 m behind in the route's lane. While the lane it is in stays open it waits there;
    # where that lane ends it may return whatever the car behind must do
    stack = ModularStack(ModularConfig(target_speed=25.0))
    stack._frame = frenet.RouteFrame(Route([0], np.array([[0.0, 0.0], [300.0, 0.0]])))
    box = np.array([[88.0, 0.0, 0.0, 4.5, 1.9, 21.0, 0.0]])
    p = Percept((100.0, -3.5, 0.0), 19.5, 0.0, 100.0, np.array([VEHICLE]), box, -1, math.inf)
    assert stack._cuts_in(0.0, -3.5, p, 100.0, 3.5, stay=True)
    assert not stack._cuts_in(0.0, -3.5, p, 100.0, 3.5, stay=False)
    assert not stack._cuts_in(-3.5, -3.5, p, 100.0, 3.5)  # the lane it is in: no move
