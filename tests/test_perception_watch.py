"""`pilot perception watch`: a video of a trained network's predictions on a split, its
saliency panels, the saliency of the fusion network's outputs per input, and the one-line
refusals of bad arguments (before torch loads)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
import torch

from pilot.cli import main
from pilot.perception.batches import FrameBank
from pilot.perception.dataset import PerceptionDataset
from pilot.perception.model import FusionConfig, FusionNet, Geometry
from pilot.perception_watch_cmd import FusionExplainer

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Three Highway frames (a car ahead in each) as split val, and a 2-step run on them."""
    root = tmp_path_factory.mktemp("watch")
    data = root / "data"
    assert (
        main(
            [
                "perception",
                "collect",
                str(data),
                "--split",
                "val",
                "--seeds",
                "0",
                "--scenarios",
                "Highway",
                "--set",
                "frames=3",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "perception",
                "train",
                str(data),
                "--split",
                "val",
                "--steps",
                "2",
                "--runs-dir",
                str(root / "runs"),
                "--threads",
                "1",
                "--no-progress",
            ]
        )
        == 0
    )
    (run,) = (root / "runs").iterdir()
    return data, run


def frames_of(path: Path) -> list[np.ndarray]:
    return [np.asarray(f)[..., :3] for f in imageio.mimread(path)]


def watch(capsys, data, run, *extra) -> str:
    capsys.readouterr()
    argv = ["perception", "watch", str(run), str(data), "--threads", "1", *map(str, extra)]
    assert main(argv) == 0
    return capsys.readouterr().out


def test_watch_writes_a_video_of_the_frames(tiny, tmp_path, capsys):
    data, run = tiny
    out = watch(capsys, data, run, "--frames", 2, "--format", "both", "--png", tmp_path / "f.png")
    videos = [run / "videos" / f"perception-val-0.{s}" for s in ("mp4", "gif")]
    assert all(f"video: {v} (2 frames" in out for v in videos), out
    gif = frames_of(videos[1])
    assert len(gif) == 2 and len(imageio.mimread(videos[0])) == 2
    h, w = gif[0].shape[:2]
    assert h % 2 == 0 and w % 2 == 0 and w > 4 * 256 and 256 < h < 400
    import cv2

    png = cv2.imread(str(tmp_path / "f.png"))[..., ::-1]
    assert png.shape == gif[0].shape
    # the true box of the car ahead is drawn in cyan on the ground-truth panel
    assert (np.abs(png.astype(int) - (0, 255, 255)).sum(axis=2) < 30).sum() > 20
    # frames past the end of the split are not asked for: the video stops there
    out = watch(capsys, data, run, "--start", 1, "--frames", 10, "--out", tmp_path / "v.gif")
    assert len(frames_of(tmp_path / "v.gif")) == 2 and "(2 frames" in out


def test_explain_adds_a_row_of_saliency_panels(tiny, tmp_path, capsys):
    data, run = tiny
    watch(capsys, data, run, "--frames", 1, "--out", tmp_path / "plain.gif")
    out = watch(
        capsys, data, run, "--frames", 1, "--out", tmp_path / "cam.gif", "--explain", "gradcam"
    )
    watch(
        capsys,
        data,
        run,
        "--frames",
        1,
        "--out",
        tmp_path / "ig.gif",
        "--explain",
        "ig",
        "--target",
        "light",
    )
    (plain,), (cam,), (ig,) = (frames_of(tmp_path / f"{n}.gif") for n in ("plain", "cam", "ig"))
    assert cam.shape[1] == plain.shape[1] and cam.shape[0] > plain.shape[0] + 256, out
    assert ig.shape == cam.shape
    # the heat maps' colours (inferno: warm, saturated) fill part of the new row
    row = cam[plain.shape[0] - 30 : plain.shape[0] + 200].astype(int)
    assert ((row[..., 0] - row[..., 2]) > 80).sum() > 500


def explained(modalities: str, target: str, data: Path, method: str = "gradcam") -> dict:
    dataset = PerceptionDataset(data, "val")
    geometry = Geometry.from_manifest(dataset.manifest)
    config = FusionConfig(
        modalities=modalities, channels=8, camera_widths=(8, 8, 8), head_channels=8
    )
    torch.manual_seed(0)
    net = FusionNet(config, geometry).eval()
    batch = FrameBank.from_frames([dataset[0], dataset[1]]).batch([0, 1], geometry, config)
    with torch.no_grad():
        out = net(batch["camera"], batch["lidar_bev"])
    return FusionExplainer(net, method, target, 0.1)(batch, out)


@pytest.mark.parametrize("method", ["gradcam", "ig"])
def test_a_lidar_only_network_has_only_a_lidar_map(tiny, method):
    """A lidar-only network never reads the camera, so its outputs provably depend on the
    lidar alone: no camera map, and a lidar map that is not empty."""
    maps = explained("lidar", "seg:vehicle", tiny[0], method)
    assert list(maps) == ["lidar_bev"]
    assert (
        maps["lidar_bev"].shape == (2, 128, 128) and (maps["lidar_bev"].max(axis=(1, 2)) > 0).all()
    )


def test_each_sensor_of_a_network_gets_a_map(tiny):
    both = explained("camera+lidar", "objects", tiny[0], "ig")
    assert sorted(both) == ["camera", "lidar_bev"] and both["camera"].shape == (2, 96, 128)
    assert all(m.max() > 0 for m in both.values())
    assert list(explained("camera", "light", tiny[0])) == ["camera"]


