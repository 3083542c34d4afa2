"""Saliency maps (Captum's Integrated Gradients and Grad-CAM) on networks whose answer is
known: the map's mass sits where the output reads the image, for tensor and dict inputs,
and `pilot watch --explain` draws it beside the frame."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from pilot.eval.saliency import Saliency, saliency

torch.set_num_threads(1)

H = W = 32
QUADRANT = (slice(0, H // 2), slice(0, W // 2))


def _mass_in(maps: np.ndarray, region: tuple[slice, slice]) -> float:
    """Share of each map's mass inside ``region`` (the smallest over the batch)."""
    inside = maps[(slice(None), *region)].reshape(len(maps), -1).sum(1)
    return float((inside / maps.reshape(len(maps), -1).sum(1)).min())


class QuadrantReader(nn.Module):
    """A fixed conv over the whole image, then a linear layer that reads only the conv
    features of the top-left quadrant: the output depends on those pixels alone (and the
    3×3 kernel's one-pixel fringe)."""

    def __init__(self, channels_last: bool = False) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.channels_last = channels_last
        self.conv = nn.Conv2d(4 if not channels_last else 3, 8, 3, padding=1)
        self.head = nn.Linear(8 * (H // 2) * (W // 2), 3)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.permute(0, 3, 1, 2)
        features = torch.tanh(self.conv(x.float() / 255.0))
        return self.head(features[:, :, : H // 2, : W // 2].flatten(1))


def _frames(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.as_tensor(rng.integers(0, 256, shape, dtype=np.uint8))


@pytest.mark.parametrize("layout", ["channel-first", "channel-last"])
def test_integrated_gradients_find_the_quadrant_the_output_reads(layout):
    last = layout == "channel-last"
    net = QuadrantReader(channels_last=last)
    frames = _frames((2, H, W, 3) if last else (2, 4, H, W))
    maps = saliency(net, frames, target=torch.tensor([0, 2]), method="ig")
    assert maps.shape == (2, H, W) and maps.dtype == np.float32
    assert maps.min() >= 0.0 and np.allclose(maps.reshape(2, -1).max(1), 1.0)
    # the 3×3 kernel reaches one pixel past the quadrant: that fringe is all that leaks
    assert _mass_in(maps, QUADRANT) > 0.9
    fringe = (slice(0, H // 2 + 1), slice(0, W // 2 + 1))
    assert _mass_in(maps, fringe) > 0.999


class ColourDetector(nn.Module):
    """Channel 0 of the conv fires on red pixels, channel 1 on green ones; the output is
    the total red response. Grad-CAM must pick channel 0 and so show the red square."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)
        with torch.no_grad():
            self.conv.weight.copy_(
                torch.tensor([[1.0, -1.0, -1.0], [-1.0, 1.0, -1.0]]).view(2, 3, 1, 1)
            )
            self.conv.bias.zero_()
        self.pool = nn.AvgPool2d(4)  # Grad-CAM upsamples from this coarser grid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.relu(self.conv(x / 255.0))
        return self.pool(a).sum(dim=(2, 3))  # (B, 2): red and green evidence


def _red_and_green() -> torch.Tensor:
    image = torch.zeros(1, 3, H, W)
    image[0, 0, 2:12, 2:12] = 255.0  # red square, top-left
    image[0, 1, 20:30, 20:30] = 255.0  # green square, bottom-right
    return image


@pytest.mark.parametrize("method", ["ig", "gradcam"])
def test_both_methods_show_the_object_the_chosen_output_detects(method):
    net = ColourDetector()
    image = _red_and_green()
    red = saliency(net, image, target=0, method=method)
    green = saliency(net, image, target=1, method=method)
    assert red.shape == green.shape == (1, H, W)
    assert _mass_in(red, QUADRANT) > 0.9
    assert _mass_in(green, (slice(H // 2, H), slice(W // 2, W))) > 0.9


def test_gradcam_finds_the_last_convolution_without_being_told():
    net = ColourDetector()
    explain = Saliency(net, "gradcam")
    explicit = Saliency(net, "gradcam", layers=net.conv)
    image = _red_and_green()
    np.testing.assert_allclose(explain(image, 0), explicit(image, 0), atol=1e-6)


class CameraLidarState(nn.Module):
    """A fusion toy: camera (B, H, W, 3) uint8, lidar BEV (B, 2, N, N) float and a state
    vector, each with its own branch; the output reads the camera's top-left quadrant and
    the BEV's bottom-right quadrant."""

    def __init__(self) -> None:
        super().__init__()
        self.camera = nn.Conv2d(3, 4, 3, padding=1)
        self.bev = nn.Conv2d(2, 4, 3, padding=1)
        self.state = nn.Linear(5, 4)
        gen = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.2)

    def forward(self, obs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        cam = torch.tanh(self.camera(obs["camera"].permute(0, 3, 1, 2).float() / 255.0))
        bev = torch.tanh(self.bev(obs["lidar_bev"]))
        n = bev.shape[-1]
        score = (
            cam[:, :, : H // 2, : W // 2].sum((1, 2, 3))
            + bev[:, :, n // 2 :, n // 2 :].sum((1, 2, 3))
            + self.state(obs["state"]).sum(1)
        )
        return {"score": score, "unused": cam.mean((1, 2, 3))}


@pytest.mark.parametrize("method", ["ig", "gradcam"])
def test_dict_inputs_get_one_map_per_image_at_its_own_resolution(method):
    net = CameraLidarState()
    gen = torch.Generator().manual_seed(2)
    n = 20
    obs = {
        "camera": _frames((1, H, W, 3), seed=3),
        "lidar_bev": torch.rand(1, 2, n, n, generator=gen),
        "state": torch.rand(1, 5, generator=gen),
    }
    explain = Saliency(net, method)
    maps = explain(obs, target=lambda out: out["score"])
    assert sorted(maps) == ["camera", "lidar_bev"]  # the state vector is not an image
    assert maps["camera"].shape == (1, H, W) and maps["lidar_bev"].shape == (1, n, n)
    if method == "ig":  # dependence, pixel by pixel
        assert _mass_in(maps["camera"], (slice(0, H // 2 + 1), slice(0, W // 2 + 1))) > 0.99
        assert _mass_in(maps["lidar_bev"], (slice(n // 2 - 1, n), slice(n // 2 - 1, n))) > 0.99
    else:  # each key got its own branch's convolution, found without being named
        layers = {"camera": net.camera, "lidar_bev": net.bev}
        told = Saliency(net, method, layers=layers)(obs, lambda out: out["score"])
        for key in layers:
            assert maps[key].max() == pytest.approx(1.0)
            np.testing.assert_allclose(maps[key], told[key], atol=1e-6)
    only = Saliency(net, method, image_keys=["lidar_bev"])(obs, lambda out: out["score"])
    assert list(only) == ["lidar_bev"]


def test_an_output_that_ignores_the_image_gives_an_all_zero_map():
    net = CameraLidarState()
    obs = {
        "camera": _frames((1, H, W, 3)),
        "lidar_bev": torch.zeros(1, 2, 8, 8),
        "state": torch.ones(1, 5),
    }
    maps = saliency(net, obs, target=lambda out: net.state(obs["state"]).sum(1) + 0 * out["unused"])
    assert not maps["lidar_bev"].any()


def test_bad_requests_are_value_errors():
    with pytest.raises(ValueError, match="unknown saliency method 'shap'"):
        Saliency(nn.Identity(), "shap")
    with pytest.raises(ValueError, match="needs a convolutional layer"):
        saliency(
            nn.Sequential(nn.Flatten(), nn.Linear(16, 2)), torch.ones(1, 1, 4, 4), 0, "gradcam"
        )
    with pytest.raises(ValueError, match="one scalar per sample"):
        saliency(lambda x: x, torch.ones(1, 1, 4, 4))


# ------------------------------------------------------------------ pilot watch --explain
def _save(folder, algo: str, env_id: str, **overrides):
    """An untrained agent's checkpoint: its network is what gets explained, trained or not."""
    from pilot.agents import build_config, get_algorithm, save_agent

    config = build_config(algo, env_id, overrides=overrides)
    save_agent(get_algorithm(algo)(env_id, config, seed=0, device="cpu"), folder)
    return folder


def _watch(args, capsys) -> tuple[int, str, str]:
    from pilot.cli import main

    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


CAMERA = {"sensors": ["state", "camera"], "camera": {"width": 64, "height": 48}}


@pytest.mark.parametrize(
    ("algo", "env_id", "overrides", "method"),
    [
        ("dqn", "pilot/Atari-Breakout-v0", {"buffer_size": 1000}, "ig"),
        ("ppo", "pilot/Driving-LaneKeep-v0", {"env": CAMERA}, "gradcam"),
    ],
)
def test_watch_explain_draws_the_map_beside_each_frame(
    algo, env_id, overrides, method, tmp_path, capsys
):
    import imageio.v2 as imageio

    ckpt = _save(tmp_path / "ckpt", algo, env_id, **overrides)
    base = ["watch", ckpt, "--max-steps", 2, "--deterministic", "--device", "cpu"]
    assert _watch([*base, "--out", tmp_path / "plain.gif"], capsys)[0] == 0
    rc, out, _ = _watch([*base, "--explain", method, "--out", tmp_path / "x.gif"], capsys)
    assert rc == 0 and "video:" in out
    plain = np.asarray(imageio.mimread(tmp_path / "plain.gif")[0])[..., :3]
    frames = [np.asarray(f)[..., :3] for f in imageio.mimread(tmp_path / "x.gif")]
    assert len(frames) == 2
    for frame in frames:
        assert frame.shape[0] == plain.shape[0] and frame.shape[1] > plain.shape[1] + 100
        # the frame itself is unchanged on the left; on the right the picture is grey and
        # only the heat map has colour
        assert np.abs(frame[:, : plain.shape[1]].astype(int) - plain).mean() < 3.0
        extra = frame[:, plain.shape[1] + 4 :].astype(int)
        assert (extra.max(axis=2) - extra.min(axis=2) > 40).mean() > 0.01


def test_watch_explain_without_an_image_input_is_one_line(tmp_path, capsys):
    ckpt = _save(tmp_path / "cp", "ppo", "CartPole-v1")
    rc, out, err = _watch(["watch", ckpt, "--explain", "--out", tmp_path / "c.gif"], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "--explain" in err and "CartPole-v1" in err and "image" in err
    assert not (tmp_path / "c.gif").exists()


def test_watch_explain_names_its_methods(tmp_path, capsys):
    rc, _, err = _watch(["watch", tmp_path, "--explain", "shap"], capsys)
    assert rc == 2 and "invalid choice: 'shap'" in err and len(err.strip().splitlines()) == 1


def test_watch_explain_refuses_a_non_image_agent_before_torch_loads(tmp_path):
    """Asked of a fresh process, through the watch command alone (not timed)."""
    import subprocess
    import sys

    ckpt = _save(tmp_path / "cp", "ppo", "CartPole-v1")
    script = (
        "import argparse, sys\n"
        "from pilot import watch_cmd\n"
        "from pilot.errors import UserError\n"
        "parser = argparse.ArgumentParser()\n"
        "watch_cmd.add_parser(parser.add_subparsers())\n"
        f"args = parser.parse_args(['watch', {str(ckpt)!r}, '--explain', '--out', 'x.gif'])\n"
        "try:\n"
        "    watch_cmd.run(args)\n"
        "except UserError as exc:\n"
        "    print('refused', 'torch' in sys.modules, exc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert proc.stdout.startswith("refused False --explain"), proc.stdout + proc.stderr
