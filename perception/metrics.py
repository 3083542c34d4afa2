"""Perception metrics, pure numpy: BEV segmentation IoU, detection AP, traffic-light
accuracy and waypoint error, plus the trivial baselines a network has to beat.

**IoU.** Per class, intersections and unions are summed over all frames first and divided
once (a frame with a small object does not weigh as much as a whole frame). mIoU is the
mean over the classes whose union is not empty: a class absent from both prediction and
truth in every frame has no IoU and is left out of the mean rather than counted as 0 or 1.

**Detection AP** follows the nuScenes detection benchmark's rule (Caesar et al. 2020,
nuscenes-devkit ``eval/detection/algo.py``), on the BEV plane:

1. per class and distance threshold ``d``, all predictions of the class over all frames
   are ranked by score, highest first (ties keep their input order);
2. in that order each prediction is matched to the nearest ground truth of its class in
   its frame that no earlier prediction took, if the centre distance is below ``d``
   (strictly): a true positive; otherwise it is a false positive;
3. after the ``k`` first predictions, precision = TP_k / k and recall = TP_k / n_gt;
4. precision is read at the 101 recall levels 0, 0.01, ..., 1 by linear interpolation of
   those (recall, precision) points (``numpy.interp``: the first precision below the first
   recall reached, 0 above the last);
5. AP = mean over the levels above 0.1 (0.11 ... 1.00) of max(precision − 0.1, 0),
   divided by 1 − 0.1.

A class without predictions has AP 0. mAP is the mean over classes and thresholds
(``0.5, 1, 2, 4`` m) of the classes with at least one ground truth; unlike nuScenes, where
every class occurs, a class that never occurs in the truth is left out, as for mIoU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

THRESHOLDS = (0.5, 1.0, 2.0, 4.0)
MIN_RECALL = MIN_PRECISION = 0.1


class IoUMeter:
    """Sums of intersections and unions per class over many frames of 0/1 grids shaped
    ``(..., classes, rows, cols)``."""

    def __init__(self, classes: int) -> None:
        self.intersection = np.zeros(classes, dtype=np.int64)
        self.union = np.zeros(classes, dtype=np.int64)

    def update(self, pred: np.ndarray, truth: np.ndarray) -> None:
        p, t = np.asarray(pred).astype(bool), np.asarray(truth).astype(bool)
        if p.shape != t.shape or p.shape[-3] != len(self.union):
            raise ValueError(f"shapes {p.shape} and {t.shape} for {len(self.union)} classes")
        axes = tuple(i for i in range(p.ndim) if i != p.ndim - 3)
        self.intersection += np.sum(p & t, axis=axes)
        self.union += np.sum(p | t, axis=axes)

    def iou(self) -> np.ndarray:
        """Per-class IoU, NaN for a class with an empty union."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.union > 0, self.intersection / self.union, np.nan)

    def miou(self) -> float:
        """Mean IoU over the classes with a non-empty union (NaN when there is none)."""
        iou = self.iou()
        return float(np.nanmean(iou)) if np.isfinite(iou).any() else math.nan


class DetectionMeter:
    """Collects matched predictions frame by frame for :meth:`ap` / :meth:`map`.

    ``update`` takes one frame: predicted classes (n), centres (n × 2, e.g. ``boxes[:, :2]``)
    and scores (n), and the ground truth classes (m) and centres (m × 2). Matching within a
    frame in score order equals the benchmark's global order, since a prediction can only
    take ground truth of its own frame."""

    def __init__(self, classes: Sequence[int], thresholds: Sequence[float] = THRESHOLDS) -> None:
        self.classes = [int(c) for c in classes]
        self.thresholds = tuple(float(d) for d in thresholds)
        self.n_gt = dict.fromkeys(self.classes, 0)
        self._scores: dict[int, list[np.ndarray]] = {c: [] for c in self.classes}
        self._tp: dict[int, list[np.ndarray]] = {c: [] for c in self.classes}

    def update(self, pred_class, pred_xy, scores, gt_class, gt_xy) -> None:
        pred_class, gt_class = np.asarray(pred_class), np.asarray(gt_class)
        pred_xy = np.asarray(pred_xy, dtype=np.float64).reshape(-1, 2)
        gt_xy = np.asarray(gt_xy, dtype=np.float64).reshape(-1, 2)
        scores = np.asarray(scores, dtype=np.float64)
        for c in self.classes:
            p, g = pred_xy[pred_class == c], gt_xy[gt_class == c]
            s = scores[pred_class == c]
            self.n_gt[c] += len(g)
            order = np.argsort(-s, kind="stable")
            tp = np.zeros((len(order), len(self.thresholds)), dtype=bool)
            for k, d in enumerate(self.thresholds):
                tp[:, k] = match(p[order], g, d)
            self._scores[c].append(s[order])
            self._tp[c].append(tp)

    def ap(self, cls: int, threshold: float) -> float:
        """AP of one class at one distance threshold (NaN without ground truth)."""
        if self.n_gt[cls] == 0:
            return math.nan
        scores = np.concatenate(self._scores[cls]) if self._scores[cls] else np.zeros(0)
        k = self.thresholds.index(float(threshold))
        tp = np.concatenate(self._tp[cls])[:, k] if self._tp[cls] else np.zeros(0, bool)
        order = np.argsort(-scores, kind="stable")
        return average_precision(tp[order], self.n_gt[cls])

    def operating_point(self, threshold: float) -> dict[str, float]:
        """The score threshold with the best F1 over all classes together at centre
        distance ``threshold``: keeping the predictions scored at or above it, precision
        = TP / kept and recall = TP / ground truths (every class pooled: a stack decodes
        all classes at one threshold). ``{"score", "precision", "recall", "f1"}``;
        score NaN without any prediction."""
        k = self.thresholds.index(float(threshold))
        n_gt = sum(self.n_gt.values())
        scores = [s for c in self.classes for s in self._scores[c]]
        tps = [t[:, k] for c in self.classes for t in self._tp[c]]
        scores = np.concatenate(scores) if scores else np.zeros(0)
        if not len(scores) or n_gt == 0:
            return {"score": math.nan, "precision": 0.0, "recall": 0.0, "f1": 0.0}
        order = np.argsort(-scores, kind="stable")
        scores, hits = scores[order], np.cumsum(np.concatenate(tps)[order])
        last = np.r_[scores[1:] != scores[:-1], True]  # a cut keeps every tie of its score
        kept = np.arange(1, len(scores) + 1)[last]
        hits, cut = hits[last], scores[last]
        precision, recall = hits / kept, hits / n_gt
        f1 = np.where(hits > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0)
        i = int(np.argmax(f1))
        return {
            "score": float(cut[i]),
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
        }

    def map(self) -> float:
        """Mean AP over the thresholds and the classes that have ground truth."""
        aps = [self.ap(c, d) for c in self.classes for d in self.thresholds if self.n_gt[c]]
        return float(np.mean(aps)) if aps else math.nan


