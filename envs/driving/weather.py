"""Weather and light of the driving world: what the camera and the lidar see, never what is.

A :class:`WeatherConfig` names a preset (``day``, ``dusk``, ``night``, ``fog``, ``rain``) or
``random`` (one of ``choices`` per episode) and may override any of its conditions. At
each reset the env resolves it into a :class:`Weather`, the conditions in force, which
``info["weather"]`` reports. The effects:

* the sun lights the pybullet bodies through ``getCameraImage``'s light arguments
  (:meth:`Weather.light_args`); the rest of the camera's look (ground shading and cast
  shadows, sky, global light level, headlights, fog, rain) is a post-effect on the RGB
  array from the depth and class buffers the camera already renders (:mod:`.lighting`);
* fog and rain thin out and perturb the lidar's returns (:func:`weather_sweep`).

Depth, segmentation, every body and every label stay as they are. The weather's random
numbers never come from the env's generator itself: the episode's weather is drawn from a
generator seeded with that generator's state (so the scene a seed builds is the same under
any weather), and the per-step noise (rain streaks, lidar drop-outs) from a counter-based
generator keyed by the episode's weather seed and step. So a seed gives the same weather
and images, traffic is the same with and without weather, and a restored snapshot replays
the same noise.

The plain ``day`` preset (the default) changes nothing: the camera output is the same,
bit for bit, as without this module.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import numpy as np

from pilot.config import field
from pilot.errors import close_matches

from .world import PinholeCamera, World

__all__ = [
    "CLUTTER",
    "PRESETS",
    "Weather",
    "WeatherConfig",
    "draw_weather",
    "render_camera",
    "weather_rgb",
    "weather_sweep",
]

#: Lidar hit id of a spurious return from rain drops near the sensor (bodies are >= 0,
#: -1 no return, -2 the ground).
CLUTTER = -3

#: pybullet's own light when getCameraImage is given none (TinyRenderer's defaults): the
#: direction (-50, 30, 100) is azimuth 149.04°, elevation 59.74°.
DAY_SUN = (149.04, 59.74)
_AMBIENT, _DIFFUSE, _SPECULAR = 0.6, 0.35, 0.05

#: The conditions of each preset (fog_visibility 0: no fog).
PRESETS: dict[str, dict[str, Any]] = {
    "day": dict(
        sun_azimuth=DAY_SUN[0],
        sun_elevation=DAY_SUN[1],
        brightness=1.0,
        fog_visibility=0.0,
        rain=0.0,
        headlights=False,
        shadows=False,
    ),
    "dusk": dict(
        sun_azimuth=200.0,
        sun_elevation=8.0,
        brightness=0.6,
        fog_visibility=0.0,
        rain=0.0,
        headlights=True,
        shadows=True,
    ),
    "night": dict(
        sun_azimuth=0.0,
        sun_elevation=-30.0,
        brightness=0.07,
        fog_visibility=0.0,
        rain=0.0,
        headlights=True,
        shadows=False,
    ),
    "fog": dict(
        sun_azimuth=DAY_SUN[0],
        sun_elevation=40.0,
        brightness=0.8,
        fog_visibility=35.0,
        rain=0.0,
        headlights=False,
        shadows=False,
    ),
    "rain": dict(
        sun_azimuth=DAY_SUN[0],
        sun_elevation=45.0,
        brightness=0.6,
        fog_visibility=300.0,
        rain=0.8,
        headlights=False,
        shadows=False,
    ),
}
_CHOICES = (*PRESETS, "random")


@dataclasses.dataclass(frozen=True)
class WeatherConfig:
    """Weather and light: a preset, drawn per episode or fixed, with optional overrides
    (a field left None takes the preset's value)."""

    preset: str = field("day", f"one of {', '.join(_CHOICES)} ('random': one of choices)")
    choices: tuple[str, ...] = field(tuple(PRESETS), "the presets 'random' draws from, evenly")
    sun_azimuth: float | None = field(
        None, "sun direction (degrees counter-clockwise from the world's +x axis)"
    )
    sun_elevation: float | None = field(None, "sun height over the horizon (degrees, -90..90)")
    brightness: float | None = field(None, "light level, 1 = full daylight (0..2)")
    fog_visibility: float | None = field(
        None, "metres at which fog leaves 5% contrast (Koschmieder); 0 = no fog"
    )
    rain: float | None = field(None, "rain intensity, 0 = dry, 1 = heavy")
    headlights: bool | None = field(None, "vehicles drive with their lights on")
    shadows: bool | None = field(None, "bodies cast shadows on the ground")

    def __post_init__(self) -> None:
        if self.preset not in _CHOICES:
            raise ValueError(
                f"unknown weather preset '{self.preset}'{close_matches(self.preset, _CHOICES)}; "
                f"choose from {', '.join(_CHOICES)}"
            )
        bad = [c for c in self.choices if c not in PRESETS]
        if bad or not self.choices:
            raise ValueError(
                f"weather choices must name presets from {', '.join(PRESETS)}"
                + (f", got '{bad[0]}'{close_matches(bad[0], PRESETS)}" if bad else "")
            )
        ranges = {
            "sun_elevation": (-90.0, 90.0),
            "sun_azimuth": (-360.0, 360.0),
            "brightness": (0.0, 2.0),
            "fog_visibility": (0.0, 1e6),
            "rain": (0.0, 1.0),
        }
        for name, (lo, hi) in ranges.items():
            value = getattr(self, name)
            if value is not None and not lo <= value <= hi:
                raise ValueError(f"weather {name} must be in [{lo:g}, {hi:g}], got {value!r}")
        if self.fog_visibility is not None and 0 < self.fog_visibility < 1:
            raise ValueError("weather fog_visibility must be 0 (no fog) or at least 1 metre")


@dataclasses.dataclass(frozen=True)
class Weather:
    """The conditions in force for an episode (fields as in :class:`WeatherConfig`), and
    the seed of its per-step noise."""

    preset: str
    sun_azimuth: float
    sun_elevation: float
    brightness: float
    fog_visibility: float
    rain: float
    headlights: bool
    shadows: bool
    seed: int = 0

    @functools.cached_property
    def plain(self) -> bool:
        """The default day: nothing to do, the camera renders exactly as without weather."""
        conditions = {k: getattr(self, k) for k in PRESETS["day"]}
        return conditions == PRESETS["day"]

    @property
    def fog_beta(self) -> float:
        """Extinction coefficient (1/m) of the fog: contrast falls as exp(-beta d), and the
        visibility is where it is 5% (Koschmieder: V = 3.912 / beta)."""
        return 3.912 / self.fog_visibility if self.fog_visibility > 0 else 0.0

    @property
    def overcast(self) -> float:
        """0..1: how much cloud, fog and rain flatten the sun into diffuse light."""
        fog = min(1.0, 60.0 / self.fog_visibility) if self.fog_visibility > 0 else 0.0
        return max(fog, self.rain)

    def sun_vector(self) -> np.ndarray:
        """Unit vector towards the sun in the world frame."""
        az, el = math.radians(self.sun_azimuth), math.radians(self.sun_elevation)
        return np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])

    def sun_colour(self) -> np.ndarray:
        """White sunlight high up, reddening towards the horizon (longer path through air)."""
        warm = np.array([1.0, 0.55, 0.3])
        u = min(max(self.sun_elevation / 25.0, 0.0), 1.0)
        return warm + (1.0 - warm) * u

    def shading(self) -> tuple[float, float, float]:
        """``(ambient, diffuse, specular)`` coefficients of the renderer's light. Under a
        clear sky, the renderer's own soft light while the sun is high; as it sinks, the
        sky's ambient light fades faster than the direct beam, so a low sun lights faces
        and casts shadows with more contrast. Overcast turns direct light into ambient;
        with the sun below the horizon only ambient (sky or moon) light is left."""
        o, e = self.overcast, self.sun_elevation
        if e <= 0:
            return _AMBIENT + _DIFFUSE * 0.5, 0.0, 0.0
        u = min(max((e - 5.0) / 35.0, 0.0), 1.0)  # 0 near the horizon, 1 from 40° up
        ambient, diffuse = 0.3 + (_AMBIENT - 0.3) * u, 0.8 + (_DIFFUSE - 0.8) * u
        return ambient + (0.9 - ambient) * o, diffuse * (1 - o), _SPECULAR * (1 - o)

    def light_args(self) -> dict[str, Any]:
        """``getCameraImage`` keywords for the sun on the pybullet bodies; none for the
        plain day, which then renders exactly as before."""
        if self.plain:
            return {}
        ambient, diffuse, specular = self.shading()
        colour = np.clip(self.sun_colour(), 0.05, 1.0)  # a 0 component blackens the image
        return {
            "lightDirection": (100.0 * self.sun_vector()).tolist(),
            "lightColor": colour.tolist(),
            "lightAmbientCoeff": ambient,
            "lightDiffuseCoeff": diffuse,
            "lightSpecularCoeff": specular,
        }

    def noise(self, step: int, stream: int) -> np.random.Generator:
        """The generator of one step's noise for one ``stream`` (0 lidar, 1 camera): a
        Philox counter keyed by the weather's seed, so the same step draws the same noise
        however often it is rendered."""
        return np.random.Generator(np.random.Philox(key=self.seed, counter=[0, 0, step, stream]))

    def as_info(self) -> dict[str, Any]:
        """The small dict ``info["weather"]`` carries (a new one each time)."""
        return dict(self._info)

    @functools.cached_property
    def _info(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "seed"}


