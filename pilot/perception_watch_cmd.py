"""`pilot perception watch`: a trained fusion network's predictions on a dataset split, as
a video.

    pilot perception watch RUN_DIR DATA [--split val] [--frames 64] [--start 0]
                           [--format mp4|gif|both] [--out FILE] [--png FILE]
                           [--explain ig|gradcam] [--target seg:CLASS|objects|light]

Each frame shows the camera image, the lidar histogram, the predicted BEV map with the
decoded boxes beside the ground truth, and the predicted and true light in the caption
(drawn by :func:`pilot.perception.draw.watch_figure`). ``--explain`` adds saliency maps
(:mod:`pilot.eval.saliency`) of one output over the inputs the network reads; the
default target is ``seg:vehicle``: the vehicle logits summed over the cells the network
calls vehicle (over the whole grid when it calls none), because vehicles are what both
sensors see, so the camera and lidar maps can be compared. ``light`` is the logit of the
predicted light state; ``objects`` the centre-heatmap logits of the found objects.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from pilot.errors import UserError, close_matches

EXAMPLES = """examples:
  pilot perception watch RUN_DIR data/bev --split val --frames 64
  pilot perception watch RUN_DIR data/bev --split val --explain gradcam --format gif
  pilot perception watch RUN_DIR data/bev --explain ig --target light --png frame.png
