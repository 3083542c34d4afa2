"""Scoring a trained fusion network on a split, with the provenance of the numbers.

:func:`evaluate` runs the network over every frame of a :class:`.batches.FrameBank` and
scores it with :mod:`.metrics` (nothing is re-implemented here): per-class IoU and mIoU of
the sigmoid > 0.5 segmentation, nuScenes centre-distance AP per class at 0.5 / 1 / 2 / 4 m
and mAP of the decoded boxes, light accuracy and confusion, waypoint L2 per horizon, and
the latency of one frame (batch 1, forward + decoding, median over frames), and the
operating point: the score threshold with the best F1 over all classes at 2 m, the
threshold a driving stack can decode at (``pilot eval modular --set
perception_threshold=...``). The trivial segmentation baselines of the same frames sit
beside it. :func:`write_report` writes
``summary.json`` and ``metrics.csv`` with the checkpoint's SHA-256, the config, the git
commit, the versions, and the dataset's split, seeds and shard hashes (DESIGN.md, "Results
that leave the program").
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pilot.files import atomic_write

from .batches import FrameBank
from .heads import decode
from .metrics import (
    THRESHOLDS,
    DetectionMeter,
    IoUMeter,
    baseline_ious,
    confusion,
    light_accuracy,
    waypoint_l2,
)
from .model import FusionNet
from .train import TrainConfig

#: centre distance (m) of the reported operating point (the best-F1 score threshold)
OPERATING_DISTANCE = 2.0


def _plain(value: Any) -> Any:
    """JSON-ready: numpy numbers as Python's, NaN (a class without truth) as None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    return value


@torch.no_grad()
def evaluate(
    model: FusionNet,
    bank: FrameBank,
    config: TrainConfig,
    device: torch.device,
    batch_size: int = 16,
    latency_frames: int = 30,
    prior: np.ndarray | None = None,
) -> dict[str, Any]:
    """Metrics of ``model`` over every frame of ``bank`` (see the module docstring);
    ``prior`` (per class and cell, from the training split) adds the prior baseline."""
    geometry, names = model.geometry, model.geometry.grid_classes
    model.eval()
    iou = IoUMeter(len(names))
    det = DetectionMeter(geometry.box_ids)
    lights, waypoints = [], []
    for start in range(0, len(bank), batch_size):
        index = np.arange(start, min(start + batch_size, len(bank)))
        batch = bank.batch(index, geometry, config.model, device)
        out = model(batch["camera"], batch["lidar_bev"], batch.get("light_heads"))
        iou.update((out["seg"] > 0).cpu().numpy(), bank.arrays["bev"][index])
        found = decode(
            out["heatmap"],
            out["reg"],
            geometry,
            config.model.bev_stride,
            config.top_k,
            config.score_threshold,
        )
        for i, boxes in zip(index, found, strict=True):
            truth, truth_cls = bank.objects(int(i))
            det.update(
                boxes["box_class"], boxes["boxes"][:, :2], boxes["scores"], truth_cls, truth[:, :2]
            )
        lights.append(out["light"].argmax(1).cpu().numpy())
        if "waypoints" in out:
            waypoints.append(out["waypoints"].cpu().numpy())
    light_pred = np.concatenate(lights)
    light_true = bank.arrays["light"].astype(np.int64)
    per_class = dict(zip(names, iou.iou().tolist(), strict=True))
    box_names = dict(zip(geometry.box_ids, geometry.box_classes, strict=True))
    summary: dict[str, Any] = {
        "frames": len(bank),
        "miou": iou.miou(),
        "iou": per_class,
        "map": det.map(),
        "ap": {box_names[c]: {f"{d:g}": det.ap(c, d) for d in THRESHOLDS} for c in det.classes},
        "objects": {box_names[c]: n for c, n in det.n_gt.items()},
        "operating_point": {
            "distance": OPERATING_DISTANCE,
            **det.operating_point(OPERATING_DISTANCE),
        },
        "light_accuracy": light_accuracy(light_pred, light_true),
        "light_confusion": confusion(light_pred, light_true, len(geometry.light_states)).tolist(),
        "light_states": list(geometry.light_states),
    }
    if waypoints:
        horizons, mean = waypoint_l2(np.concatenate(waypoints), bank.arrays["waypoints"])
        summary["waypoint_l2"] = {"mean": mean, "per_horizon": horizons.tolist()}
    summary["latency_ms"] = latency(model, bank, config, device, latency_frames)
    chunks = (bank.arrays["bev"][i : i + 256] for i in range(0, len(bank), 256))
    summary["baselines"] = {
        name: {"miou": meter.miou(), "iou": dict(zip(names, meter.iou().tolist(), strict=True))}
        for name, meter in baseline_ious(chunks, prior).items()
    }
    return _plain(summary)