def draw_weather(config: WeatherConfig, rng: np.random.Generator) -> Weather:
    """The episode's weather from ``config``. The draws come from a generator seeded with
    the state of ``rng`` (hashed by a ``SeedSequence``), and ``rng`` itself does not move,
    so the scene the env builds next is the same whatever the weather."""
    own = np.random.default_rng([*_words(rng.bit_generator.state), _WEATHER_STREAM])
    name = config.preset
    if name == "random":
        name = config.choices[int(own.integers(len(config.choices)))]
    values = dict(PRESETS[name])
    for key in values:
        if getattr(config, key) is not None:
            values[key] = getattr(config, key)
    return Weather(preset=name, **values, seed=int(own.integers(2**63)))


_WEATHER_STREAM = 0x5745415448  # "WEATH": sets the weather's draws apart from others


def _words(state: Any) -> list[int]:
    """The non-negative integers of a bit generator's state (nested dicts and arrays)."""
    if isinstance(state, dict):
        return [w for key in sorted(state) for w in _words(state[key])]
    if isinstance(state, np.ndarray):
        return [int(v) for v in state.ravel().astype(np.uint64)]
    if isinstance(state, int | np.integer) and not isinstance(state, bool):
        return [int(state) % (1 << 128)]
    return []


def render_camera(
    world: World, cam: PinholeCamera, pose: tuple[float, float, float], weather, step: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``World.camera`` under ``weather`` (None: as it is): the sun lights the bodies and
    the RGB image gets the weather's post-effects; depth and classes are the world's."""
    light = weather.light_args() if weather is not None else {}
    rgb, depth, cls = world.camera(cam, *pose, **light)
    return weather_rgb(world, cam, pose, rgb, depth, cls, weather, step), depth, cls


def weather_rgb(world, cam, pose, rgb, depth, cls, weather, step: int) -> np.ndarray:
    """The camera's RGB image under ``weather`` from its plain render (returned as it is for
    no weather or the plain day)."""
    if weather is None or weather.plain:
        return rgb
    from .lighting import apply_weather

    return apply_weather(world, cam, pose, rgb, depth, cls, weather, step)


def weather_sweep(
    ranges: np.ndarray, ids: np.ndarray, max_range: float, weather, step: int
) -> tuple[np.ndarray, np.ndarray]:
    """A lidar sweep ``(ranges in metres, hit ids)`` as fog and rain let it through.

    Fog: a return's echo falls off as ``exp(-2 beta r) / r**2`` (two-way extinction), and
    the clear-air maximum range is where ``1 / r**2`` alone reaches the detection limit, so
    a return at range ``r`` is kept with probability ``min(1, (R / r)**2 exp(-2 beta r))``:
    near returns stay, far ones fade out (the lidar's own beta is taken equal to the
    visible one: fog droplets are much larger than either wavelength). Rain: Gaussian range
    noise (5 cm standard deviation in heavy rain) and spurious returns from drops within
    3 m on up to 3% of the rays (id :data:`CLUTTER`)."""
    if weather is None or (weather.fog_visibility <= 0 and weather.rain <= 0):
        return ranges, ids
    rng = weather.noise(step, 0)
    ranges, ids = ranges.copy(), ids.copy()
    n = len(ranges)
    beta = weather.fog_beta
    if beta > 0:
        hit = ids != -1
        r = np.maximum(ranges, 1e-3)
        keep = np.minimum(1.0, (max_range / r) ** 2 * np.exp(-2.0 * beta * r))
        lost = hit & (rng.random(n) >= keep)
        ranges[lost], ids[lost] = max_range, -1
    if weather.rain > 0:
        hit = ids != -1
        noisy = ranges + rng.normal(0.0, 0.05 * weather.rain, n)
        ranges = np.where(hit, np.clip(noisy, 0.0, max_range), ranges)
        near = np.minimum(rng.uniform(0.3, 3.0, n), max_range)
        drops = (rng.random(n) < 0.03 * weather.rain) & (near < ranges)
        ranges[drops], ids[drops] = near[drops], CLUTTER
    return ranges, ids
