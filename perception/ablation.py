"""Which sensor earns what: the modality ablation and the corrupted-input robustness table.

:func:`run_ablation` trains a camera-only, a lidar-only and a camera+lidar network with
one config, seed and step budget on one split (:func:`.train.train`), scores each on
every evaluation split (:func:`.evaluate.evaluate`: held-out seeds, a held-out scenario)
and then, on the first evaluation split, with corrupted inputs: half the lidar rays
dropped, Gaussian range noise, a darkened and a blurred camera. Lidar corruptions act on
the stored raw ranges and the histogram is rebuilt from them exactly as collection built
it (:func:`.grid.lidar_histogram` of :func:`.sensors.lidar_points`), so dropout removes
whole returns rather than thinning counts. The corruptions are pure numpy functions of
their input and a seeded generator.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pilot.files import atomic_write

from .config import MODALITIES

#: corruption name → (kind, parameter); kinds are the functions below
CORRUPTIONS: dict[str, tuple[str, float]] = {
    "lidar dropout 50%": ("drop_rays", 0.5),
    "lidar noise 0.3 m": ("range_noise", 0.3),
    "camera dark x0.3": ("darken", 0.3),
    "camera blur 2 px": ("blur", 2.0),
}


# ------------------------------------------------------------------------- corruptions
def drop_rays(ranges: np.ndarray, rate: float, rng: np.random.Generator, max_range: float):
    """Each ray independently loses its return with probability ``rate`` (its range
    becomes ``max_range``: nothing within range, as the sensor reports a miss)."""
    ranges = np.asarray(ranges, dtype=np.float32)
    return np.where(rng.random(ranges.shape) < rate, np.float32(max_range), ranges)


def range_noise(ranges: np.ndarray, sigma: float, rng: np.random.Generator, max_range: float):
    """Gaussian noise of ``sigma`` metres on every return; misses stay misses and a
    return stays one (kept in ``[0, max_range)``)."""
    ranges = np.asarray(ranges, dtype=np.float32)
    hit = ranges < max_range
    noisy = ranges + rng.normal(0.0, sigma, ranges.shape).astype(np.float32)
    top = np.nextafter(np.float32(max_range), np.float32(0))
    return np.where(hit, np.clip(noisy, 0.0, top), ranges).astype(np.float32)


def darken(camera: np.ndarray, factor: float) -> np.ndarray:
    """uint8 images with every pixel scaled by ``factor`` (rounded, clipped)."""
    return np.clip(np.rint(np.asarray(camera, np.float32) * factor), 0, 255).astype(np.uint8)


def blur(camera: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of ``sigma`` pixels of every ``(H, W, C)`` image of ``(N, H, W, C)``."""
    import cv2

    camera = np.asarray(camera, dtype=np.uint8)
    return np.stack(
        [cv2.GaussianBlur(im, (0, 0), sigma) for im in camera.reshape(-1, *camera.shape[-3:])]
    ).reshape(camera.shape)


def lidar_bev(ranges: np.ndarray, collect: Any) -> np.ndarray:
    """The ``(N, 2, rows, cols)`` histograms of sweeps ``ranges`` ``(N, rays)``, built as
    collection builds them (``collect`` is the dataset's :class:`.episodes.CollectConfig`):
    the returns (ranges below ``max_range``) as ego-frame points, binned on the grid."""
    from pilot.envs.driving.sensors import Lidar

    from .grid import lidar_histogram
    from .sensors import lidar_points

    lidar, grid = Lidar(collect.lidar), collect.labels.grid
    out = []
    for r in np.asarray(ranges).reshape(-1, lidar.n):
        points = lidar_points(lidar, r)[r < collect.lidar.max_range]
        out.append(lidar_histogram(points, grid, collect.split_height))
    return np.stack(out)