@torch.no_grad()
def latency(
    model: FusionNet, bank: FrameBank, config: TrainConfig, device: torch.device, frames: int
) -> float:
    """Median milliseconds per frame at batch 1 (forward + decoding), after 3 warm-ups."""
    times = []
    n = min(frames, len(bank))
    for k in range(n + 3):
        batch = bank.batch([k % len(bank)], model.geometry, config.model, device)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        out = model(batch["camera"], batch["lidar_bev"], batch.get("light_heads"))
        decode(
            out["heatmap"],
            out["reg"],
            model.geometry,
            config.model.bev_stride,
            config.top_k,
            config.score_threshold,
        )
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if k >= 3:
            times.append(time.perf_counter() - t0)
    return 1000.0 * float(np.median(times)) if times else math.nan


def split_provenance(data: Any) -> dict[str, Any]:
    """Which frames were scored: the dataset folder, its split's scenarios and seeds, and
    one SHA-256 over its shards' hashes (``data`` is a :class:`.PerceptionDataset`)."""
    hashes = "\n".join(sorted(e["sha256"] for e in data.entries))
    return {
        "root": str(Path(data.root).resolve()),
        "scenarios": sorted({e["scenario"] for e in data.entries}),
        "seeds": sorted({int(e["seed"]) for e in data.entries}),
        "shards": len(data.entries),
        "shards_sha256": hashlib.sha256(hashes.encode()).hexdigest(),
        "collected_by": data.manifest.get("provenance", {}),
    }


def provenance(
    ckpt: Any,
    data: dict[str, Any],
    split: str,
    device: torch.device,
    threads: int,
    trained_on: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Where a report's numbers come from: the checkpoint (path, SHA-256, step, config),
    the code (git commit, versions), the machine, and the data scored (``data``, from
    :func:`split_provenance`) and trained on."""
    from pilot.agents.common.checkpoint import versions
    from pilot.runs import git_commit

    config = ckpt.meta["config"]
    return {
        "protocol": "pilot perception eval: sigmoid > 0.5 segmentation, nuScenes centre-"
        f"distance AP of boxes scored >= {config['score_threshold']}, latency at batch 1",
        "checkpoint": str(Path(ckpt.path).resolve()),
        "checkpoint_sha256": ckpt.meta["sha256"],
        "step": ckpt.meta["step"],
        "config": config,
        "git_commit": git_commit(),
        "versions": versions(),
        "device": str(device),
        "threads": threads,
        "split": split,
        "data": data,
        "trained_on": trained_on or {},
    }


def csv_rows(summary: dict[str, Any]) -> list[tuple[str, str, str, Any]]:
    """``(metric, class, threshold, value)`` rows of a summary, for ``metrics.csv``."""
    rows = [("miou", "", "", summary["miou"]), ("map", "", "", summary["map"])]
    rows += [("iou", name, "", v) for name, v in summary["iou"].items()]
    rows += [("ap", name, d, v) for name, per in summary["ap"].items() for d, v in per.items()]
    op = summary["operating_point"]
    rows += [
        (f"operating_{k}", "", op["distance"], op[k])
        for k in ("score", "precision", "recall", "f1")
    ]
    rows.append(("light_accuracy", "", "", summary["light_accuracy"]))
    if "waypoint_l2" in summary:
        rows.append(("waypoint_l2", "", "", summary["waypoint_l2"]["mean"]))
    rows.append(("latency_ms", "", "", summary["latency_ms"]))
    rows += [(f"baseline_{b}_miou", "", "", v["miou"]) for b, v in summary["baselines"].items()]
    return rows


def write_report(folder: str | Path, summary: dict[str, Any], provenance: dict[str, Any]) -> Path:
    """``summary.json`` (metrics + provenance) and ``metrics.csv`` in ``folder``, each
    written to a temporary name and renamed; returns the JSON's path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["metric", "class", "threshold", "value"])
    writer.writerows(("" if v is None else v for v in row) for row in csv_rows(summary))
    atomic_write(folder / "metrics.csv", text.getvalue().encode())
    payload = {**provenance, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "metrics": summary}
    atomic_write(folder / "summary.json", json.dumps(payload, indent=2).encode())
    return folder / "summary.json"
