"""`pilot perception`: collect the BEV perception dataset, look at it, measure it.

    pilot perception collect OUT --split train --seeds 0-99 [--scenarios all] [--workers N]
    pilot perception show DIR [--split S] [--shard SCENARIO-SEED] [--frame I] --out frame.png
    pilot perception stats DIR [--split S] [--prior-split train]
    pilot perception train DATA [--modalities M] [--set KEY=VALUE] [--steps N] [--resume RUN_DIR]
    pilot perception eval RUN_DIR DATA [--split S] [--scenarios A,B]
    pilot perception watch RUN_DIR DATA [--split S] [--explain ig|gradcam]

``collect`` drives the scripted expert through one seeded episode per scenario and seed
and writes one shard each plus ``OUT/manifest.json``; run it again after an interruption
and it finishes what is missing. ``show`` draws a frame's camera image, lidar histogram and
labels side by side. ``stats`` counts frames and label coverage and prints the mIoU of the
trivial predictions (nothing, all road, the per-cell prior of another split). ``train``
and ``eval`` are the fusion network's (:mod:`pilot.perception_train_cmd`), ``watch`` draws
its predictions (:mod:`pilot.perception_watch_cmd`).
"""

from __future__ import annotations

import argparse
import re
from importlib import metadata
from pathlib import Path

from pilot.errors import UserError

EXAMPLES = """examples:
  pilot perception collect data/bev --split train --seeds 0-39 --workers 2
  pilot perception collect data/bev --split val --seeds 1000-1009
  pilot perception collect data/bev --split heldout --scenarios Obstacles --seeds 2000-2009
  pilot perception show data/bev --split val --frame 10 --out frame.png
  pilot perception stats data/bev --split val --prior-split train
  pilot perception train data/bev --steps 600
  pilot perception train data/bev --modalities camera --set lr=1e-3
  pilot perception train data/bev --resume RUN_DIR --steps 2000
  pilot perception eval RUN_DIR data/bev --split val
"""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``perception`` and its subcommands on the CLI's subparsers."""
    p = subparsers.add_parser(
        "perception",
        help="collect the BEV perception dataset, show it, measure it, train and score the "
        "fusion network",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))
    c = sub.add_parser("collect", help="record shards for one split")
    c.add_argument("root", metavar="OUT", help="dataset folder (made when missing)")
    c.add_argument("--split", required=True, help="split name, e.g. train, val, test")
    c.add_argument("--seeds", required=True, help="seeds: 0-99, or 1,5,7, or a mix")
    c.add_argument(
        "--scenarios",
        default="all",
        help="LaneKeep,Highway,Intersection,Obstacles,StopSign,Town or all",
    )
    c.add_argument("--workers", type=int, default=1, help="processes (default: 1)")
    c.add_argument("--config", metavar="FILE.yaml", help="collection config (YAML)")
    c.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override (repeatable), e.g. frames=64 or camera.width=160",
    )
    s = sub.add_parser("show", help="draw one frame: camera | lidar histogram | labels")
    s.add_argument("root", metavar="DIR", help="dataset folder")
    s.add_argument("--split", help="split (default: all shards)")
    s.add_argument(
        "--shard",
        metavar="SCENARIO-SEED",
        help="one episode's shard (Town-3: the town's seed 3); --frame counts within it",
    )
    s.add_argument("--frame", type=int, default=0, help="frame index (default: 0)")
    s.add_argument("--out", required=True, metavar="FILE.png", help="picture to write")
    t = sub.add_parser("stats", help="frames, label coverage and trivial-baseline mIoU")
    t.add_argument("root", metavar="DIR", help="dataset folder")
    t.add_argument("--split", help="split to measure (default: all shards)")
    t.add_argument("--prior-split", help="split whose per-cell label frequency is a baseline")
    from pilot import perception_ablate_cmd
    from pilot.perception_train_cmd import add_parsers
    from pilot.perception_watch_cmd import add_parser as add_watch_parser

    add_parsers(sub)
    add_watch_parser(sub)
    perception_ablate_cmd.add_parser(sub)
    return p


def run(args: argparse.Namespace) -> int:
    if args.action == "collect":
        return collect(args)
    if args.action == "show":
        return show(args)
    if args.action == "stats":
        return stats(args)
    if args.action in ("train", "eval"):
        from pilot import perception_train_cmd

        return getattr(perception_train_cmd, "train" if args.action == "train" else "evaluate")(
            args
        )
    if args.action == "ablate":
        from pilot import perception_ablate_cmd

        return perception_ablate_cmd.run(args)
    if args.action == "watch":
        from pilot import perception_watch_cmd

        return perception_watch_cmd.run(args)
    raise UserError("pilot perception needs an action: collect, show, stats, train or eval")


def parse_seeds(text: str) -> list[int]:
    """``"0-3,7"`` → ``[0, 1, 2, 3, 7]``."""
    seeds: set[int] = set()
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m:
            raise UserError(f"--seeds: '{part}' is not a seed or a range like 0-99")
        lo, hi = int(m[1]), int(m[2] or m[1])
        if hi < lo:
            raise UserError(f"--seeds: range {lo}-{hi} runs backwards")
        if hi - lo >= 1_000_000:
            raise UserError(f"--seeds: range {lo}-{hi} is too long")
        seeds.update(range(lo, hi + 1))
    return sorted(seeds)