def match(pred_xy: np.ndarray, gt_xy: np.ndarray, threshold: float) -> np.ndarray:
    """True-positive flags of predictions given best first: each takes the nearest ground
    truth not yet taken when it is closer than ``threshold``."""
    taken = np.zeros(len(gt_xy), dtype=bool)
    tp = np.zeros(len(pred_xy), dtype=bool)
    for i, p in enumerate(pred_xy):
        if taken.all():
            break
        dist = np.hypot(gt_xy[:, 0] - p[0], gt_xy[:, 1] - p[1])
        dist[taken] = np.inf
        j = int(np.argmin(dist))
        if dist[j] < threshold:
            taken[j] = tp[i] = True
    return tp


def average_precision(tp: np.ndarray, n_gt: int) -> float:
    """AP of ranked true-positive flags against ``n_gt`` ground truths (steps 3-5 of the
    module's rule)."""
    if len(tp) == 0 or n_gt == 0:
        return 0.0
    hits = np.cumsum(tp)
    precision = hits / np.arange(1, len(tp) + 1)
    recall = hits / n_gt
    levels = np.linspace(0.0, 1.0, 101)
    curve = np.interp(levels, recall, precision, right=0.0)
    kept = curve[round(100 * MIN_RECALL) + 1 :]
    return float(np.mean(np.maximum(kept - MIN_PRECISION, 0.0)) / (1.0 - MIN_PRECISION))


def light_accuracy(pred: np.ndarray, truth: np.ndarray) -> float:
    """Fraction of frames whose light state (an index into ``LIGHT_STATES``) is right."""
    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.shape != truth.shape or not len(truth):
        raise ValueError("need equal, non-empty shapes")
    return float(np.mean(pred == truth))


def confusion(pred: np.ndarray, truth: np.ndarray, classes: int) -> np.ndarray:
    """``classes × classes`` counts, rows the truth and columns the prediction."""
    idx = np.asarray(truth, dtype=np.int64) * classes + np.asarray(pred, dtype=np.int64)
    return np.bincount(idx.ravel(), minlength=classes * classes).reshape(classes, classes)


def waypoint_l2(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, float]:
    """Euclidean error of ``(frames, k, 2)`` waypoints: the mean over frames at each of
    the ``k`` horizons, and the mean of those over the horizons."""
    pred, truth = np.asarray(pred, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    if pred.shape != truth.shape or pred.ndim != 3 or pred.shape[-1] != 2:
        raise ValueError(f"need (frames, k, 2) shapes, got {pred.shape} and {truth.shape}")
    per_horizon = np.linalg.norm(pred - truth, axis=-1).mean(axis=0)
    return per_horizon, float(per_horizon.mean())


def baseline_ious(grids, prior: np.ndarray | None = None) -> dict[str, IoUMeter]:
    """IoU meters of trivial predictions over ``grids`` (an iterable of ``(frames, classes,
    rows, cols)`` label arrays): ``empty`` (nothing anywhere), ``all_road`` (every cell road,
    channel 0, nothing else) and, given ``prior`` (per class and cell, the fraction of
    training frames where it is on), ``prior`` (on where that fraction is at least 0.5)."""
    meters: dict[str, IoUMeter] = {}
    for truth in grids:
        truth = np.asarray(truth)
        classes = truth.shape[1]
        preds = {"empty": np.zeros_like(truth)}
        preds["all_road"] = np.zeros_like(truth)
        preds["all_road"][:, 0] = 1
        if prior is not None:
            preds["prior"] = np.broadcast_to(prior >= 0.5, truth.shape)
        for name, pred in preds.items():
            meters.setdefault(name, IoUMeter(classes)).update(pred, truth)
    return meters


def cell_prior(grids) -> np.ndarray:
    """Per class and cell, the fraction of frames where the label is on."""
    total, frames = None, 0
    for g in grids:
        g = np.asarray(g, dtype=np.int64)
        total = g.sum(axis=0) if total is None else total + g.sum(axis=0)
        frames += len(g)
    if total is None:
        raise ValueError("no frames")
    return total / frames