def corrupt(
    arrays: dict[str, np.ndarray],
    ranges: np.ndarray,
    name: str,
    collect: Any,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """A copy of a bank's ``arrays`` with corruption ``name`` applied to its sensors."""
    kind, value = CORRUPTIONS[name]
    out = dict(arrays)
    if kind == "darken":
        out["camera"] = darken(arrays["camera"], value)
    elif kind == "blur":
        out["camera"] = blur(arrays["camera"], value)
    else:
        fn = drop_rays if kind == "drop_rays" else range_noise
        out["lidar_bev"] = lidar_bev(fn(ranges, value, rng, collect.lidar.max_range), collect)
    return out


# ------------------------------------------------------------------------- the run
def machine() -> str:
    """The CPU's model name (``lscpu``'s), or the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _mean(values: list[Any]) -> float | None:
    good = [v for v in values if v is not None]
    return float(np.mean(good)) if good else None


def brief(summary: dict[str, Any]) -> dict[str, Any]:
    """The table's numbers of an :func:`.evaluate.evaluate` summary."""
    return {
        "miou": summary["miou"],
        "iou": summary["iou"],
        "map": summary["map"],
        "ap_0.5": _mean([ap["0.5"] for ap in summary["ap"].values()]),
        "ap_4": _mean([ap["4"] for ap in summary["ap"].values()]),
        "light_accuracy": summary["light_accuracy"],
        "light_confusion": summary["light_confusion"],
    }


def run_ablation(
    data_root: str | Path,
    train_split: str,
    eval_splits: list[str],
    config: Any,
    out: str | Path,
    device: Any,
    progress: bool = True,
    log: Callable[[str], None] = print,
    modalities: tuple[str, ...] | list[str] = MODALITIES,
) -> dict[str, Any]:
    """Train the three modality variants of ``config`` (a :class:`.train.TrainConfig`) and
    score them; writes ``out/models/<modality>/`` (checkpoints, metrics) and returns the
    results (see :func:`write_tables`)."""
    from pilot.config import from_dict, to_dict
    from pilot.progress import Progress

    from .batches import FrameBank
    from .dataset import PerceptionDataset
    from .episodes import CollectConfig
    from .evaluate import evaluate, split_provenance
    from .model import Geometry
    from .train import load, train

    out = Path(out)
    train_data = PerceptionDataset(data_root, split=train_split)
    evals = {s: PerceptionDataset(data_root, split=s) for s in eval_splits}
    geometry = Geometry.from_manifest(train_data.manifest)
    collect = from_dict(CollectConfig, train_data.manifest["config"])
    log(f"loading {train_split} and {', '.join(eval_splits)} of {data_root}")
    bank = FrameBank.from_dataset(train_data)
    banks = {s: FrameBank.from_dataset(d) for s, d in evals.items()}
    robust = eval_splits[0]
    ranges = np.concatenate(list(evals[robust].arrays("lidar")))
    results: dict[str, Any] = {"models": {}, "scores": {}, "robustness": {}}
    jobs = len(eval_splits) + len(CORRUPTIONS)
    for modality in modalities:
        # crops need the camera: the lidar-only variant keeps its pooled light head
        crop = config.model.light_crop and "camera" in modality
        model_cfg = dataclasses.replace(config.model, modalities=modality, light_crop=crop)
        cfg = dataclasses.replace(config, model=model_cfg)
        folder = out / "models" / modality.replace("+", "-")
        log(f"training {modality}: {cfg.steps:,} steps of {cfg.batch_size} on {len(bank):,} frames")
        t0 = time.perf_counter()
        model, _ = train(bank, geometry, cfg, folder, device, progress=progress)
        seconds = time.perf_counter() - t0
        _, _, ckpt = load(folder, device)
        results["models"][modality] = {
            "folder": str(folder),
            "train_seconds": round(seconds, 1),
            "checkpoint_sha256": ckpt.meta["sha256"],
            "parameters": sum(p.numel() for p in model.parameters()),
        }
        bar = Progress(jobs, desc=f"eval {modality}", unit="eval", enabled=progress)
        scores = results["scores"][modality] = {}
        for split, eval_bank in banks.items():
            scores[split] = brief(evaluate(model, eval_bank, cfg, device, latency_frames=0))
            bar.update(1)
        clean = scores[robust]
        rows = results["robustness"][modality] = {}
        for k, name in enumerate(CORRUPTIONS):
            rng = np.random.default_rng([cfg.seed, k])
            arrays = corrupt(banks[robust].arrays, ranges, name, collect, rng)
            bad = FrameBank(arrays, banks[robust].box_start)
            s = brief(evaluate(model, bad, cfg, device, latency_frames=0))
            rows[name] = {
                "miou": s["miou"],
                "map": s["map"],
                "d_miou": _diff(s["miou"], clean["miou"]),
                "d_map": _diff(s["map"], clean["map"]),
            }
            bar.update(1)
        bar.close()
        log(_score_line(modality, scores))
    from pilot.agents.common.checkpoint import versions
    from pilot.runs import git_commit

    results["provenance"] = {
        "git_commit": git_commit(),
        "versions": versions(),
        "protocol": "one config, seed and step budget per modality; scored by pilot "
        "perception eval's metrics; corruptions on the first evaluation split, seeded",
        "config": to_dict(config),
        "machine": machine(),
        "device": str(device),
        "data": {s: split_provenance(d) for s, d in [(train_split, train_data), *evals.items()]},
        "train_split": train_split,
        "eval_splits": eval_splits,
        "robustness_split": robust,
        "corruptions": {n: {"kind": k, "value": v} for n, (k, v) in CORRUPTIONS.items()},
    }
    return results


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _f(v: float | None, sign: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:+.3f}" if sign else f"{v:.3f}"


def _score_line(modality: str, scores: dict[str, Any]) -> str:
    return f"{modality}: " + "; ".join(
        f"{s} mIoU {_f(v['miou'])} mAP {_f(v['map'])} light {_f(v['light_accuracy'])}"
        for s, v in scores.items()
    )


# ------------------------------------------------------------------------- tables
def markdown(results: dict[str, Any]) -> str:
    """The ablation table (per model and split) and the robustness table (drops)."""
    scores = results["scores"]
    classes = list(next(iter(next(iter(scores.values())).values()))["iou"])
    head = ["model", "split", "mIoU", *classes, "mAP", "AP@0.5", "AP@4", "light acc."]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for model, per in scores.items():
        for split, s in per.items():
            cells = [
                model,
                split,
                _f(s["miou"]),
                *(_f(s["iou"][c]) for c in classes),
                _f(s["map"]),
                _f(s["ap_0.5"]),
                _f(s["ap_4"]),
                _f(s["light_accuracy"]),
            ]
            lines.append("| " + " | ".join(cells) + " |")
    robust = results["robustness"]
    names = list(next(iter(robust.values())))
    lines += [
        "",
        f"Robustness on {results['provenance']['robustness_split']}: "
        "change in mIoU / mAP against clean inputs",
        "",
        "| model | " + " | ".join(names) + " |",
        "|" + "---|" * (len(names) + 1),
    ]
    for model, rows in robust.items():
        cells = [f"{_f(r['d_miou'], True)} / {_f(r['d_map'], True)}" for r in rows.values()]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def csv_text(results: dict[str, Any]) -> str:
    """``table, model, split, corruption, metric, class, value`` rows."""
    text = io.StringIO()
    w = csv.writer(text)
    w.writerow(["table", "model", "split", "corruption", "metric", "class", "value"])
    for model, per in results["scores"].items():
        for split, s in per.items():
            for metric in ("miou", "map", "ap_0.5", "ap_4", "light_accuracy"):
                w.writerow(["ablation", model, split, "", metric, "", _csv(s[metric])])
            for c, v in s["iou"].items():
                w.writerow(["ablation", model, split, "", "iou", c, _csv(v)])
    split = results["provenance"]["robustness_split"]
    for model, rows in results["robustness"].items():
        for name, r in rows.items():
            for metric, v in r.items():
                w.writerow(["robustness", model, split, name, metric, "", _csv(v)])
    return text.getvalue()


def _csv(v: Any) -> Any:
    return "" if v is None else v


def write_tables(out: str | Path, results: dict[str, Any]) -> list[Path]:
    """``ablation.md``, ``ablation.json`` (numbers + provenance) and ``ablation.csv``,
    each written atomically; returns their paths."""
    from .evaluate import _plain

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "ablation.md", out / "ablation.json", out / "ablation.csv"]
    atomic_write(paths[0], markdown(results).encode())
    atomic_write(paths[1], json.dumps(_plain(results), indent=2).encode())
    atomic_write(paths[2], csv_text(results).encode())
    return paths
