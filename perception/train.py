"""Training the fusion network on a collected dataset, into a run directory.

The loop reads top to bottom: draw a batch → forward → losses → step → log → checkpoint.
It follows ``pilot train``'s conventions (:mod:`pilot.runs`): a run directory with the
resolved config, ``run.json``, ``metrics.csv`` and TensorBoard events (through the agents'
:class:`~pilot.agents.common.recorder.Recorder`), and checkpoints written by
:mod:`pilot.agents.common.checkpoint` (a ``state_dict`` plus JSON metadata, atomic,
hash-checked, loaded with ``weights_only=True``). A resumed run continues the same step
counter; its batches are the same as an unbroken run's, since batch ``t`` is drawn from a
generator seeded by ``(seed, t)``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pilot.agents.common import checkpoint
from pilot.config import field, from_dict, merge, to_dict
from pilot.errors import TrainingDiverged, UserError, close_matches

from .batches import FrameBank
from .heads import light_class_weights, losses
from .meta import ALGORITHM, check_network_meta
from .model import PRESETS, FusionConfig, FusionNet, Geometry


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Fusion network training (the ``small`` preset's values are the defaults)."""

    model: FusionConfig = field(FusionConfig(), "the network (see FusionConfig)")
    steps: int = field(600, "gradient steps (the step budget)")
    batch_size: int = field(8, "frames per step")
    lr: float = field(2e-3, "AdamW learning rate after warm-up (cosine decay to 0 at steps)")
    warmup: int = field(50, "steps of linear learning-rate warm-up")
    weight_decay: float = field(1e-4, "AdamW weight decay")
    grad_clip: float = field(10.0, "gradient norm clip")
    seed: int = field(0, "seed of the weights and of the batch draws")
    log_every: int = field(25, "steps between logged losses")
    checkpoint_every: int = field(500, "steps between checkpoints (and one at the end)")
    seg_weight: float = field(1.0, "weight of the segmentation loss (BCE + Dice)")
    heatmap_weight: float = field(1.0, "weight of the centre heatmap focal loss")
    box_weight: float = field(1.0, "weight of the L1 box regression at the centres")
    light_weight: float = field(1.0, "weight of the light cross-entropy")
    light_balance: float = field(
        10.0,
        "each light state's cross-entropy weighs its inverse frequency in the training "
        "frames, clipped to at most this; 0 weighs every state alike",
    )
    waypoints_weight: float = field(0.5, "weight of the waypoint smooth-L1 loss")
    score_threshold: float = field(0.1, "boxes decoded at this centre probability or above")
    top_k: int = field(64, "most boxes decoded per frame")

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.log_every < 1:
            raise ValueError("steps, batch_size and log_every must be at least 1")
        if self.lr < 0 or self.warmup < 0 or self.checkpoint_every < 0:
            raise ValueError("lr, warmup and checkpoint_every must not be negative")
        if self.light_balance < 0:
            raise ValueError("light_balance must not be negative")

    def loss_weights(self) -> dict[str, float]:
        names = ("seg", "heatmap", "box", "light", "waypoints")
        return {n: getattr(self, f"{n}_weight") for n in names}


#: ``small``: trains on two CPU cores in minutes; ``gpu``: the wider, finer network
TRAIN_PRESETS = {
    "small": TrainConfig(),
    "gpu": TrainConfig(
        model=PRESETS["gpu"],
        steps=20000,
        batch_size=32,
        lr=1e-3,
        warmup=500,
        log_every=100,
        checkpoint_every=2000,
    ),
}


def build_config(
    preset: str = "small",
    file_values: dict[str, Any] | None = None,
    overrides: dict[str, Any] | None = None,
) -> TrainConfig:
    """Preset ← YAML file values ← ``--set`` overrides; unknown keys are a :class:`UserError`."""
    if preset not in TRAIN_PRESETS:
        raise UserError(f"unknown preset '{preset}'{close_matches(preset, TRAIN_PRESETS)}")
    values = merge(to_dict(TRAIN_PRESETS[preset]), file_values or {})
    return from_dict(TrainConfig, merge(values, overrides or {}))


def learning_rate(config: TrainConfig, step: int) -> float:
    """Linear warm-up, then cosine decay to 0 at ``config.steps``: a function of the step
    alone, so a resumed run needs no scheduler state."""
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    span = max(1, config.steps - config.warmup)
    return config.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - config.warmup) / span)))


def draw(rng: np.random.Generator, frames: int, batch_size: int) -> np.ndarray:
    return rng.choice(frames, size=min(batch_size, frames), replace=False)


