"""Perception metrics on hand-made cases; every expected number is worked out in the comments."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pilot.perception.metrics import (
    DetectionMeter,
    IoUMeter,
    average_precision,
    baseline_ious,
    cell_prior,
    confusion,
    light_accuracy,
    match,
    waypoint_l2,
)

VEH, PED, STA = 5, 6, 7  # CLASS_NAMES ids of vehicle, pedestrian, static


def test_iou_sums_over_frames_and_skips_classes_never_seen():
    truth = np.zeros((2, 3, 2, 2), dtype=np.uint8)
    pred = np.zeros_like(truth)
    truth[0, 0] = [[1, 1], [0, 0]]
    pred[0, 0] = [[1, 0], [1, 0]]  # frame 0, class 0: I = 1, U = 3
    truth[1, 0] = 1
    pred[1, 0] = 1  # frame 1, class 0: I = 4, U = 4
    pred[1, 2, 0, 0] = 1  # class 2: one false cell, never true: I = 0, U = 1
    meter = IoUMeter(3)
    meter.update(pred[0], truth[0])
    meter.update(pred[1:], truth[1:])  # a batch axis is fine too
    # class 0: (1 + 4) / (3 + 4) = 5/7 (not the per-frame mean (1/3 + 1) / 2);
    # class 1: empty in both everywhere -> no IoU; class 2: 0 / 1 = 0
    np.testing.assert_allclose(meter.iou(), [5 / 7, np.nan, 0.0])
    assert meter.miou() == pytest.approx((5 / 7 + 0.0) / 2)
    assert math.isnan(IoUMeter(2).miou())
    with pytest.raises(ValueError):
        meter.update(pred[0, :2], truth[0, :2])


def by_hand_meter() -> DetectionMeter:
    """Three vehicles at x = 0, 10, 20 m and a pedestrian; predictions scored 0.9 (0.2 m
    from the first vehicle), 0.8 (far from everything), 0.7 (0.6 m from the second) and
    0.5 (the pedestrian, 0.1 m off)."""
    meter = DetectionMeter([VEH, PED, STA])
    meter.update(
        pred_class=[VEH, VEH, VEH, PED],
        pred_xy=[[0.2, 0.0], [50.0, 0.0], [10.0, 0.6], [3.0, 3.1]],
        scores=[0.9, 0.8, 0.7, 0.5],
        gt_class=[VEH, VEH, VEH, PED],
        gt_xy=[[0.0, 0.0], [10.0, 0.0], [20.0, 0.0], [3.0, 3.0]],
    )
    return meter


def test_ap_by_hand():
    """Three vehicles at x = 0, 10, 20 m. Predictions by score: 0.9 at 0.2 m from the first,
    0.8 far from everything, 0.7 at 0.6 m from the second; the third is missed. One
    pedestrian, found 0.1 m off. No static object anywhere.

    Vehicles at d = 1, 2, 4 m: TP, FP, TP -> precision 1, 1/2, 2/3 at recall 1/3, 1/3, 2/3.
    Read at recall r = i/100: r < 1/3 -> 1 (i = 11..33: 23 levels); 1/3 < r <= 2/3 -> on the
    line from (1/3, 1/2) to (2/3, 2/3), p = 1/2 + (r - 1/3)/2 (i = 34..66: 33 levels);
    r > 2/3 -> 0 (34 levels). Sum of p - 0.1 over the kept levels:
    23 * 0.9 + [33 * 0.4 + 0.5 * (sum_{34..66} i/100 - 33/3)] = 20.7 + 13.2 + 0.5 * (16.5 - 11)
    = 36.65; AP = 36.65 / 90 / 0.9 = 36.65 / 81 = 0.452469...
    At d = 0.5 m the third prediction (0.6 m off) is a FP too: precision 1, 1/2, 1/3, all at
    recall 1/3, so only the 23 levels below 1/3 count: AP = 20.7 / 81 = 0.255555...
    Vehicle AP = (20.7 + 3 * 36.65) / (4 * 81) = 130.65 / 324. Pedestrian: one TP, precision 1
    up to recall 1: AP = 90 * 0.9 / 81 = 1. mAP over vehicles and pedestrians (no static
    ground truth, so static is left out): (130.65 / 324 + 1) / 2 = 0.701620...
    """
    meter = by_hand_meter()
    assert meter.ap(VEH, 0.5) == pytest.approx(20.7 / 81)
    for d in (1.0, 2.0, 4.0):
        assert meter.ap(VEH, d) == pytest.approx(36.65 / 81)
        assert meter.ap(PED, d) == pytest.approx(1.0)
    assert math.isnan(meter.ap(STA, 1.0))
    assert meter.map() == pytest.approx((130.65 / 324 + 1.0) / 2)


def test_ap_ranks_over_all_frames_and_matches_within_one():
    """Frame A: a vehicle at (5, 0), predicted 0.1 m off with score 0.6. Frame B: a vehicle
    at (8, 0); B's prediction (score 0.9) sits at (5, 0), on A's vehicle but 3 m from its
    own: a FP at d = 1 (and B's pedestrian prediction is not a vehicle). Ranked: FP (0.9), TP (0.6): precision 0, 1/2 at
    recall 0, 1/2. Read: r <= 1/2 on the line from (0, 0) to (1/2, 1/2), so p = r; above 1/2
    -> 0. Kept levels i = 11..50: sum of max(i/100 - 0.1, 0) = sum_{k=1..40} k/100 = 8.2;
    AP = 8.2 / 90 / 0.9 = 8.2 / 81."""
    meter = DetectionMeter([VEH], thresholds=(1.0,))
    meter.update([VEH], [[5.1, 0.0]], [0.6], [VEH], [[5.0, 0.0]])
    meter.update([VEH, PED], [[5.0, 0.0], [8.0, 0.0]], [0.9, 1.0], [VEH], [[8.0, 0.0]])
    assert meter.ap(VEH, 1.0) == pytest.approx(8.2 / 81)


def test_operating_point_by_hand():
    """The case of test_ap_by_hand at d = 2 m: four ground truths (three vehicles, one
    pedestrian). All classes ranked together: 0.9 TP, 0.8 FP, 0.7 TP, 0.5 TP (pedestrian).
    Cut after each score: kept 1, 2, 3, 4 with TP 1, 1, 2, 3 -> precision 1, 1/2, 2/3, 3/4,
    recall 1/4, 1/4, 2/4, 3/4, F1 = 2PR/(P+R) = 0.4, 1/3, 4/7 = 0.571, 3/4. Best: keep
    everything at or above 0.5. At d = 0.5 m the 0.7 one is a FP: TP 1, 1, 1, 2 ->
    precision 1, 1/2, 1/3, 1/2, recall 1/4, 1/4, 1/4, 1/2, F1 0.4, 1/3, 2/7, 1/2: still
    the cut at 0.5."""
    meter = by_hand_meter()
    op = meter.operating_point(2.0)
    assert op == pytest.approx({"score": 0.5, "precision": 0.75, "recall": 0.75, "f1": 0.75})
    assert meter.operating_point(0.5) == pytest.approx(
        {"score": 0.5, "precision": 0.5, "recall": 0.5, "f1": 0.5}
    )
    # a weak false positive below: the best cut moves above it, ties are kept together
    meter.update([PED, PED], [[40.0, 0.0], [41.0, 0.0]], [0.2, 0.2], [], np.zeros((0, 2)))
    assert meter.operating_point(2.0)["score"] == 0.5
    # many confident false positives: the best cut is the first prediction alone
    meter = DetectionMeter([VEH])
    meter.update(
        [VEH] * 4, [[0, 0], [30, 0], [40, 0], [50, 0]], [0.9, 0.3, 0.3, 0.3], [VEH], [[0, 0]]
    )
    assert meter.operating_point(1.0) == pytest.approx(
        {"score": 0.9, "precision": 1.0, "recall": 1.0, "f1": 1.0}
    )
    # nothing predicted, or nothing to find
    empty = DetectionMeter([VEH])
    empty.update([], np.zeros((0, 2)), [], [VEH], [[0.0, 0.0]])
    assert math.isnan(empty.operating_point(1.0)["score"]) and empty.operating_point(1.0)["f1"] == 0


def test_greedy_matching_follows_the_score_not_the_distance():
    # one ground truth; the better-scored prediction (0.9 m off) takes it before the
    # closer one (0.1 m off), which is then a false positive
    gt = np.array([[0.0, 0.0]])
    np.testing.assert_array_equal(match(np.array([[0.9, 0.0], [0.1, 0.0]]), gt, 1.0), [1, 0])
    # the match must be strictly closer than the threshold
    np.testing.assert_array_equal(match(np.array([[1.0, 0.0]]), gt, 1.0), [0])
    # each prediction takes the nearest free one
    two = np.array([[0.0, 0.0], [2.0, 0.0]])
    np.testing.assert_array_equal(match(np.array([[1.9, 0.0], [0.4, 0.0]]), two, 1.0), [1, 1])


def test_ap_edge_cases():
    assert average_precision(np.array([], dtype=bool), 3) == 0.0  # nothing predicted
    assert average_precision(np.array([True, True]), 2) == pytest.approx(1.0)  # perfect
    assert average_precision(np.array([False, False]), 2) == 0.0


def test_light_accuracy_and_confusion():
    pred, truth = np.array([0, 1, 2, 3, 3]), np.array([0, 1, 2, 2, 3])
    assert light_accuracy(pred, truth) == pytest.approx(4 / 5)
    table = confusion(pred, truth, 4)
    assert table[2, 3] == 1 and np.trace(table) == 4 and table.sum() == 5


def test_waypoint_l2_per_horizon_and_mean():
    truth = np.zeros((2, 2, 2))
    pred = np.array([[[0.0, 0.0], [3.0, 4.0]], [[1.0, 0.0], [0.0, 3.0]]])
    # errors: frame 0: 0 and 5; frame 1: 1 and 3 -> per horizon 0.5, 4.0; mean 2.25
    per_horizon, mean = waypoint_l2(pred, truth)
    np.testing.assert_allclose(per_horizon, [0.5, 4.0])
    assert mean == pytest.approx(2.25)


def test_trivial_baselines():
    """Two 1 x 4 frames, classes road and vehicle. Road on 2 then 4 cells, a vehicle on 1
    cell of the second. Empty: IoU 0 for both classes. All road: road 6/8, vehicle 0 -> mIoU
    3/8. The prior of these same frames: road on in cells 0, 1 always, 2, 3 half the time
    (>= 0.5: on), vehicle on in cell 0 half the time -> predicts road everywhere, vehicle at
    cell 0: road 6/8, vehicle 1/2 (cell 0 true once, predicted twice)."""
    grids = np.zeros((2, 2, 1, 4), dtype=np.uint8)
    grids[0, 0, 0, :2] = 1
    grids[1, 0] = 1
    grids[1, 1, 0, 0] = 1
    prior = cell_prior([grids[:1], grids[1:]])
    np.testing.assert_allclose(prior, [[[1, 1, 0.5, 0.5]], [[0.5, 0, 0, 0]]])
    meters = baseline_ious([grids], prior)
    np.testing.assert_allclose(meters["empty"].iou(), [0.0, 0.0])
    np.testing.assert_allclose(meters["all_road"].iou(), [6 / 8, 0.0])
    assert meters["all_road"].miou() == pytest.approx(3 / 8)
    np.testing.assert_allclose(meters["prior"].iou(), [6 / 8, 1 / 2])
