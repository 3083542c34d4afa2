"""A split held in memory, and batches of it as tensors for the fusion network.

Training draws random frames from every shard; read through :class:`.PerceptionDataset`
each draw could decompress (and hash) a different shard. :class:`FrameBank` reads every
shard of the selection once (verified as always) and keeps only the arrays the network
uses: for the default dataset ~140 KB per frame, 0.35 GB for 2,500 frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from pilot.errors import UserError

if TYPE_CHECKING:
    import torch

    from .dataset import PerceptionDataset
    from .model import FusionConfig, Geometry

#: what the network reads and is trained on, per frame
KEYS = ("camera", "lidar_bev", "bev", "light", "waypoints")
#: read too when every frame has it (datasets collected before it was recorded lack it)
OPTIONAL = ("light_heads",)


class FrameBank:
    """The :data:`KEYS` of every frame of a dataset selection, plus its objects."""

    def __init__(self, arrays: dict[str, np.ndarray], box_start: np.ndarray) -> None:
        self.arrays, self.box_start = arrays, np.asarray(box_start, dtype=np.int64)

    @classmethod
    def from_dataset(cls, data: PerceptionDataset) -> FrameBank:
        """Every frame of a dataset selection, read shard by shard (each verified)."""
        parts: dict[str, list[np.ndarray]] = {
            k: [] for k in (*KEYS, *OPTIONAL, "boxes", "box_class")
        }
        starts, offset = [], 0
        for k in range(len(data.entries)):
            arrays = data.shard(k)
            for key in parts:
                parts[key].append(arrays.get(key))
            starts.append(arrays["box_start"][:-1] + offset)
            offset += int(arrays["box_start"][-1])
        arrays = {k: np.concatenate(v) for k, v in parts.items() if all(a is not None for a in v)}
        return cls(arrays, np.concatenate([*starts, [offset]]))

    @classmethod
    def from_frames(cls, frames: Sequence[dict[str, np.ndarray]]) -> FrameBank:
        """A bank of frame dicts (as :class:`.PerceptionDataset` yields, or made by hand)."""
        keys = [*KEYS, *(k for k in OPTIONAL if all(k in f for f in frames))]
        arrays = {k: np.stack([f[k] for f in frames]) for k in keys}
        arrays["boxes"] = np.concatenate([np.reshape(f["boxes"], (-1, 7)) for f in frames])
        arrays["box_class"] = np.concatenate([np.reshape(f["box_class"], -1) for f in frames])
        counts = [len(np.reshape(f["box_class"], -1)) for f in frames]
        return cls(arrays, np.concatenate([[0], np.cumsum(counts)]))

    def __len__(self) -> int:
        return len(self.arrays["camera"])

    def objects(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """``(boxes, box_class)`` of frame ``i``."""
        a, b = self.box_start[i], self.box_start[i + 1]
        return self.arrays["boxes"][a:b], self.arrays["box_class"][a:b]

    def check(self, config: FusionConfig) -> None:
        """A :class:`UserError` when the bank lacks what a network of ``config`` reads."""
        if config.light_crop and "light_heads" not in self.arrays:
            raise UserError(
                "the dataset records no light_heads (collected before they were): collect "
                "it again for a light_crop network"
            )

    def batch(
        self,
        index: Sequence[int],
        geometry: Geometry,
        config: FusionConfig,
        device: torch.device | str = "cpu",
    ) -> dict[str, torch.Tensor]:
        """Frames ``index`` as tensors on ``device``: the :data:`KEYS` (uint8 sensors and
        labels, as stored), the :data:`OPTIONAL` keys the bank has, and the object targets
        of :func:`.heads.object_targets`."""
        import torch

        from .heads import object_targets

        self.check(config)
        index = np.asarray(index, dtype=np.int64)
        out = {k: self.arrays[k][index] for k in (*KEYS, *OPTIONAL) if k in self.arrays}
        objects = [self.objects(int(i)) for i in index]
        out.update(
            object_targets([o[0] for o in objects], [o[1] for o in objects], geometry, config)
        )
        return {k: torch.from_numpy(np.ascontiguousarray(v)).to(device) for k, v in out.items()}
