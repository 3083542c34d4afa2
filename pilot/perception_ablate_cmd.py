"""`pilot perception ablate`: camera-only, lidar-only and camera+lidar networks trained
alike, scored on held-out splits and with corrupted inputs.

    pilot perception ablate DATA [--train-split train] [--eval-splits val,heldout]
                                 [--steps N] [--preset small] [--set KEY=VALUE] [--out DIR]

The work is in :mod:`pilot.perception.ablation`; this module checks the arguments,
prints the tables and says where they were written.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from pilot.errors import UserError

EXAMPLES = """examples:
  pilot perception ablate data/bev --eval-splits val,heldout --steps 400
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``ablate`` under ``pilot perception``."""
    a = sub.add_parser(
        "ablate",
        help="train camera, lidar and camera+lidar networks alike; score them on held-out "
        "splits and with corrupted sensors",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    a.add_argument("root", metavar="DATA", help="dataset folder")
    a.add_argument("--train-split", default="train", help="split to train on (default: train)")
    a.add_argument(
        "--eval-splits",
        default="val,heldout",
        help="comma-separated splits to "
        "score; the first also gets the corruptions (default: val,heldout)",
    )
    a.add_argument(
        "--modalities",
        default="camera,lidar,camera+lidar",
        help="comma-separated modalities to compare (default: all three)",
    )
    a.add_argument("--preset", default="small", help="small (CPU, default) or gpu")
    a.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config value for every model (repeatable), such as lr=1e-3",
    )
    a.add_argument("--steps", type=int, help="gradient steps per model (default: the preset's)")
    a.add_argument("--out", metavar="DIR", help="output folder (default: runs/ablation-<time>)")
    a.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    a.add_argument("--threads", type=int, help="torch CPU threads (default: the idle cores)")
    a.add_argument("--no-progress", action="store_true", help="no progress bars")


def _names(text: str, option: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise UserError(f"{option} needs at least one name")
    if len(set(names)) != len(names):
        raise UserError(f"{option} names one twice: {text}")
    return names


def run(args: argparse.Namespace) -> int:
    from pilot.config import parse_overrides
    from pilot.errors import close_matches
    from pilot.perception.config import MODALITIES
    from pilot.perception.dataset import PerceptionDataset
    from pilot.perception.train import build_config
    from pilot.perception_train_cmd import _check_common
    from pilot.playing import check_writable

    _check_common(args)
    if args.steps is not None and args.steps < 1:
        raise UserError(f"--steps must be at least 1, got {args.steps}")
    modalities = _names(args.modalities, "--modalities")
    for m in modalities:
        if m not in MODALITIES:
            raise UserError(
                f"unknown modality '{m}'{close_matches(m, MODALITIES)}; use {', '.join(MODALITIES)}"
            )
    eval_splits = _names(args.eval_splits, "--eval-splits")
    if args.train_split in eval_splits:
        raise UserError(f"--eval-splits: '{args.train_split}' is the training split")
    for split in [args.train_split, *eval_splits]:
        PerceptionDataset(args.root, split=split)  # a missing split is a one-line error
    overrides = parse_overrides(args.overrides)
    if args.steps is not None:
        overrides["steps"] = args.steps
    config = build_config(args.preset, {}, overrides)
    out = Path(args.out or f"runs/ablation-{time.strftime('%Y%m%d-%H%M%S')}")
    check_writable(out / "ablation.json", "--out")

    from pilot.agents.common.device import resolve_device
    from pilot.perception.ablation import markdown, run_ablation, write_tables
    from pilot.perception_train_cmd import _threads

    device = resolve_device(args.device)
    threads = _threads(args.threads)
    t0 = time.perf_counter()
    results = run_ablation(
        args.root,
        args.train_split,
        eval_splits,
        config,
        out,
        device,
        progress=not args.no_progress,
        modalities=modalities,
    )
    results["provenance"].update(
        threads=threads,
        command=" ".join(["pilot", *sys.argv[1:]]),
        seconds=round(time.perf_counter() - t0, 1),
    )
    paths = write_tables(out, results)
    print(markdown(results), end="")
    print(f"tables: {', '.join(str(p) for p in paths)}")
    return 0
