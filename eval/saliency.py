"""Saliency maps: which input pixels a network's chosen output depends on.

Two attribution methods from Captum, chosen by name:

* ``"ig"`` — Integrated Gradients (Sundararajan et al. 2017): the gradient of the output
  integrated along the straight path from a baseline (by default all zeros: a black
  image, an empty BEV) to the input. It measures dependence pixel by pixel; the map is
  ``|attribution|`` summed over the channels.
* ``"gradcam"`` — Grad-CAM (Selvaraju et al. 2017) on the last convolution that reads the
  image: that layer's activations weighted by their pooled gradients, kept where positive,
  upsampled (bilinear) to the input's resolution. Coarser, and it shows where the
  features the output uses are *active*, which is what it is for.

The model is any callable from a batch (a tensor, or a dict of tensors for multi-input
networks such as camera + lidar + state) to an output; a ``target`` picks one scalar per
sample from that output (an index, one index per sample, or a callable such as "channel 3
summed over a region"). Maps come back as numpy ``(B, H, W)`` arrays in ``[0, 1]`` at each
image's own resolution, one per image-like input. Nothing here draws; overlays are the
caller's (``pilot.video.heat_overlay``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

METHODS = ("ig", "gradcam")

Inputs = torch.Tensor | dict[str, torch.Tensor]
Target = int | Sequence[int] | torch.Tensor | Callable[[Any], torch.Tensor] | None


def image_keys_of(inputs: dict[str, torch.Tensor]) -> list[str]:
    """Keys whose batched tensors look like images: ``(B, C, H, W)``, ``(B, H, W, C)`` or
    ``(B, H, W)``; vectors ``(B, D)`` are not."""
    return [k for k, v in inputs.items() if v.dim() in (3, 4)]


def channels_last(shape: Sequence[int]) -> bool:
    """A batched 4-D image ``(B, H, W, C)`` with C ≤ 4, as opposed to ``(B, C, H, W)``
    (the rule the torsos use: cameras are channel-last, frame stacks channel-first)."""
    return len(shape) == 4 and shape[-1] <= 4 < shape[1]


def _pick(out: Any, target: Callable[[Any], torch.Tensor] | None) -> torch.Tensor:
    """One scalar per sample, shape (B,), from a callable target (or the output itself)."""
    value = out if target is None else target(out)
    if value.dim() == 2 and value.shape[1] == 1:
        value = value[:, 0]
    if value.dim() != 1:
        raise ValueError(f"the target must give one scalar per sample, got shape {value.shape}")
    return value


def _captum_target(target: Target) -> tuple[Callable | None, Any]:
    """(what the forward applies, what Captum indexes): an index, or one index per sample,
    goes to Captum, which repeats it along Integrated Gradients' path steps."""
    if target is None or callable(target):
        return target, None
    index = torch.as_tensor(target).long()
    return (lambda out: out), (int(index) if index.dim() == 0 else index.flatten().tolist())


