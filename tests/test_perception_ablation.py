"""The modality ablation: sensor corruptions on hand-made inputs, the command end to end on
a tiny dataset, and its one-line errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from pilot.config import from_dict
from pilot.perception.ablation import blur, darken, drop_rays, lidar_bev, range_noise
from pilot.perception.episodes import CollectConfig

MAX = 50.0


def test_dropout_keeps_about_half_the_returns_and_turns_the_rest_into_misses():
    ranges = np.full(20000, 12.5, dtype=np.float32)
    ranges[:1000] = MAX  # misses stay misses
    out = drop_rays(ranges, 0.5, np.random.default_rng(0), MAX)
    kept = out[1000:] == 12.5
    assert abs(kept.mean() - 0.5) < 0.02
    assert np.all(out[1000:][~kept] == MAX) and np.all(out[:1000] == MAX)
    again = drop_rays(ranges, 0.5, np.random.default_rng(0), MAX)
    assert np.array_equal(out, again)  # seeded
    assert np.array_equal(drop_rays(ranges, 0.0, np.random.default_rng(1), MAX), ranges)


def test_range_noise_moves_returns_by_sigma_and_leaves_misses():
    ranges = np.full(20000, 10.0, dtype=np.float32)
    ranges[::2] = MAX
    ranges[1] = 49.99  # near the limit: stays a return
    out = range_noise(ranges, 0.3, np.random.default_rng(0), MAX)
    assert np.all(out[::2] == MAX)
    moved = out[3::2] - 10.0
    assert abs(moved.std() - 0.3) < 0.01 and abs(moved.mean()) < 0.01
    assert out[1] < MAX


def test_darkening_scales_pixels_and_blur_keeps_the_mean_but_not_the_edge():
    image = np.zeros((1, 8, 10, 3), dtype=np.uint8)
    image[0, :, 5:] = 200
    image[0, 0, 0] = (10, 101, 255)
    dark = darken(image, 0.3)
    assert dark.dtype == np.uint8 and dark[0, 0, 9, 0] == 60
    assert tuple(dark[0, 0, 0]) == (3, 30, 76)  # 3.0, 30.3, 76.5 rounded (to even)
    soft = blur(image[:, :, :, :], 2.0)
    assert soft.shape == image.shape and soft.dtype == np.uint8
    assert 0 < soft[0, 4, 4, 1] < 200 and 0 < soft[0, 4, 5, 1] < 200  # the edge is smeared
    assert abs(float(soft[..., 1].mean()) - float(image[..., 1].mean())) < 3


def test_histogram_of_rebuilt_sweep_counts_only_returns():
    """A sweep with one return straight ahead at 10 m and misses elsewhere lands in one
    cell of the upper band; dropping every ray leaves an empty histogram."""
    cfg = from_dict(CollectConfig, {"lidar": {"rays": 4, "channels": 2, "v_fov": [0.0, 1.0]}})
    ranges = np.full((1, 8), cfg.lidar.max_range, dtype=np.float32)
    ranges[0, 0] = 10.0  # channel 0 (elevation 0), azimuth 0: straight ahead at 1.9 m up
    h = lidar_bev(ranges, cfg)
    assert h.sum() == 1 and h[0, 1].sum() == 1
    row, col = cfg.labels.grid.cell(np.array(10.0), np.array(0.0))
    assert h[0, 1, int(row), int(col)] == 1
    gone = drop_rays(ranges, 1.0, np.random.default_rng(0), cfg.lidar.max_range)
    assert lidar_bev(gone, cfg).sum() == 0


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from pilot.perception.dataset import collect

    root = tmp_path_factory.mktemp("ablate") / "data"
    cfg = from_dict(CollectConfig, {"frames": 3})
    collect(root, "train", ["LaneKeep"], [0], cfg)
    collect(root, "val", ["LaneKeep"], [1], cfg)
    collect(root, "heldout", ["Obstacles"], [2], cfg)
    return root


def test_ablate_writes_every_model_and_split(tiny_data, tmp_path, capsys):
    from pilot.cli import main

    out = tmp_path / "abl"
    argv = [
        "perception",
        "ablate",
        str(tiny_data),
        "--steps",
        "2",
        "--out",
        str(out),
        "--threads",
        "1",
        "--no-progress",
        "--set",
        "model.channels=8",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| camera+lidar | heldout |" in printed and "lidar dropout 50%" in printed
    results = json.loads((out / "ablation.json").read_text())
    models = ["camera", "lidar", "camera+lidar"]
    assert list(results["scores"]) == models and list(results["robustness"]) == models
    for m in models:
        assert set(results["scores"][m]) == {"val", "heldout"}
        assert len(results["robustness"][m]) == 4
        assert (out / "models" / m.replace("+", "-") / "checkpoints").is_dir()
    # a sensor the model does not read cannot change its numbers
    assert results["robustness"]["camera"]["lidar dropout 50%"]["d_miou"] == 0
    assert results["robustness"]["lidar"]["camera dark x0.3"]["d_miou"] == 0
    origin = results["provenance"]
    assert origin["data"]["heldout"]["scenarios"] == ["Obstacles"]
    assert origin["data"]["train"]["scenarios"] == ["LaneKeep"] and origin["git_commit"] != ""
    assert origin["config"]["steps"] == 2 and origin["threads"] == 1
    rows = list(csv.DictReader((out / "ablation.csv").open()))
    assert {(r["model"], r["split"]) for r in rows if r["table"] == "ablation"} == {
        (m, s) for m in models for s in ("val", "heldout")
    }
    assert (out / "ablation.md").read_text().count("\n| camera") == 6


def test_ablate_with_light_crops_keeps_the_pooled_head_for_lidar_alone(tiny_data, tmp_path):
    """Crops need the camera: with ``model.light_crop`` the camera variant reads the
    light from crops and the lidar-only one keeps its pooled head, rather than failing."""
    from pilot.cli import main
    from pilot.perception.train import load

    out = tmp_path / "abl"
    argv = ["perception", "ablate", str(tiny_data), "--steps", "1", "--out", str(out)]
    argv += ["--modalities", "camera,lidar", "--threads", "1", "--no-progress"]
    assert main([*argv, "--set", "model.channels=8", "--set", "model.light_crop=true"]) == 0
    crops = {m: load(out / "models" / m, "cpu")[1].model.light_crop for m in ("camera", "lidar")}
    assert crops == {"camera": True, "lidar": False}


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--modalities", "camera,radar"], "unknown modality 'radar'"),
        (["--eval-splits", "val,test"], "no split 'test'"),
        (["--eval-splits", "train"], "is the training split"),
        (["--steps", "0"], "--steps"),
        (["--set", "model.chanels=8"], "did you mean: channels"),
    ],
)
def test_bad_input_is_a_one_line_error(tiny_data, extra, message, capsys, tmp_path):
    from pilot.cli import main

    assert main(["perception", "ablate", str(tiny_data), "--out", str(tmp_path), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
