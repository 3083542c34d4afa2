"""Weather and light of the driving world: the plain day renders as before, bit for bit;
night, dusk, fog and rain change the camera the way they should and the lidar the way
real lidars are changed; depth, segmentation, the scene and the perception labels never
change; a seed gives the same weather and the same pictures; bad settings are one-line
errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env

import pilot.envs  # noqa: F401 - registers the pilot/... ids
from pilot.envs import make_env
from pilot.envs.driving.weather import CLUTTER, PRESETS
from pilot.envs.driving.world import GRASS, ROAD, SKY, VEHICLE
from pilot.errors import UserError
from pilot.perception.labels import LabelConfig, frame_labels

HIGHWAY, INTERSECTION = "pilot/Driving-Highway-v0", "pilot/Driving-Intersection-v0"
SMALL = {"width": 64, "height": 48}


def luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def first_image(preset, seed: int = 0, env_id: str = HIGHWAY, options=None, **kwargs) -> dict:
    """The observation after reset under a weather preset (a name or a mapping)."""
    weather = preset if isinstance(preset, dict) else {"preset": preset}
    kwargs.setdefault("camera", SMALL)
    kwargs.setdefault("sensors", ("camera", "depth", "segmentation"))
    env = make_env(env_id, weather=weather, **kwargs)
    obs, _ = env.reset(seed=seed, options=options)
    env.close()
    return obs


# --- the default ------------------------------------------------------------------------------
def test_default_weather_is_the_plain_render_bit_for_bit():
    def rollout(**kwargs):
        env = make_env(HIGHWAY, sensors=("camera", "lidar"), vehicles=4, **kwargs)
        obs, info = env.reset(seed=2)
        out = [obs]
        for _ in range(5):
            obs, *_, info = env.step(env.unwrapped.follow_route())
            out.append(obs)
        u = env.unwrapped
        e = u._sim.ego
        plain = u.world.camera(u.camera_spec, e.x, e.y, e.yaw)[0]  # no light, no effects
        env.close()
        return out, plain, info

    default, plain, info = rollout()
    day, _, _ = rollout(weather={"preset": "day"})
    np.testing.assert_array_equal(default[-1]["camera"], plain)
    for a, b in zip(default, day, strict=True):
        np.testing.assert_array_equal(a["camera"], b["camera"])
        np.testing.assert_array_equal(a["lidar"], b["lidar"])
    assert info["weather"] == {"preset": "day", **PRESETS["day"]}


# --- light -----------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_day_is_brighter_than_dusk_and_dusk_than_night(seed):
    mean = {p: luminance(first_image(p, seed, vehicles=6)["camera"]).mean() for p in PRESETS}
    assert mean["day"] > 1.3 * mean["dusk"] and mean["dusk"] > 2 * mean["night"]
    assert mean["night"] < 30


def test_at_night_the_traffic_shows_its_lamps_and_the_ego_lights_the_road_ahead():
    ahead = {"vehicles": [{"ahead": 15.0, "speed": 5.0}]}
    night = first_image("night", vehicles=1, options=ahead)
    dark = first_image({"preset": "night", "headlights": False}, vehicles=1, options=ahead)
    rgb, seg = night["camera"].astype(int), night["segmentation"]
    # tail lights: the reddest pixels of the night image sit on the car ahead
    redness = rgb[..., 0] - rgb[..., 1:].max(axis=-1)
    r, c = np.unravel_index(np.argmax(redness), redness.shape)
    assert redness[r, c] > 60
    assert (seg[max(r - 3, 0) : r + 4, max(c - 3, 0) : c + 4] == VEHICLE).any()
    assert (dark["camera"].astype(int)[..., 0] - dark["camera"][..., 1:].max(-1) < 10).all()
    # the ego's low beams light the road from a few metres ahead on
    road = seg == ROAD
    rows = np.flatnonzero(road.any(axis=1))
    middle = np.zeros_like(road)
    middle[rows[len(rows) // 3 : 2 * len(rows) // 3]] = True  # the middle distance
    lit, unlit = (luminance(x["camera"])[road & middle].mean() for x in (night, dark))
    assert lit > 3 * unlit


def test_fog_takes_more_contrast_from_far_pixels_than_from_near_ones():
    day = first_image("day", 3, vehicles=8)
    fog = first_image("fog", 3, vehicles=8)
    depth = day["depth"] * 80.0  # the camera's far plane
    solid = day["segmentation"] != SKY
    near, far = solid & (depth < 8.0), solid & (depth > 30.0)
    assert near.sum() > 50 and far.sum() > 50
    fog_colour = fog["camera"][day["segmentation"] == SKY].mean(axis=0)

    def contrast(img, mask):  # mean distance of the pixels' colours from the fog's
        return np.abs(img[mask].astype(float) - fog_colour).mean()

    near_kept = contrast(fog["camera"], near) / contrast(day["camera"], near)
    far_kept = contrast(fog["camera"], far) / contrast(day["camera"], far)
    assert far_kept < 0.5 * near_kept and far_kept < 0.3
    assert luminance(fog["camera"])[far].std() < 0.5 * luminance(day["camera"])[far].std()


def test_rain_darkens_tints_blue_and_streaks_the_picture():
    day = first_image("day", 4)
    rain = first_image("rain", 4)
    dry = first_image({"preset": "rain", "rain": 0.0}, 4)
    ground = np.isin(day["segmentation"], [GRASS, ROAD])
    assert luminance(rain["camera"]).mean() < 0.75 * luminance(day["camera"]).mean()

    def blue_over_red(img):
        px = img[ground].astype(float)
        return px[:, 2].mean() / px[:, 0].mean()

    assert blue_over_red(rain["camera"]) > 1.15 * blue_over_red(day["camera"])
    sky = day["segmentation"] == SKY  # uniform without rain; streaks cross it

    def streaked(img):
        lum = luminance(img)[sky]
        return (np.abs(lum - np.median(lum)) > 3).sum()

    assert streaked(dry["camera"]) == 0 and streaked(rain["camera"]) >= 5


def test_the_sun_lights_the_bodies_and_casts_shadows():
    opts = {"vehicles": [{"ahead": 10.0, "speed": 0.0}]}

    def image(weather):
        env = make_env(HIGHWAY, sensors=("camera", "segmentation"), camera=SMALL, vehicles=1,
                       weather=weather)  # fmt: skip
        obs, _ = env.reset(seed=0, options=opts)
        env.close()
        return obs

    flat = image({"preset": "day", "sun_azimuth": 0.0})
    shade = image({"preset": "day", "sun_azimuth": 0.0, "shadows": True})
    ground = np.isin(flat["segmentation"], [GRASS, ROAD])
    darker = ground & (luminance(shade["camera"]) < 0.8 * luminance(flat["camera"]))
    assert darker.sum() > 20  # the shadows of the car ahead and of the ego
    assert not (~ground & (shade["camera"] != flat["camera"]).any(axis=-1)).any()


# --- what never changes ----------------------------------------------------------------------
def test_scene_depth_segmentation_and_labels_are_the_same_in_any_weather():
    def rollout(preset):
        env = make_env(INTERSECTION, sensors=("state", "depth", "segmentation"), camera=SMALL,
                       vehicles=6, pedestrians=2, weather={"preset": preset})  # fmt: skip
        env.action_space.seed(1)
        obs, info = env.reset(seed=5)
        out = [(obs, frame_labels(env, LabelConfig()))]
        for _ in range(12):
            obs, r, *_, info = env.step(env.action_space.sample())
            out.append((obs, r, frame_labels(env, LabelConfig())))
        env.close()
        return out, info["weather"]["preset"]

    day, _ = rollout("day")
    for preset in ("night", "fog", "rain", "random"):
        other, name = rollout(preset)
        assert preset == "random" or name == preset
        for a, b in zip(day, other, strict=True):
            np.testing.assert_equal(a[:-1], b[:-1])  # observations (and rewards)
            for field in ("grid", "boxes", "box_class", "light", "waypoints"):
                np.testing.assert_array_equal(getattr(a[-1], field), getattr(b[-1], field))


# --- lidar -----------------------------------------------------------------------------------
LIDAR = {"rays": 360, "channels": 3, "v_fov": (-12.0, 0.0), "max_range": 60.0}
AHEAD = {  # boxes 12 to 55 m ahead, side by side so that none hides another
    "obstacles": [{"ahead": a, "offset": o} for a, o in ((12, 0), (25, 3), (40, -3), (55, 6))]
}


def sweeps(weather, steps: int = 8, **kwargs) -> list[tuple[np.ndarray, np.ndarray]]:
    """(ranges in metres, hit ids) of a few sweeps of a standing car, boxes ahead."""
    env = make_env(HIGHWAY, sensors=("lidar",), lidar=LIDAR, obstacles=4, initial_speed=0.0,
                   weather=weather, **kwargs)  # fmt: skip
    u = env.unwrapped
    env.reset(seed=0, options=AHEAD)
    out = [u._frame_cache["lidar"]]
    for _ in range(steps - 1):
        env.step(np.array([0.0, -1.0]))
        out.append(u._frame_cache["lidar"])
    env.close()
    return out


def test_fog_shortens_the_lidar_range_and_keeps_near_returns():
    clear, fog = sweeps({"preset": "day"}), sweeps({"preset": "fog"})
    far = [[(r[i != -1] > 25).sum() for r, i in run] for run in (clear, fog)]
    assert min(far[0]) >= 3 and sum(far[1]) <= 2  # 35 m visibility: 1% kept at 25 m
    reach = [np.median([r[i != -1].max() for r, i in run]) for run in (clear, fog)]
    assert reach[1] < 0.5 * reach[0]
    for (r0, i0), (r1, i1) in zip(clear, fog, strict=True):
        near = (i0 != -1) & (r0 < 8.0)  # the ring of ground returns 4.8 m out: all kept
        np.testing.assert_array_equal(r1[near], r0[near])
        np.testing.assert_array_equal(i1[near], i0[near])
    lost = [((i0 != -1) & (i1 == -1)).sum() for (_, i0), (_, i1) in zip(clear, fog, strict=True)]
    assert min(lost) > 0 and len(set(lost)) > 1  # drawn per step


def test_rain_adds_near_spurious_returns_and_range_noise():
    clear, rain = sweeps({"preset": "day"}), sweeps({"preset": "rain", "fog_visibility": 0.0})
    drops = [(i == CLUTTER).sum() for _, i in rain]
    assert all((i != CLUTTER).all() for _, i in clear)
    assert 2 <= np.mean(drops) <= 0.06 * len(rain[0][0])  # 2.4% of the 1080 rays, in expectation
    for r, i in rain:
        assert (r[i == CLUTTER] < 3.0).all()
    (r0, i0), (r1, i1) = clear[0], rain[0]
    both = (i0 >= 0) & (i1 == i0)
    noise = r1[both] - r0[both]
    assert 0.005 < noise.std() < 0.1


def test_rain_returns_show_in_the_lidar_bev():
    env = make_env(HIGHWAY, sensors=("lidar_bev",), vehicles=0,
                   weather={"preset": "rain", "rain": 1.0})  # fmt: skip
    obs, _ = env.reset(seed=0)
    env.close()
    n = obs["lidar_bev"].shape[-1]  # 64 cells over 40 m: the drops lie within 3 m
    assert obs["lidar_bev"][0, n // 2 - 5 : n // 2 + 5, n // 2 - 5 : n // 2 + 5].sum() > 0


# --- seeds, snapshots, errors, contract --------------------------------------------------------
def test_a_seed_gives_the_same_weather_and_pictures():
    weather = {"preset": "random", "choices": ["dusk", "night", "fog", "rain"]}

    def run(seed):
        env = make_env(HIGHWAY, sensors=("camera", "lidar"), camera=SMALL, vehicles=3,
                       weather=weather)  # fmt: skip
        obs, info = env.reset(seed=seed)
        out = [obs["camera"], obs["lidar"]]
        for _ in range(3):
            obs, *_ = env.step(env.unwrapped.follow_route())
            out += [obs["camera"], obs["lidar"]]
        env.close()
        return info["weather"], out

    names = set()
    for seed in range(6):
        (w1, a), (w2, b) = run(seed), run(seed)
        assert w1 == w2
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)
        names.add(w1["preset"])
    assert len(names) >= 2 and names <= {"dusk", "night", "fog", "rain"}
    assert names & {"fog", "rain"}  # whose noise comes from the episode's seed


def test_a_restored_snapshot_replays_the_same_rain_and_drop_outs():
    env = make_env(HIGHWAY, sensors=("camera", "lidar"), camera=SMALL, vehicles=3,
                   weather={"preset": "rain", "fog_visibility": 40.0})  # fmt: skip
    u = env.unwrapped
    env.reset(seed=1)
    snap = u.get_state()

    def replay():
        return [env.step(np.array([0.0, 0.3]))[0] for _ in range(3)]

    first = replay()
    u.set_state(snap)
    np.testing.assert_equal(first, replay())
    assert not np.array_equal(first[0]["camera"], first[1]["camera"])  # new streaks each step
    env.close()


@pytest.mark.parametrize(
    ("weather", "expected"),
    [
        ({"preset": "nite"}, "unknown weather preset 'nite' (did you mean: night?); choose from"),
        ({"choices": ["day", "snow"]}, "weather choices must name presets from day, dusk"),
        ({"rain": 2.0}, "weather rain must be in [0, 1], got 2.0"),
        ({"sun_elevation": 120.0}, "weather sun_elevation must be in [-90, 90]"),
        ({"fog_visibility": 0.5}, "fog_visibility must be 0 (no fog) or at least 1 metre"),
        ({"fog_visiblity": 30.0}, "key 'weather.fog_visiblity' for WeatherConfig (did you mean"),
        ({"rain": "heavy"}, "config key 'weather.rain' must be a number"),
    ],
)
def test_bad_weather_is_a_one_line_error_naming_the_choices(weather, expected):
    with pytest.raises(UserError) as err:
        make_env(HIGHWAY, weather=weather)
    message = str(err.value)
    assert expected in message and "\n" not in message
    if "preset" in weather:
        assert "day, dusk, night, fog, rain, random" in message


def test_gymnasium_checker_passes_with_weather_and_info_reports_it():
    env = make_env(INTERSECTION, sensors=("state", "camera", "lidar"), camera=SMALL,
                   vehicles=4, weather={"preset": "random"})  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error", category=UserWarning)
        gym_check_env(env.unwrapped)
    _, info = env.reset(seed=0)
    *_, step_info = env.step(env.action_space.sample())
    assert step_info["weather"] == info["weather"]
    assert set(info["weather"]) == {"preset", *PRESETS["day"]}
    env.close()


def test_render_and_panels_show_the_weather():
    frames, panels = {}, {}
    for preset in ("day", "night"):
        env = make_env(HIGHWAY, render_mode="rgb_array", sensors=("camera",), camera=SMALL,
                       vehicles=2, weather={"preset": preset})  # fmt: skip
        obs, _ = env.reset(seed=0)
        frames[preset] = env.render()
        panels[preset] = env.unwrapped.sensor_panels()
        np.testing.assert_array_equal(panels[preset][0][1], obs["camera"])
        env.unwrapped._frame_cache = {}  # as after set_state(): the panel renders anew
        np.testing.assert_array_equal(env.unwrapped.sensor_panels()[0][1], obs["camera"])
        env.close()
    chase = slice(0, 320)  # the chase view; the top-down view beside it is a map
    assert (
        luminance(frames["night"][:, chase]).mean()
        < 0.4 * luminance(frames["day"][:, chase]).mean()
    )
    assert "night" in panels["night"][0][0] and "day" not in panels["day"][0][0]