class Saliency:
    """Saliency maps of one model, by one method; reuse it frame after frame.

    ``model``: a callable from a batch to an output. ``method``: ``"ig"`` or ``"gradcam"``.
    ``image_keys``: for dict batches, the keys to map (default: every image-like tensor,
    see :func:`image_keys_of`); the other keys are passed through unattributed.
    ``layers``: for Grad-CAM, the layer per image key (or one layer for a tensor batch);
    by default the last ``nn.Conv2d`` run in the forward pass that depends on that key,
    searched in ``network`` (default: ``model`` itself when it is an ``nn.Module``).
    ``steps``: Integrated Gradients' path steps. ``baselines``: IG's reference input per
    key (a number or a tensor); default zeros.
    """

    def __init__(
        self,
        model: Callable[[Inputs], Any],
        method: str = "ig",
        *,
        image_keys: Sequence[str] | None = None,
        layers: nn.Module | dict[str, nn.Module] | None = None,
        network: nn.Module | Iterable[nn.Module] | None = None,
        steps: int = 32,
        baselines: float | torch.Tensor | dict[str, float | torch.Tensor] | None = None,
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"unknown saliency method '{method}'; choose one of {METHODS}")
        if steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")
        self.model, self.method, self.steps = model, method, steps
        self.image_keys = None if image_keys is None else list(image_keys)
        self.layers = layers
        self.baselines = baselines
        if network is None:
            network = model if isinstance(model, nn.Module) else None
        if isinstance(network, nn.Module):
            network = [network]
        self.network = list(network) if network is not None else None

    # ------------------------------------------------------------------------- public
    def __call__(self, inputs: Inputs, target: Target = None) -> np.ndarray | dict[str, np.ndarray]:
        """Maps for ``inputs``: ``(B, H, W)`` for a tensor batch, ``{key: (B, H, W)}`` for
        a dict batch, each normalised per sample to ``[0, 1]`` (all zeros where the output
        depends on nothing)."""
        single = not isinstance(inputs, dict)
        batch = {"_": inputs} if single else dict(inputs)
        keys = ["_"] if single else (self.image_keys or image_keys_of(batch))
        missing = [k for k in keys if k not in batch]
        if missing:
            raise KeyError(f"no input named {missing}; the batch has {sorted(batch)}")
        if not keys:
            raise ValueError("the batch has no image-like input to explain")
        images = tuple(batch[k].detach().float() for k in keys)
        rest = [k for k in batch if k not in keys]
        extra = tuple(batch[k] for k in rest)

        pick, index = _captum_target(target)

        def forward(*args: torch.Tensor) -> torch.Tensor:
            parts = dict(zip(keys, args[: len(keys)], strict=True))
            parts.update(zip(rest, args[len(keys) :], strict=True))
            out = self.model(parts["_"] if single else parts)
            out = out if index is not None else _pick(out, pick)
            # an output that ignores an image still has a (zero) gradient for it
            return out + sum(0.0 * a.sum() for a in args[: len(keys)])

        if self.method == "ig":
            raw = self._integrated_gradients(forward, keys, images, extra, index)
        else:
            raw = self._gradcam(forward, keys, images, extra, batch, index)
        maps = {k: _normalise(m) for k, m in raw.items()}
        return maps["_"] if single else maps

    # ------------------------------------------------------------------------ methods
    def _integrated_gradients(self, forward, keys, images, extra, index) -> dict[str, np.ndarray]:
        from captum.attr import IntegratedGradients

        baselines = tuple(self._baseline(k, x) for k, x in zip(keys, images, strict=True))
        attributions = IntegratedGradients(forward).attribute(
            images,
            baselines=baselines,
            target=index,
            additional_forward_args=extra or None,
            n_steps=self.steps,
            internal_batch_size=max(1, len(images[0])) * self.steps,
        )
        return {
            k: _channel_sum(a.abs(), x.shape)
            for k, a, x in zip(keys, attributions, images, strict=True)
        }

    def _gradcam(self, forward, keys, images, extra, batch, index) -> dict[str, np.ndarray]:
        from captum.attr import LayerAttribution, LayerGradCam

        layers = self._gradcam_layers(keys, batch)
        out = {}
        for key, x in zip(keys, images, strict=True):
            cam = LayerGradCam(forward, layers[key]).attribute(
                images,
                target=index,
                additional_forward_args=extra or None,
                relu_attributions=True,
            )
            if isinstance(cam, tuple):  # a layer with several outputs: its first
                cam = cam[0]
            size = _spatial(x.shape)
            cam = LayerAttribution.interpolate(cam.detach(), size, interpolate_mode="bilinear")
            out[key] = cam.sum(dim=1).clamp_min(0).cpu().numpy()
        return out

    def _baseline(self, key: str, x: torch.Tensor) -> torch.Tensor:
        b = self.baselines
        if isinstance(b, dict):
            b = b.get(key)
        if b is None:
            return torch.zeros_like(x)
        return torch.as_tensor(b, dtype=x.dtype, device=x.device).expand_as(x)

    def _gradcam_layers(self, keys: list[str], batch: dict) -> dict[str, nn.Module]:
        if isinstance(self.layers, nn.Module):
            if len(keys) != 1:
                raise ValueError("one Grad-CAM layer for several images: pass a dict per key")
            return {keys[0]: self.layers}
        given = dict(self.layers or {})
        todo = [k for k in keys if k not in given]
        if todo:
            given.update(self._find_last_convs(todo, batch))
        return given

    def _find_last_convs(self, keys: list[str], batch: dict) -> dict[str, nn.Module]:
        """For each key, the last ``nn.Conv2d`` of the forward pass whose output depends
        on that input (preferring one that depends on it alone): Grad-CAM's usual layer,
        found without knowing the network's attribute names."""
        if not self.network:
            raise ValueError(
                "Grad-CAM needs the network to search for its last convolution: pass "
                "network=... (or layers=...) when the model is not an nn.Module"
            )
        convs = [m for net in self.network for m in net.modules() if isinstance(m, nn.Conv2d)]
        if not convs:
            raise ValueError("Grad-CAM needs a convolutional layer; the network has none")
        ran: list[tuple[nn.Module, torch.Tensor]] = []
        hooks = [c.register_forward_hook(lambda m, _i, o: ran.append((m, o))) for c in convs]
        single = list(batch) == ["_"]
        probe = {
            k: v.detach().float().requires_grad_() if k in keys else v for k, v in batch.items()
        }
        try:
            with torch.enable_grad():
                self.model(probe["_"] if single else probe)
        finally:
            for h in hooks:
                h.remove()
        inputs = [probe[k] for k in keys]
        alone: dict[str, nn.Module] = {}
        shared: dict[str, nn.Module] = {}
        for module, output in ran:
            if not output.requires_grad:
                continue
            grads = torch.autograd.grad(output.sum(), inputs, retain_graph=True, allow_unused=True)
            depends = [k for k, g in zip(keys, grads, strict=True) if g is not None]
            for k in depends:
                shared[k] = module
                if len(depends) == 1:
                    alone[k] = module
        found = {k: alone.get(k, shared.get(k)) for k in keys}
        lacking = [k for k, m in found.items() if m is None]
        if lacking:
            names = "the image" if single else ", ".join(lacking)
            raise ValueError(f"no convolution reads {names}: Grad-CAM has no layer to use")
        return found