"""
FORMATS = ("mp4", "gif", "both")
METHOD_NAMES = {"ig": "integrated gradients", "gradcam": "Grad-CAM"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``watch`` under ``pilot perception``."""
    w = sub.add_parser(
        "watch",
        help="a video of a trained network's predictions on a split (and saliency maps)",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    w.add_argument("run", metavar="RUN_DIR", help="run directory (or checkpoint) to watch")
    w.add_argument("root", metavar="DATA", help="dataset folder")
    w.add_argument("--split", default="val", help="split to watch (default: val)")
    w.add_argument("--frames", type=int, default=64, help="frames to show (default: 64)")
    w.add_argument("--start", type=int, default=0, help="first frame of the split (default: 0)")
    w.add_argument(
        "--format",
        choices=FORMATS,
        help="video format when --out is not given "
        "(default: mp4); both: an MP4 and a GIF of the same name",
    )
    w.add_argument(
        "--out",
        metavar="FILE",
        help="video to write, .mp4 or .gif (default: "
        "RUN_DIR/videos/perception-<split>-<start>.mp4)",
    )
    w.add_argument("--png", metavar="FILE.png", help="also write the first frame as a picture")
    w.add_argument(
        "--fps",
        type=int,
        default=4,
        help="frames per second (default: 4; the dataset's frames are 0.5 s apart)",
    )
    w.add_argument(
        "--explain",
        choices=tuple(METHOD_NAMES),
        help="add saliency maps of "
        "--target over the camera and the lidar histogram (ig: integrated "
        "gradients; gradcam: Grad-CAM on the last convolution reading each)",
    )
    w.add_argument(
        "--target",
        default="seg:vehicle",
        help="output --explain maps: seg:CLASS "
        "(that class's logits over the cells predicted as it), objects or light "
        "(default: seg:vehicle)",
    )
    w.add_argument("--checkpoint", metavar="NAME", help="checkpoint of the run (default: latest)")
    w.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    w.add_argument("--threads", type=int, help="torch CPU threads (default: the idle cores)")


def _videos(args: argparse.Namespace, run_path: Path) -> list[Path]:
    from pilot.playing import check_writable
    from pilot.video import check_video_path

    if args.out:
        out = check_video_path(args.out)
        if args.format and args.format != "both" and out.suffix.lower() != f".{args.format}":
            raise UserError(f"--out {out} and --format {args.format} disagree")
        stems = [out] if args.format != "both" else [out.with_suffix(s) for s in (".mp4", ".gif")]
    else:
        base = run_path / "videos" / f"perception-{args.split}-{args.start}"
        fmt = args.format or "mp4"
        stems = [base.with_suffix(f".{s}") for s in (("mp4", "gif") if fmt == "both" else (fmt,))]
    for path in stems:
        check_writable(path, "--out")
    return stems


def _check(args: argparse.Namespace) -> tuple[Any, dict[str, Any], list[Path], str | None]:
    """Every argument, before torch loads: ``(dataset, checkpoint meta, videos, class of
    a seg target or None)``."""
    from pilot.agents.common import checkpoint
    from pilot.perception.dataset import PerceptionDataset
    from pilot.perception.meta import check_network_meta
    from pilot.perception_train_cmd import _check_common
    from pilot.playing import check_writable

    _check_common(args)
    if args.frames < 1:
        raise UserError(f"--frames must be at least 1, got {args.frames}")
    if args.fps < 1:
        raise UserError(f"--fps must be at least 1, got {args.fps}")
    pt, meta = checkpoint.verify(args.run, args.checkpoint)
    check_network_meta(meta, pt)
    target, seg_class = args.target.strip(), None
    if target.startswith("seg:"):
        seg_class = target[4:]
        classes = list(meta["geometry"]["grid_classes"])
        if seg_class not in classes:
            raise UserError(
                f"--target: unknown class '{seg_class}'"
                f"{close_matches(seg_class, classes)}; the network segments "
                f"{', '.join(classes)}"
            )
    elif target not in ("objects", "light"):
        raise UserError(f"--target '{target}': use seg:CLASS, objects or light")
    data = PerceptionDataset(args.root, split=args.split)
    if not 0 <= args.start < len(data):
        raise UserError(
            f"--start {args.start}: split '{args.split}' has {len(data)} frames (0-{len(data) - 1})"
        )
    if args.png:
        if Path(args.png).suffix.lower() != ".png":
            raise UserError(f"--png {args.png} must end in .png")
        check_writable(Path(args.png), "--png")
    run_path = pt.parent.parent if pt.parent.name == "checkpoints" else pt.parent
    return data, meta, _videos(args, run_path), seg_class


class FusionExplainer:
    """Saliency maps of one output of a :class:`~pilot.perception.model.FusionNet` over the
    inputs it reads, by :class:`pilot.eval.saliency.Saliency`; returns data, never draws.

    Grad-CAM's layers are named, not searched: the last convolution reading the camera is
    already in the BEV (after the camera-to-BEV sampling), so its map would not line up with
    the image. The camera's is the image encoder's output (stride 4; for ``light``, the
    stride-8 stage the light head reads), the lidar's the lidar branch's output."""

    def __init__(self, model: Any, method: str, target: str, threshold: float) -> None:
        from pilot.eval.saliency import Saliency

        self.model, self.target, self.threshold = model, target, threshold
        if method == "gradcam" and target == "light" and model.config.light_crop:
            raise UserError(
                "gradcam cannot explain a light read from crops (no convolution of the whole "
                "image leads to it); use --explain ig"
            )
        layers = {}
        if model.config.uses_camera:
            layers["camera"] = model.camera.stage3 if target == "light" else model.camera
        if model.config.uses_lidar:
            layers["lidar_bev"] = model.lidar
        self.keys = list(layers)
        self.saliency = Saliency(
            lambda o: model(o.get("camera"), o.get("lidar_bev"), o.get("light_heads")),
            method,
            image_keys=self.keys,
            layers=layers,
        )

    def _pick(self, out: dict) -> Any:
        """A callable output → (B,) for the target, its cells chosen on ``out`` (the
        prediction for the real input) and then held fixed along any attribution path
        (Integrated Gradients runs the path's steps as one batch, step after step)."""
        import torch

        def tiled(x: torch.Tensor, o: torch.Tensor) -> torch.Tensor:
            return x.repeat(len(o) // len(x), *([1] * (x.dim() - 1)))

        if self.target == "light":
            state = out["light"].argmax(1)[:, None]
            return lambda o: o["light"].gather(1, tiled(state, o["light"]))[:, 0]
        if self.target == "objects":
            logits = out["heatmap"]
            mask = torch.sigmoid(logits) >= self.threshold
            top = logits.flatten(1).argmax(1)
            none = ~mask.flatten(1).any(1)
            mask.flatten(1)[none, top[none]] = True  # nothing found: its strongest centre
            return lambda o: (o["heatmap"] * tiled(mask, o["heatmap"])).flatten(1).sum(1)
        k = self.model.geometry.grid_classes.index(self.target[4:])
        mask = out["seg"][:, k] > 0
        mask[~mask.flatten(1).any(1)] = True  # none predicted: the whole grid
        return lambda o: (o["seg"][:, k] * tiled(mask, o["seg"])).flatten(1).sum(1)

    def __call__(self, batch: dict, out: dict) -> dict[str, Any]:
        inputs = {k: batch[k] for k in self.keys}
        if self.model.config.light_crop:  # where the crops are: an input, not explained
            inputs["light_heads"] = batch["light_heads"]
        return self.saliency(inputs, self._pick({k: v.detach() for k, v in out.items()}))


def run(args: argparse.Namespace) -> int:
    data, meta, videos, _ = _check(args)
    frames = list(range(args.start, min(args.start + args.frames, len(data))))
    import cv2
    import numpy as np
    import torch

    from pilot import video
    from pilot.agents.common.device import resolve_device
    from pilot.perception.batches import FrameBank
    from pilot.perception.draw import watch_figure
    from pilot.perception.grid import GridConfig
    from pilot.perception.heads import decode
    from pilot.perception.model import Geometry
    from pilot.perception.train import load
    from pilot.perception_train_cmd import _threads

    device = resolve_device(args.device)
    _threads(args.threads)
    model, config, ckpt = load(args.run, device, args.checkpoint)
    if Geometry.from_manifest(data.manifest) != model.geometry:
        raise UserError(
            f"{args.root} was collected with another camera, grid or label set "
            "than the network was trained on"
        )
    grid = GridConfig(**data.manifest["config"]["labels"]["grid"])
    states = model.geometry.light_states
    explainer = None
    if args.explain:
        explainer = FusionExplainer(model, args.explain, args.target, config.score_threshold)
    t0 = time.perf_counter()
    writer = video.VideoWriter(videos, args.fps)
    try:
        for n, i in enumerate(frames):
            frame = data[i]
            batch = FrameBank.from_frames([frame]).batch([0], model.geometry, config.model, device)
            with torch.no_grad():
                out = model(batch["camera"], batch["lidar_bev"], batch.get("light_heads"))
            (found,) = decode(
                out["heatmap"],
                out["reg"],
                model.geometry,
                config.model.bev_stride,
                config.top_k,
                config.score_threshold,
            )
            probs = torch.softmax(out["light"], 1)[0].cpu().numpy()
            pred = {
                "seg": (out["seg"][0] > 0).cpu().numpy(),
                "light": int(probs.argmax()),
                "waypoints": out["waypoints"][0].cpu().numpy() if "waypoints" in out else None,
                **found,
            }
            light, truth = states[pred["light"]], states[int(frame["light"])]
            lines = [
                f"{frame['scenario']} seed {frame['seed']}, {args.split} frame {i} | "
                f"{ckpt.path.parent.parent.name} step {ckpt.meta['step']:,}",
                f"light: predicted {light} ({probs.max():.0%}), true {truth}"
                f"{'' if light == truth else '  [wrong]'} | objects: {len(found['boxes'])} "
                f"predicted, {len(frame['boxes'])} true",
            ]
            maps = None
            if explainer is not None:
                maps = {k: v[0] for k, v in explainer(batch, out).items()}
                note = ""
                if args.target.startswith("seg:"):
                    k = model.geometry.grid_classes.index(args.target[4:])
                    note = "" if pred["seg"][k].any() else " (none predicted: the whole grid)"
                elif args.target == "objects" and not len(found["boxes"]):
                    note = " (none found: the strongest centre)"
                lines.append(f"saliency ({METHOD_NAMES[args.explain]}) of {args.target}{note}")
            image = watch_figure(frame, pred, grid, lines, maps, METHOD_NAMES.get(args.explain, ""))
            if n == 0 and args.png:
                Path(args.png).parent.mkdir(parents=True, exist_ok=True)
                if not cv2.imwrite(str(args.png), np.ascontiguousarray(image[..., ::-1])):
                    raise UserError(f"could not write {args.png}")
            writer.append(image)
    except BaseException:
        writer.close(keep=False)
        raise
    writer.close()
    took = time.perf_counter() - t0
    size = f"{image.shape[1]}x{image.shape[0]}"
    for path in videos:
        print(f"video: {path} ({len(frames)} frames, {size}, {took:.1f} s)")
    if args.png:
        print(f"picture: {args.png}")
    return 0