def test_bad_arguments_are_one_line_exit_2_before_torch(tiny, tmp_path):
    data, run = tiny
    cases = [
        (["perception", "watch", str(tmp_path / "nope"), str(data)], "no such run directory"),
        (["perception", "watch", str(run), str(data), "--split", "vla"], "vla"),
        (["perception", "watch", str(run), str(data), "--start", "3"], "--start 3"),
        (
            ["perception", "watch", str(run), str(data), "--target", "seg:vehicel"],
            "unknown class 'vehicel' (did you mean: vehicle",
        ),
        (["perception", "watch", str(run), str(data), "--target", "boxes"], "--target 'boxes'"),
        (["perception", "watch", str(run), str(data), "--frames", "0"], "--frames"),
        (["perception", "watch", str(run), str(data), "--out", "v.avi"], "unknown video format"),
        (["perception", "watch", str(run), str(data), "--png", "f.jpg"], "must end in .png"),
        (["perception", "watch", str(run), str(data), "--explain", "shap"], "invalid choice"),
    ]
    script = (
        "import contextlib, io, json, sys\n"
        "from pilot.cli import main\n"
        "out = []\n"
        f"for args in {[a for a, _ in cases]!r}:\n"
        "    err = io.StringIO()\n"
        "    with contextlib.redirect_stderr(err):\n"
        "        rc = main(args)\n"
        "    out.append((rc, err.getvalue(), 'torch' in sys.modules))\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    results = json.loads(proc.stdout.splitlines()[-1])
    for (args, words), (rc, err, torch_loaded) in zip(cases, results, strict=True):
        assert rc == 2 and not torch_loaded, (args, err)
        assert err.startswith("pilot: error: ") and err.count("\n") == 1, (args, err)
        assert words in err, (args, err)
    assert not list(tmp_path.iterdir()), "a refused command writes nothing"


@pytest.mark.parametrize("command", ["watch", "eval"])
def test_an_agent_run_is_named_as_what_it_is(tiny, tmp_path, capsys, command):
    """Pointing a perception command at an RL run says which agent it holds."""
    data, _ = tiny
    runs = tmp_path / "runs"
    assert (
        main(
            [
                "train",
                "ppo",
                "--env",
                "CartPole-v1",
                "--steps",
                "64",
                "--set",
                "n_envs=1",
                "--set",
                "n_steps=64",
                "--runs-dir",
                str(runs),
                "--no-progress",
            ]
        )
        == 0
    )
    (agent_run,) = runs.iterdir()
    capsys.readouterr()
    assert main(["perception", command, str(agent_run), str(data)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds a ppo agent for CartPole-v1" in err, err


def test_eval_scores_the_scenarios_asked_for(tiny, tmp_path, capsys):
    """``--scenarios`` narrows the frames scored; the report says which, and a scenario
    the split lacks, or one that does not exist, is a one-line error."""
    data, run = tiny
    out = tmp_path / "highway"
    argv = ["perception", "eval", str(run), str(data), "--threads", "1"]
    assert main([*argv, "--scenarios", "Highway", "--out", str(out)]) == 0
    assert "val-Highway: 3 frames" in capsys.readouterr().out
    saved = json.loads((out / "summary.json").read_text())
    assert saved["data"]["scenarios"] == ["Highway"] and saved["metrics"]["frames"] == 3
    for scenarios, message in [("Town", "no shards for this selection"),
                               ("Twn", "unknown scenario 'Twn' (did you mean: Town?)")]:  # fmt: skip
        assert main([*argv, "--scenarios", scenarios]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err


def test_a_crop_networks_light_depends_on_its_windows_alone(tiny):
    """The light of a ``light_crop`` network reads the image only through the heads'
    windows: its Integrated Gradients map is zero outside them (a pixel beyond the
    bilinear reach of the window) and not inside; Grad-CAM, which needs a convolution
    over the whole image, is refused in one line."""
    from pilot.errors import UserError
    from pilot.perception.light_crop import windows

    dataset = PerceptionDataset(tiny[0], "val")
    geometry = Geometry.from_manifest(dataset.manifest)
    config = FusionConfig(
        modalities="camera", channels=8, camera_widths=(8, 8, 8), head_channels=8, light_crop=True
    )
    torch.manual_seed(0)
    net = FusionNet(config, geometry).eval()
    frames = [dataset[0], dataset[1]]
    for f in frames:  # a light's heads ahead (Highway has none), both in view
        f["light_heads"] = np.array([[15.0, -3.0, 3.5], [30.0, 0.0, 5.0]], np.float32)
    batch = FrameBank.from_frames(frames).batch([0, 1], geometry, config)
    with torch.no_grad():
        out = net(batch["camera"], None, batch["light_heads"])
    maps = FusionExplainer(net, "ig", "light", 0.1)(batch, out)
    centres, halves, visible = windows(
        batch["light_heads"][:1], net.light_crop.K, net.light_crop.T, geometry.image_hw
    )
    assert visible.all()
    inside = np.zeros(geometry.image_hw, bool)
    rows, cols = np.mgrid[: geometry.image_hw[0], : geometry.image_hw[1]]
    for (u, v), half in zip(centres[0].numpy(), halves[0].numpy(), strict=True):
        inside |= (np.abs(cols - u) <= half + 1) & (np.abs(rows - v) <= half + 1)
    for m in maps["camera"]:
        assert m[~inside].max() == 0 and m[inside].max() > 0
    with pytest.raises(UserError, match="use --explain ig"):
        FusionExplainer(net, "gradcam", "light", 0.1)