# ------------------------------------------------------------------------- checkpoints
def save(
    folder: Path,
    model: FusionNet,
    optimizer: torch.optim.Optimizer,
    step: int,
    config: TrainConfig,
    **meta: Any,
) -> Path:
    """A checkpoint of the model and optimizer at ``step`` (metadata: config, geometry)."""
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict()}
    info = {
        "algorithm": ALGORITHM,
        "step": step,
        "config": to_dict(config),
        "geometry": model.geometry.as_dict(),
        **meta,
    }
    return checkpoint.save(folder, state, info)


def load(
    path: str | Path, device: torch.device | str = "cpu", name: str | None = None
) -> tuple[FusionNet, TrainConfig, checkpoint.Checkpoint]:
    """The network of a run directory or checkpoint (verified; see :func:`checkpoint.load`),
    in eval mode on ``device``, its config, and the loaded checkpoint."""
    ckpt = checkpoint.load(path, map_location=device, name=name)
    check_network_meta(ckpt.meta, ckpt.path)
    config = from_dict(TrainConfig, ckpt.meta["config"])
    model = FusionNet(config.model, Geometry.from_dict(ckpt.meta["geometry"])).to(device)
    model.load_state_dict(ckpt.state["model"])
    return model.eval(), config, ckpt


# ------------------------------------------------------------------------- training
def train(
    bank: FrameBank,
    geometry: Geometry,
    config: TrainConfig,
    run_dir: str | Path | None,
    device: torch.device,
    resume: checkpoint.Checkpoint | None = None,
    progress: bool = True,
    meta: dict[str, Any] | None = None,
) -> tuple[FusionNet, dict[str, float]]:
    """Train (or continue, from ``resume``) to ``config.steps``; returns the network (eval
    mode) and the last logged losses. ``run_dir`` None keeps everything in memory."""
    from pilot.agents.common.recorder import Recorder
    from pilot.progress import Progress

    torch.manual_seed(config.seed)
    model = FusionNet(config.model, geometry).to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    step = 0
    if resume is not None:
        model.load_state_dict(resume.state["model"])
        optimizer.load_state_dict(resume.state["optimizer"])
        step = int(resume.meta["step"])
    folder = Path(run_dir) / "checkpoints" if run_dir is not None else None
    recorder = Recorder(run_dir, config.steps, start_step=step, progress_bar=False)
    bar = Progress(config.steps, desc="train", unit="step", initial=step, enabled=progress)
    weights = config.loss_weights()
    light_classes = None  # rare light states weigh more (the expert waits at red)
    if config.light_balance > 0:
        balance = light_class_weights(
            bank.arrays["light"], len(geometry.light_states), config.light_balance
        )
        light_classes = torch.as_tensor(balance, device=device)
    last: dict[str, float] = {}
    sums: dict[str, float] = {}
    count, t0 = 0, time.perf_counter()
    model.train()
    try:
        while step < config.steps:
            # 1. a batch: drawn from (seed, step), so a resumed run draws what it would have
            rng = np.random.default_rng([config.seed, step])
            batch = bank.batch(
                draw(rng, len(bank), config.batch_size), geometry, config.model, device
            )
            # 2. forward and losses
            out = model(batch["camera"], batch["lidar_bev"], batch.get("light_heads"))
            terms = losses(out, batch, weights, light_classes)
            # one copy to the host per step, for the check and the log alike (a read per
            # term would wait for the GPU once per term)
            values = torch.stack([v.detach() for v in terms.values()]).tolist()
            values = dict(zip(terms, values, strict=True))
            if not math.isfinite(values["total"]):  # before the step spoils the weights
                bad = [k for k, v in values.items() if not math.isfinite(v)]
                raise TrainingDiverged(f"loss {', '.join(bad)} became non-finite at step {step}")
            # 3. update
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(config, step)
            optimizer.zero_grad(set_to_none=True)
            terms["total"].backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            step += 1
            # 4. log (NaN/inf stop the run before anything is saved) and checkpoint
            for k, v in values.items():
                sums[k] = sums.get(k, 0.0) + v
            count += 1
            if step % config.log_every == 0 or step == config.steps:
                last = {f"loss/{k}": v / count for k, v in sums.items()}
                last["train/lr"] = learning_rate(config, step - 1)
                recorder.log(step, last)
                bar.set_postfix_str(f"loss {last['loss/total']:.3f}", refresh=False)
                sums, count = {}, 0
            bar.update(1)
            if folder is not None and (
                step == config.steps
                or (config.checkpoint_every and step % config.checkpoint_every == 0)
            ):
                save(folder, model, optimizer, step, config, **(meta or {}))
                recorder.flush()
    except KeyboardInterrupt:  # keep the work done so far: --resume goes on from here
        if folder is not None and step > 0:
            save(folder, model, optimizer, step, config, **(meta or {}))
        raise
    finally:
        bar.close()
        recorder.close()
    last["train/seconds"] = time.perf_counter() - t0
    return model.eval(), last
