"""Collecting the perception dataset, and reading it back.

:func:`collect` records one shard per ``(scenario, seed)`` of a split (see
:mod:`.episodes`), in one process or several, and keeps ``manifest.json`` up to date after
every shard, so an interrupted collection resumes where it stopped: shards whose files
match their recorded SHA-256 are kept, the rest are recorded again. Splits are by seed
and scenario, never by frame: a seed belongs to one split only (the loop scenarios share
their road for a seed, so a held-out scenario must not reuse a training seed either).

:class:`PerceptionDataset` yields frames as dicts of numpy arrays (no torch needed) and
checks each shard's hash, format, keys, dtypes and shapes before using it.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pilot.errors import UserError, close_matches
from pilot.files import atomic_write

from .shards import (
    BOX_KEYS,
    FORMAT,
    FRAME_KEYS,
    MANIFEST,
    OPTIONAL_KEYS,
    VERSION,
    read_manifest,
    read_shard,
    remove_orphans,
    sha256,
    shard_bytes,
    write_manifest,
)

if TYPE_CHECKING:
    from pilot.progress import Progress

    from .episodes import CollectConfig

_SPLIT = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


@dataclasses.dataclass(frozen=True)
class CollectSummary:
    """What one :func:`collect` call did."""

    made: int  # shards recorded now
    kept: int  # shards already there and intact
    frames: int  # frames recorded now
    seconds: float
    bytes: int  # size of the shards recorded now


def shard_name(scenario: str, seed: int) -> str:
    return f"shards/{scenario}-{seed:06d}.npz"


def _make_shard(job: tuple[str, str, int, CollectConfig], on_frame=None) -> dict[str, Any]:
    """Record one shard and write it in place (in this process or a worker)."""
    from .episodes import record_episode

    root, scenario, seed, cfg = job
    arrays, outcome = record_episode(scenario, seed, cfg, on_frame=on_frame)
    data = shard_bytes(arrays)
    atomic_write(Path(root) / shard_name(scenario, seed), data)
    frames = len(arrays["camera"])
    return {
        "scenario": scenario,
        "seed": seed,
        "frames": frames,
        "outcome": outcome,
        "bytes": len(data),
        "sha256": sha256(data),
    }


def collect(
    root: str | Path,
    split: str,
    scenarios: Sequence[str],
    seeds: Sequence[int],
    cfg: CollectConfig,
    workers: int = 1,
    progress: Progress | None = None,
    provenance: dict[str, Any] | None = None,
) -> CollectSummary:
    """Record the shards of ``split`` (every scenario × every seed) into ``root``, skipping
    those already there intact; ``provenance`` (commit, versions) goes into a new
    manifest. Mistakes (unknown scenario, a seed of another split, a folder that holds
    something else or another config) are :class:`UserError`\\ s raised before anything is
    written."""
    from .episodes import SCENARIOS, check_scenarios

    root = Path(root)
    if not _SPLIT.match(split):
        raise UserError(f"split name '{split}' must be 1-32 letters, digits, '_' or '-'")
    check_scenarios(scenarios)
    if not scenarios or not seeds or min(seeds) < 0:
        raise UserError("need at least one scenario and one seed, seeds >= 0")
    if workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    manifest = _open(root, cfg, provenance or {}, list(SCENARIOS))
    taken = {e["seed"]: e["split"] for e in manifest["shards"] if e["split"] != split}
    clash = sorted(s for s in set(seeds) if s in taken)
    if clash:
        raise UserError(
            f"seed {clash[0]} already belongs to split '{taken[clash[0]]}' "
            f"({len(clash)} seed(s) clash); a seed belongs to one split only"
        )
    (root / "shards").mkdir(parents=True, exist_ok=True)
    remove_orphans(root / "shards")
    entries = {(e["scenario"], e["seed"]): e for e in manifest["shards"]}
    jobs, kept = [], 0
    for scenario in scenarios:
        for seed in sorted(set(seeds)):
            entry = entries.get((scenario, seed))
            if entry is None:
                entry = {
                    "file": shard_name(scenario, seed),
                    "split": split,
                    "scenario": scenario,
                    "seed": seed,
                    "frames": 0,
                    "outcome": None,
                    "bytes": 0,
                    "sha256": None,
                }
                manifest["shards"].append(entry)
                entries[(scenario, seed)] = entry
            if _intact(root, entry):
                kept += 1
            else:
                jobs.append((str(root), scenario, seed, cfg))
    record = manifest["splits"].setdefault(split, {"scenarios": [], "seeds": []})
    record["scenarios"] = [s for s in SCENARIOS if s in set(record["scenarios"]) | set(scenarios)]
    record["seeds"] = sorted(set(record["seeds"]) | set(seeds))
    write_manifest(root, manifest)

    t0, made, frames, size = time.monotonic(), 0, 0, 0
    if progress is not None:
        progress.total = len(jobs) * cfg.frames
    tick = progress.update if progress is not None else None
    for result, ticked in _run(jobs, workers, tick):
        entry = entries[(result["scenario"], result["seed"])]
        entry.update({k: result[k] for k in ("frames", "outcome", "bytes", "sha256")})
        write_manifest(root, manifest)
        made, frames, size = made + 1, frames + result["frames"], size + result["bytes"]
        if progress is not None:
            if not ticked:
                progress.update(result["frames"])
            progress.total -= cfg.frames - result["frames"]  # an episode that ended early
    return CollectSummary(made, kept, frames, time.monotonic() - t0, size)


def _run(jobs: list, workers: int, tick) -> Iterator[tuple[dict[str, Any], bool]]:
    """``(result, whether its frames were already counted)`` of every job, as they end."""
    if workers == 1 or len(jobs) <= 1:
        for job in jobs:
            yield _make_shard(job, tick), tick is not None
        return
    import multiprocessing

    # spawn: each worker starts its own pybullet servers from a clean interpreter
    with multiprocessing.get_context("spawn").Pool(min(workers, len(jobs))) as pool:
        for result in pool.imap_unordered(_make_shard, jobs):
            yield result, False


def _intact(root: Path, entry: dict[str, Any]) -> bool:
    if not entry.get("sha256"):
        return False
    try:
        return sha256((root / entry["file"]).read_bytes()) == entry["sha256"]
    except OSError:
        return False


def _open(root: Path, cfg: CollectConfig, provenance: dict, scenarios: list[str]) -> dict[str, Any]:
    """The manifest of ``root`` (checked to hold the same config), or a new one."""
    config = json.loads(json.dumps(cfg.as_dict()))  # as it reads back from the file
    if root.exists() and not root.is_dir():
        raise UserError(f"{root} is a file, not a folder for a dataset")
    if (root / MANIFEST).exists():
        manifest = read_manifest(root)
        if manifest["config"] != config:
            differ = sorted(k for k in config if manifest["config"].get(k) != config[k])
            raise UserError(
                f"{root} holds a dataset collected with another config (differs in: "
                f"{', '.join(differ)}); collect into a new folder"
            )
        return manifest
    if root.exists() and any(root.iterdir()):
        raise UserError(f"{root} is not empty and holds no {MANIFEST}; choose a new folder")
    from pilot.envs.driving.world import CLASS_NAMES

    from .labels import BOX_CLASSES, BOX_FIELDS, GRID_CLASSES, LIGHT_STATES
    from .sensors import calibration

    root.mkdir(parents=True, exist_ok=True)
    return {
        "format": FORMAT,
        "version": VERSION,
        "scenarios": scenarios,
        "config": config,
        "classes": {
            "names": list(CLASS_NAMES),
            "grid": list(GRID_CLASSES),
            "box": list(BOX_CLASSES),
            "box_fields": list(BOX_FIELDS),
            "light": list(LIGHT_STATES),
        },
        "calibration": calibration(cfg.camera, cfg.lidar),
        "provenance": provenance,
        "splits": {},
        "shards": [],
    }


def frame_shapes(config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Per-frame shape of every fixed-size array, from a manifest's config."""
    cam, lidar, labels = config["camera"], config["lidar"], config["labels"]
    g = labels["grid"]
    rows = round((g["ahead"] + g["behind"]) / g["resolution"])
    cols = round(2 * g["side"] / g["resolution"])
    return {
        "camera": (cam["height"], cam["width"], 3),
        "lidar": (lidar["rays"] * lidar["channels"],),
        "lidar_bev": (2, rows, cols),
        "bev": (5, rows, cols),
        "light": (),
        "light_distance": (),
        "light_heads": (2, 3),
        "waypoints": (labels["waypoints"], 2),
        "speed": (),
        "action": (2,),
        "pose": (3,),
        "time": (),
        "step": (),
        "camera_K": (3, 3),
        "camera_T": (4, 4),
        "lidar_T": (4, 4),
    }


