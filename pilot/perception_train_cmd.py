"""`pilot perception train` and `pilot perception eval`: the fusion network's commands.

    pilot perception train DATA [--modalities camera+lidar] [--preset small] [--config F.yaml]
                               [--set KEY=VALUE] [--steps N] [--resume RUN_DIR] [--device D]
    pilot perception eval RUN_DIR DATA [--split val] [--device D]

The work is in :mod:`pilot.perception.train` and :mod:`pilot.perception.evaluate`; this
module checks the arguments, makes or reopens the run directory and prints the results.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import Any

from pilot.errors import TrainingDiverged, UserError, close_matches

_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
#: run directories are runs/perception__<name>__<seed>__<time>, name from the modalities
RUN_NAMES = {"camera+lidar": "fusion", "camera": "camera", "lidar": "lidar"}
EXIT_DIVERGED = 1


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register ``train`` and ``eval`` under ``pilot perception``."""
    from pilot.perception.config import MODALITIES

    t = sub.add_parser("train", help="train the camera-lidar fusion network on a dataset")
    t.add_argument(
        "root",
        metavar="DATA",
        nargs="?",
        help="dataset folder (default with --resume: the run's own)",
    )
    t.add_argument("--split", default="train", help="split to train on (default: train)")
    t.add_argument(
        "--modalities",
        choices=MODALITIES,
        help="sensors the network reads (default: the preset's, camera+lidar)",
    )
    t.add_argument("--preset", default="small", help="small (CPU, default) or gpu")
    t.add_argument("--config", metavar="FILE.yaml", help="YAML file of config values")
    t.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config value (repeatable), such as lr=1e-3 or model.channels=16",
    )
    t.add_argument("--steps", type=int, help="gradient steps (default: the preset's)")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue this run to --steps")
    t.add_argument("--runs-dir", default="runs", help="where run directories go (default: runs)")
    t.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    t.add_argument("--threads", type=int, help="torch CPU threads (default: the idle cores)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    e = sub.add_parser("eval", help="score a trained network on a split (IoU, AP, lights)")
    e.add_argument("run", metavar="RUN_DIR", help="run directory (or checkpoint) to score")
    e.add_argument("root", metavar="DATA", help="dataset folder")
    e.add_argument("--split", default="val", help="split to score (default: val)")
    e.add_argument(
        "--scenarios",
        default="all",
        help="score only these scenarios' frames, e.g. Town or Intersection,StopSign",
    )
    e.add_argument("--checkpoint", metavar="NAME", help="checkpoint of the run (default: latest)")
    e.add_argument("--out", metavar="DIR", help="report folder (default: RUN_DIR/eval/...)")
    e.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    e.add_argument("--threads", type=int, help="torch CPU threads (default: the idle cores)")


def _check_common(args: argparse.Namespace) -> None:
    if not _DEVICE.match(args.device):
        hint = close_matches(args.device, ["auto", "cpu", "cuda"])
        raise UserError(f"unknown device '{args.device}'{hint}; use auto, cpu, cuda or cuda:N")
    if args.threads is not None and args.threads < 1:
        raise UserError("--threads must be at least 1")


def _threads(requested: int | None) -> int:
    from pilot.threads import set_torch_threads

    return set_torch_threads(requested)[0]


# ------------------------------------------------------------------------- train
def _plan(args: argparse.Namespace) -> tuple[Any, Any, Any, Any]:
    """``(config, dataset, run or None, checkpoint or None)``, all checked before training."""
    from pilot import runs
    from pilot.agents.common import checkpoint
    from pilot.config import from_dict, load_yaml, parse_overrides
    from pilot.perception.dataset import PerceptionDataset
    from pilot.perception.train import ALGORITHM, TrainConfig, build_config

    if args.steps is not None and args.steps < 1:
        raise UserError(f"--steps must be at least 1, got {args.steps}")
    if args.resume is None:
        if args.root is None:
            raise UserError("pilot perception train needs a dataset folder DATA")
        overrides = parse_overrides(args.overrides)
        if args.modalities:
            overrides.setdefault("model", {})["modalities"] = args.modalities
        if args.steps is not None:
            overrides["steps"] = args.steps
        file_values = load_yaml(args.config) if args.config else {}
        config = build_config(args.preset, file_values, overrides)
        runs.check_root(args.runs_dir)
        return config, PerceptionDataset(args.root, split=args.split), None, None
    if args.config or args.overrides or args.modalities:
        raise UserError("a resumed run keeps its config; only --steps may change")
    run = runs.open_run(args.resume)
    if run.info.get("algorithm") != ALGORITHM:
        raise UserError(f"{run.path} is not a perception training run")
    values = {k: v for k, v in run.config.items() if k != "data"}
    config = from_dict(TrainConfig, {**values, "steps": args.steps or values.get("steps")})
    pt, meta = checkpoint.verify(run.checkpoints)
    if config.steps <= meta["step"]:
        raise UserError(f"{run.path} is at step {meta['step']:,}; give --steps above it")
    data = run.info["data"]
    data_set = PerceptionDataset(args.root or data["root"], split=data["split"])
    from pilot.perception.evaluate import split_provenance

    if split_provenance(data_set)["shards_sha256"] != data["shards_sha256"]:
        raise UserError(
            f"the dataset's '{data['split']}' split is not the one {run.path} "
            "was trained on (its shards differ)"
        )
    return config, data_set, run, checkpoint.load(pt)


def train(args: argparse.Namespace) -> int:
    _check_common(args)
    config, data, run, start = _plan(args)
    import torch

    from pilot import runs
    from pilot.agents.common.device import resolve_device
    from pilot.config import to_dict
    from pilot.perception.batches import FrameBank
    from pilot.perception.evaluate import split_provenance
    from pilot.perception.model import Geometry
    from pilot.perception.train import ALGORITHM
    from pilot.perception.train import train as run_training

    device = resolve_device(args.device)
    threads = _threads(args.threads)
    geometry = Geometry.from_manifest(data.manifest)
    t0 = time.perf_counter()
    bank = FrameBank.from_dataset(data)  # before the run exists: a bad dataset leaves none
    bank.check(config.model)
    if run is None:
        provenance = {**split_provenance(data), "split": args.split}
        run = runs.create(
            args.runs_dir,
            RUN_NAMES[config.model.modalities],
            "perception",
            config.seed,
            to_dict(config),
            algorithm=ALGORITHM,
            total_steps=config.steps,
            device=str(device),
            threads=threads,
            data=provenance,
            command=" ".join(sys.argv),
        )
        print(f"run directory: {run.path}")
    else:
        run.set_steps(config.steps)
        run.update_info(resumed=run.info.get("resumed", []) + [int(start.meta["step"])])
        print(f"resuming {run.path} at step {start.meta['step']:,}, to {config.steps:,}")
    print(
        f"{config.model.modalities} network on {len(bank):,} frames of {data.root} "
        f"({run.info['data']['split']}): {config.steps:,} steps of {config.batch_size} on "
        f"{device}, {threads} torch thread{'s' if threads > 1 else ''}"
    )
    torch.set_float32_matmul_precision("high")
    try:
        _, last = run_training(
            bank,
            geometry,
            config,
            run.path,
            device,
            resume=start,
            progress=not args.no_progress,
            meta={"run": run.path.name},
        )
    except TrainingDiverged as exc:
        print(f"pilot: training stopped: {exc}; the last checkpoint is kept", file=sys.stderr)
        return EXIT_DIVERGED
    done = config.steps - (int(start.meta["step"]) if start is not None else 0)
    loop = last.get("train/seconds", 0.0)
    speed = (
        f" ({done / loop:,.1f} steps/s, {done * config.batch_size / loop:,.0f} frames/s in "
        f"training after {time.perf_counter() - t0 - loop:.1f} s of loading)"
        if done > 0 and loop > 0
        else ""
    )
    print(
        f"trained to step {config.steps:,} in {time.perf_counter() - t0:.1f} s{speed}; "
        f"loss {last.get('loss/total', float('nan')):.3f}"
    )
    print(f"  eval: pilot perception eval {run.path} {data.root} --split val")
    return 0


# ------------------------------------------------------------------------- eval
def evaluate(args: argparse.Namespace) -> int:
    _check_common(args)
    from pilot.agents.common import checkpoint
    from pilot.perception.dataset import PerceptionDataset
    from pilot.perception.model import Geometry
    from pilot.perception_cmd import parse_scenarios
    from pilot.playing import check_writable

    scenarios = parse_scenarios(args.scenarios)
    checkpoint.verify(args.run, args.checkpoint)
    data = PerceptionDataset(args.root, split=args.split, scenarios=scenarios)
    if args.out:
        check_writable(Path(args.out) / "summary.json", "--out")
    import torch

    from pilot import runs
    from pilot.agents.common.device import resolve_device
    from pilot.perception.batches import FrameBank
    from pilot.perception.evaluate import evaluate as run_eval
    from pilot.perception.evaluate import provenance, split_provenance, write_report
    from pilot.perception.metrics import cell_prior
    from pilot.perception.train import load

    device = resolve_device(args.device)
    threads = _threads(args.threads)
    model, config, ckpt = load(args.run, device, args.checkpoint)
    if Geometry.from_manifest(data.manifest) != model.geometry:
        raise UserError(
            f"{args.root} was collected with another camera, grid or label set "
            "than the network was trained on"
        )
    run = runs.run_of_checkpoint(ckpt.path)
    trained_on = (run.info.get("data") or {}) if run else {}
    prior = None
    if trained_on.get("split") in data.manifest["splits"] and trained_on["split"] != args.split:
        prior = cell_prior(PerceptionDataset(args.root, trained_on["split"]).arrays("bev"))
    with torch.no_grad():
        summary = run_eval(model, FrameBank.from_dataset(data), config, device, prior=prior)
    origin = provenance(ckpt, split_provenance(data), args.split, device, threads, trained_on)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = run.path if run else ckpt.path.parent
    selection = args.split + "".join(f"-{name}" for name in scenarios or ())
    out = Path(args.out) if args.out else base / "eval" / f"perception-{selection}-{stamp}"
    path = write_report(out, summary, origin)
    _print_summary(summary, selection)
    print(f"report: {path}")
    return 0


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _print_summary(s: dict[str, Any], split: str) -> None:
    print(f"{split}: {s['frames']:,} frames")
    per_class = ", ".join(f"{n} {_fmt(v)}" for n, v in s["iou"].items())
    print(f"  mIoU {_fmt(s['miou'])} ({per_class})")
    for name, b in s["baselines"].items():
        print(f"  baseline {name:<8} mIoU {_fmt(b['miou'])}")
    aps = ", ".join(
        f"{n} {_fmt(sum(v.values()) / len(v))}" for n, v in s["ap"].items() if s["objects"][n]
    )
    print(f"  mAP {_fmt(s['map'])} (over 0.5/1/2/4 m: {aps or 'no objects'})")
    op = s["operating_point"]
    print(
        f"  operating point (best F1 at {op['distance']:g} m, all classes): score "
        f"{_fmt(op['score'])}, precision {_fmt(op['precision'])}, recall "
        f"{_fmt(op['recall'])}, F1 {_fmt(op['f1'])}"
    )
    print(f"  light accuracy {_fmt(s['light_accuracy'])}")
    if "waypoint_l2" in s:
        print(f"  waypoint L2 {s['waypoint_l2']['mean']:.2f} m (mean over horizons)")
    print(f"  latency {s['latency_ms']:.1f} ms/frame (batch 1)")