def saliency(
    model: Callable[[Inputs], Any],
    inputs: Inputs,
    target: Target = None,
    method: str = "ig",
    **options: Any,
) -> np.ndarray | dict[str, np.ndarray]:
    """One-off :class:`Saliency` call: maps of ``target`` (see :class:`Saliency`)."""
    return Saliency(model, method, **options)(inputs, target)


# ------------------------------------------------------------------------------ helpers
def _spatial(shape: Sequence[int]) -> tuple[int, int]:
    if len(shape) == 3:  # (B, H, W)
        return int(shape[1]), int(shape[2])
    if channels_last(shape):
        return int(shape[1]), int(shape[2])
    return int(shape[2]), int(shape[3])


def _channel_sum(a: torch.Tensor, shape: Sequence[int]) -> np.ndarray:
    """(B, H, W) from an attribution of the input's shape."""
    if a.dim() == 4:
        a = a.sum(dim=3 if channels_last(shape) else 1)
    return a.detach().cpu().float().numpy()


def _normalise(maps: np.ndarray) -> np.ndarray:
    """Each sample's map divided by its maximum (an all-zero map stays zero)."""
    maps = np.nan_to_num(np.maximum(maps, 0.0).astype(np.float32))
    peak = maps.reshape(len(maps), -1).max(axis=1)
    scale = np.where(peak > 0, peak, 1.0).astype(np.float32)
    return maps / scale[:, None, None]
