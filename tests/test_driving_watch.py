"""`pilot watch` on a driving env: the camera image, the lidar and the BEV side by side."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest

import pilot.envs  # noqa: F401 - registers the pilot/... ids
from pilot import video
from pilot.cli import main
from pilot.envs import make_env

LANEKEEP, HIGHWAY = "pilot/Driving-LaneKeep-v0", "pilot/Driving-Highway-v0"
CAMERA = {"sensors": ("state", "lidar", "camera")}


def follow_steps(env, n: int) -> None:
    for _ in range(n):
        env.step(env.unwrapped.follow_route())


def test_panels_are_the_agents_camera_a_lidar_plot_and_the_bev():
    env = make_env(LANEKEEP, camera={"width": 64, "height": 48}, **CAMERA)
    obs, _ = env.reset(seed=0)
    panels = env.unwrapped.sensor_panels(size=200)
    assert [title.split()[0] for title, _ in panels] == ["camera", "lidar", "BEV"]
    (_, cam), (_, lidar), (_, bev) = panels
    np.testing.assert_array_equal(cam, obs["camera"])  # exactly what the agent saw
    assert lidar.shape == bev.shape == (200, 200, 3)
    for image in (cam, lidar, bev):
        assert image.dtype == np.uint8 and image.std() > 5.0
    env.close()


def test_without_a_camera_in_the_observation_the_chase_camera_is_shown():
    env = make_env(LANEKEEP, render_mode="rgb_array")
    env.reset(seed=0)
    (title, first), (lidar_title, _), _ = env.unwrapped.sensor_panels()
    assert title.startswith("chase camera")
    assert first.shape == env.render()[:, : first.shape[1]].shape  # the render's left half
    assert "not in obs" not in lidar_title
    env.close()


def test_lidar_plot_marks_a_vehicle_where_the_sweep_hit_it():
    env = make_env(HIGHWAY, vehicles=1)
    env.reset(seed=0, options={"vehicles": [{"ahead": 15.0, "speed": 0.0}]})
    u = env.unwrapped
    size = 300
    image = u.lidar_image(size)
    blue = np.array([40, 90, 200])  # the vehicle class colour
    near = np.abs(image.astype(int) - blue).sum(axis=2) < 40
    rows, cols = np.nonzero(near)
    assert len(rows) > 3
    # 15 m ahead (centre to centre; the returns are on its rear, ~2 m nearer), same lane
    px_per_m = 0.5 * (size - 8) / u.lidar_spec.max_range
    ahead = (size / 2 - rows.mean()) / px_per_m
    assert 11.0 < ahead < 15.0 and abs(cols.mean() - size / 2) < 2.0 * px_per_m
    env.close()


@pytest.mark.parametrize("sensors", [("state", "lidar"), ("state",)])
def test_bev_shows_the_lidar_returns_as_dots_one_can_pick_out(sensors):
    env = make_env(HIGHWAY, vehicles=1, sensors=sensors)
    env.reset(seed=0, options={"vehicles": [{"ahead": 15.0, "speed": 0.0}]})
    u = env.unwrapped
    size, extent = 300, 60.0
    bev = u.bev_image(size, extent)
    marked = (bev == np.array(u.LIDAR_RETURN)).all(axis=2)
    rows, cols = np.nonzero(marked)
    assert marked.sum() > 40  # dots, not single pixels
    # on the vehicle's rear: ~13 m ahead of the car's centre (row 0.65 * size), same lane
    ahead = (0.65 * size - rows.mean()) * extent / size
    assert 10.0 < ahead < 15.0 and abs(cols.mean() - size / 2) * extent / size < 2.0
    env.close()


def test_showing_the_panels_does_not_change_the_rollout():
    def rollout(show: bool) -> list[np.ndarray]:
        env = make_env(LANEKEEP, lidar={"noise_std": 0.1}, **CAMERA)
        env.reset(seed=4)
        out = []
        for _ in range(5):
            if show:
                env.unwrapped.sensor_panels()
            obs, *_ = env.step(np.array([0.1, 0.5]))
            out.append(obs["lidar"])
        env.close()
        return out

    for a, b in zip(rollout(False), rollout(True), strict=True):
        np.testing.assert_array_equal(a, b)


def test_panel_row_scales_to_one_height_and_titles_each_panel():
    a = np.full((84, 84, 3), 200, np.uint8)
    b = np.zeros((240, 320, 3), np.uint8)
    row = video.panel_row([("a", a), ("b", b)], height=120)
    assert row.shape[0] == 120 + 24
    assert row.shape[1] == 120 + 4 + 160
    assert (row[:120, :120] == 200).all()


@pytest.mark.parametrize("with_camera", [True, False])
def test_watch_shows_camera_lidar_and_bev_side_by_side(with_camera, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    sensors = "[state,lidar,camera]" if with_camera else "[state,lidar]"
    args = ["train", "ppo", "--env", LANEKEEP, "--steps", "256", "--no-progress"]
    args += ["--set", "n_envs=2", "--set", "n_steps=64", "--set", f"env.sensors={sensors}"]
    assert main(args) == 0
    out = capsys.readouterr().out
    run = next(x for x in out.splitlines() if x.startswith("run directory:")).split(":", 1)[1]
    assert main(["watch", run.strip(), "--max-steps", "5", "--format", "gif"]) == 0
    out = capsys.readouterr().out
    path = Path(next(line.split()[1] for line in out.splitlines() if line.startswith("video:")))
    frames = [np.asarray(f)[..., :3] for f in imageio.mimread(path)]
    assert len(frames) == 5
    frame = frames[-1]
    band = 8 + 18 * 2  # the two caption lines sit on a band above the panels, not on them
    height, width = frame.shape[:2]
    # three panels of the content height (the camera square or the 4:3 chase view, the
    # lidar plot and the BEV square), 4-pixel gaps, titles on a 24-pixel strip
    content = height - band - 24
    first = content if with_camera else round(content * 4 / 3)
    assert abs(width - (first + 2 * content + 8)) <= 2
    starts = [0, first + 4, first + content + 8]
    ends = [first, first + content + 4, width]
    panels = [
        frame[band : band + content, a + 2 : b - 2] for a, b in zip(starts, ends, strict=True)
    ]
    for panel in panels:  # every panel shows something, its top rows too
        assert panel.astype(float).std() > 10.0
        assert panel[:40].astype(float).std() > 3.0
    assert frame[:band].max() > 150  # the caption is written on its band
    titles = frame[band + content :, :]
    assert titles.max() > 150  # the panel titles are written