class PerceptionDataset:
    """The frames of a collected dataset (all of it, or one split and/or some scenarios),
    each a dict of numpy arrays: the :data:`~.shards.FRAME_KEYS` for that frame, its
    ``boxes`` (n × 7) and ``box_class`` (n), and ``scenario`` / ``seed`` / ``index``.

    Shards are read on first use and checked against the manifest; the last ``cache``
    shards stay in memory. A split whose collection did not finish is refused (run the
    collect command again to finish it), since training on part of a split silently
    changes what it means."""

    def __init__(
        self,
        root: str | Path,
        split: str | None = None,
        scenarios: Sequence[str] | None = None,
        cache: int = 4,
    ) -> None:
        self.root = Path(root)
        self.manifest = read_manifest(self.root)
        splits = self.manifest["splits"]
        if split is not None and split not in splits:
            raise UserError(
                f"no split '{split}' in {self.root}{close_matches(split, splits)} "
                f"(it has: {', '.join(splits) or 'none'})"
            )
        chosen = [
            e
            for e in self.manifest["shards"]
            if (split is None or e["split"] == split)
            and (scenarios is None or e["scenario"] in scenarios)
        ]
        pending = [e["file"] for e in chosen if not e.get("sha256")]
        if pending:
            raise UserError(
                f"{self.root}: {len(pending)} shard(s) of this selection were never finished "
                f"(e.g. {pending[0]}); run the same collect command again to finish them"
            )
        if not chosen:
            raise UserError(f"{self.root}: no shards for this selection")
        self.entries = chosen
        try:
            self.shapes = frame_shapes(self.manifest["config"])
        except (KeyError, TypeError, ZeroDivisionError):
            raise UserError(f"{self.root / MANIFEST}: malformed config") from None
        counts = [int(e["frames"]) for e in chosen]
        self._start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self._cache: dict[int, dict[str, np.ndarray]] = {}
        self._cache_size = max(1, cache)

    def __len__(self) -> int:
        return int(self._start[-1])

    def shard(self, k: int) -> dict[str, np.ndarray]:
        """The verified arrays of the ``k``-th shard of this selection."""
        if k not in self._cache:
            e = self.entries[k]
            arrays = read_shard(self.root / e["file"], e["sha256"], int(e["frames"]), self.shapes)
            if len(self._cache) >= self._cache_size:
                self._cache.pop(next(iter(self._cache)))
            self._cache[k] = arrays
        return self._cache[k]

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"frame {i} of {len(self)}")
        i %= len(self)
        k = int(np.searchsorted(self._start, i, side="right") - 1)
        j = i - int(self._start[k])
        arrays, e = self.shard(k), self.entries[k]
        frame: dict[str, Any] = {key: arrays[key][j] for key in FRAME_KEYS}
        frame.update({key: arrays[key][j] for key in OPTIONAL_KEYS if key in arrays})
        a, b = arrays["box_start"][j], arrays["box_start"][j + 1]
        frame["boxes"], frame["box_class"] = arrays["boxes"][a:b], arrays["box_class"][a:b]
        frame.update(scenario=e["scenario"], seed=e["seed"], index=j)
        return frame

    def frame_of(self, scenario: str, seed: int, index: int = 0) -> int:
        """The selection's index of frame ``index`` of the shard ``(scenario, seed)``."""
        for k, e in enumerate(self.entries):
            if e["scenario"] == scenario and int(e["seed"]) == seed:
                if not 0 <= index < int(e["frames"]):
                    raise UserError(f"{e['file']} has {e['frames']} frames, not frame {index}")
                return int(self._start[k]) + index
        raise UserError(f"{self.root}: no shard {scenario}-{seed} in this selection")

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for i in range(len(self)):
            yield self[i]

    def arrays(self, key: str) -> Iterator[np.ndarray]:
        """One key's array (all frames) of every shard in turn, e.g. ``"bev"`` for
        statistics over the whole selection without building frame dicts."""
        if key not in FRAME_KEYS and key not in BOX_KEYS and key not in OPTIONAL_KEYS:
            raise KeyError(key)
        for k in range(len(self.entries)):
            yield self.shard(k)[key]