def parse_scenarios(text: str) -> list[str] | None:
    """``"Town,StopSign"`` → those names, checked; ``"all"`` → None (every scenario)."""
    from pilot.perception.episodes import check_scenarios

    if text.strip() == "all":
        return None
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise UserError("--scenarios: name at least one scenario, or all")
    try:
        check_scenarios(names)
    except UserError as exc:
        raise UserError(f"--scenarios: {exc} (or all)") from None
    return names


def _config(args: argparse.Namespace):
    """The collection config: an existing dataset's own when no option is given (so more
    splits are collected the same way), else the defaults, ``--config``, ``--set``."""
    from pilot.config import from_dict, load_yaml, merge, parse_overrides, to_dict
    from pilot.perception.episodes import CollectConfig
    from pilot.perception.shards import MANIFEST, read_manifest

    if not args.config and not args.set and (Path(args.root) / MANIFEST).is_file():
        return from_dict(CollectConfig, read_manifest(Path(args.root))["config"])
    values = to_dict(CollectConfig())
    if args.config:
        values = merge(values, load_yaml(args.config))
    return from_dict(CollectConfig, merge(values, parse_overrides(args.set)))


def _provenance() -> dict:
    from pilot.runs import git_commit

    versions = {}
    for name in ("pilot", "numpy", "pybullet", "gymnasium", "opencv-python-headless"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {"git_commit": git_commit(), "versions": versions}


def collect(args: argparse.Namespace) -> int:
    from pilot.perception.dataset import collect as run_collection
    from pilot.perception.episodes import SCENARIOS
    from pilot.progress import Progress

    seeds = parse_seeds(args.seeds)
    scenarios = parse_scenarios(args.scenarios) or list(SCENARIOS)
    cfg = _config(args)
    bar = Progress(None, desc=f"collect {args.split}", unit="frame")
    try:
        summary = run_collection(
            args.root, args.split, scenarios, seeds, cfg, args.workers, bar, _provenance()
        )
    finally:
        bar.close()
    rate = summary.frames / summary.seconds if summary.seconds > 0 else 0.0
    per_frame = summary.bytes / summary.frames / 1024 if summary.frames else 0.0
    print(
        f"{args.root}: split {args.split}: {summary.made} shards recorded "
        f"({summary.frames:,} frames, {rate:.1f} frames/s, {per_frame:.1f} KiB/frame), "
        f"{summary.kept} already there"
    )
    return 0


def show(args: argparse.Namespace) -> int:
    import cv2

    from pilot.perception.dataset import PerceptionDataset
    from pilot.perception.draw import frame_figure
    from pilot.perception.grid import GridConfig
    from pilot.playing import check_writable

    png = Path(args.out)
    if png.suffix.lower() != ".png":
        raise UserError(f"--out {png} must end in .png")
    check_writable(png, "--out")
    data = PerceptionDataset(args.root, args.split)
    index = args.frame
    if args.shard is not None:
        scenario, _, seed = args.shard.rpartition("-")
        if not scenario or not seed.isdigit():
            raise UserError(f"--shard {args.shard}: expected SCENARIO-SEED, e.g. Town-3")
        index = data.frame_of(scenario, int(seed), args.frame)
    if not -len(data) <= index < len(data):
        raise UserError(f"--frame {args.frame}: the selection has {len(data)} frames")
    frame = data[index]
    grid = GridConfig(**data.manifest["config"]["labels"]["grid"])
    image = frame_figure(frame, grid)
    png.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(png), image[..., ::-1]):
        raise UserError(f"could not write {png}")
    print(
        f"{png}: frame {index} ({frame['scenario']} seed {frame['seed']}, "
        f"its frame {frame['index']})"
    )
    return 0


def stats(args: argparse.Namespace) -> int:
    import numpy as np

    from pilot.perception.dataset import PerceptionDataset
    from pilot.perception.metrics import baseline_ious, cell_prior

    data = PerceptionDataset(args.root, args.split)
    names = data.manifest["classes"]["grid"]
    prior = None
    if args.prior_split:
        prior = cell_prior(PerceptionDataset(args.root, args.prior_split).arrays("bev"))
    coverage = sum(g.astype(np.int64).sum(axis=(0, 2, 3)) for g in data.arrays("bev"))
    cells = len(data) * np.prod(data.shapes["bev"][1:])
    lights = np.bincount(np.concatenate(list(data.arrays("light"))), minlength=4)
    boxes = np.bincount(np.concatenate(list(data.arrays("box_class"))), minlength=9)
    print(f"{args.root} ({args.split or 'all splits'}): {len(data):,} frames")
    print(
        "label coverage: "
        + ", ".join(f"{n} {c / cells:.2%}" for n, c in zip(names, coverage, strict=True))
    )
    light_names = data.manifest["classes"]["light"]
    print("lights: " + ", ".join(f"{n} {c}" for n, c in zip(light_names, lights, strict=True)))
    world = data.manifest["classes"]["names"]
    print(
        "objects: "
        + ", ".join(f"{n} {boxes[world.index(n)]}" for n in data.manifest["classes"]["box"])
    )
    for name, meter in baseline_ious(data.arrays("bev"), prior).items():
        per_class = ", ".join(f"{n} {v:.3f}" for n, v in zip(names, meter.iou(), strict=True))
        print(f"baseline {name:<8} mIoU {meter.miou():.3f} ({per_class})")
    return 0
