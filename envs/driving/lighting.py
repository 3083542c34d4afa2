"""The camera's weather post-effects: light, shadows, sky, headlights, fog and rain.

pybullet's TINY renderer lights the bodies with the weather's sun (:mod:`.weather`); the
ground and the sky are painted in palette colours by :class:`.world.World`, and the
renderer knows neither lamps nor fog. This module finishes the picture from what the
camera already rendered: every pixel's class and depth give its point in the ego frame,
and from those points, in float32 numpy:

1. the light level and tint of the sky over everything, the sun on the ground (the
   palette is the ground under the renderer's own light) and the shadows that the boxes
   cast on it (their corners projected along the sun onto the ground plane);
2. the headlights' pools: a cone of light ahead of every vehicle's front, the ego's too,
   on the ground and on the bodies in it; traffic-light heads glow by themselves;
3. the sky: daylight blue, greyed by cloud, reddened towards a low sun, dark at night;
4. fog: contrast falls as ``exp(-beta d)`` towards the fog's colour (Koschmieder's law);
5. the lamps themselves as glowing spots (white ahead, red behind), haloed in fog;
6. rain: wet, darker asphalt and falling streaks from the step's noise generator.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from .traffic import VEHICLE_LENGTH, VEHICLE_WIDTH
from .weather import _AMBIENT, _DIFFUSE, DAY_SUN, Weather
from .world import (
    CLASS_NAMES,
    EGO_HALF,
    EGO_Z,
    GRASS,
    LIGHT,
    MARKING,
    PALETTE,
    ROAD,
    SKY,
    PinholeCamera,
    World,
)

#: The ground's light in the palette: the renderer's own sun on a level surface.
_DAY_GROUND = _AMBIENT + _DIFFUSE * math.sin(math.radians(DAY_SUN[1]))
_MOON = np.array([0.55, 0.7, 1.0], dtype=np.float32)  # night light is bluish to the eye
_RAIN_TINT = np.array([0.85, 0.92, 1.05], dtype=np.float32)
_SKY = PALETTE[SKY] / np.float32(255)
_CLOUD = np.array([0.72, 0.74, 0.78], dtype=np.float32)
_SUNSET = np.array([1.0, 0.6, 0.35], dtype=np.float32)
_FOG = np.array([0.8, 0.82, 0.85], dtype=np.float32)
_HEADLIGHT = np.array([1.0, 0.93, 0.8], dtype=np.float32)
_TAILLIGHT = np.array([1.0, 0.1, 0.05], dtype=np.float32)
_STREAK = np.array([0.75, 0.8, 0.9], dtype=np.float32)
_LAMP_HEIGHT = 0.75  # metres above the ground
_LAMP_INSET = 0.3  # lamps sit this far in from the car's sides
_BEAM_RANGE = 18.0  # metres at which a pool's light has fallen to half
_BEAM_COS = (math.cos(math.radians(28.0)), math.cos(math.radians(8.0)))  # cone edge, core
_SHADOW_RES = 0.1  # metres per cell of the shadow raster, at the finest


def apply_weather(
    world: World,
    cam: PinholeCamera,
    pose: tuple[float, float, float],
    rgb: np.ndarray,
    depth: np.ndarray,
    cls: np.ndarray,
    weather: Weather,
    step: int,
) -> np.ndarray:
    """The camera image ``rgb`` (uint8 HxWx3, rendered with the weather's sun) under
    ``weather``, from its z-depth (metres) and classes, at episode step ``step`` (which
    keys the rain's noise)."""
    rig, look = world.rig(cam), _look(weather)
    albedo = rgb.astype(np.float32) * np.float32(1 / 255)
    needs_points = look.shadows or weather.headlights
    if needs_points:  # every pixel's point in the ego frame, one plane per axis
        pts = [np.float32(m) + depth * ray for m, ray in zip(cam.mount, rig.rays, strict=True)]
        bodies = _bodies(world, pose, cam.far + 20.0)
    shade = cls  # 1. light, sun on the ground (shadowed ground: the table's second half)
    if look.shadows:
        shade = cls + np.uint8(len(CLASS_NAMES)) * _shadowed(bodies, pts, pose[2], look.sun)
    img = albedo * np.take(look.gain, shade, axis=0)  # np.take: faster than fancy indexing
    img += np.take(look.offset, cls, axis=0)  # the sky's colour
    if weather.headlights:  # 2. the headlights' pools
        cars = bodies.vehicle & (np.hypot(bodies.x, bodies.y) < cam.far)
        if cars.any():
            pool = _pools(pts, bodies.poses(cars)) * (cls != SKY)
            img += albedo * pool[..., None] * look.headlight
    if look.warmth > 0:  # 3. a low sun's glow on the sky
        g = _sunset(rig, pose[2], weather, look) * (cls == SKY)
        img += (look.sunset - img) * g[..., None]
    if look.beta > 0:  # 4. fog
        t = np.exp(-look.beta * depth * rig.ray_length)[..., None]
        img *= t
        img += look.fog * (1 - t)
    if weather.headlights and bodies.vehicle.any():  # 5. the lamps
        img += _glow(rig, cam, depth, bodies, look.beta, max(look.lamp_gain, 0.3))
    if weather.rain > 0:  # 6. rain streaks
        img = _rain(img, weather, look.light, weather.noise(step, 1))
    img *= 255
    img += 0.5
    return np.clip(img, 0, 255, out=img).astype(np.uint8)


@dataclasses.dataclass(frozen=True)
class _Look:
    """What a weather's light does to each class, worked out once per weather: a pixel
    becomes ``albedo * gain[class] + offset[class]`` (the sky is all offset), with the
    gains of shadowed pixels at ``gain[class + len(CLASS_NAMES)]``."""

    light: np.ndarray  # (3,) light level and tint over everything
    gain: np.ndarray  # (2 classes, 3)
    offset: np.ndarray  # (classes, 3)
    shadows: bool
    sun: np.ndarray  # (3,) towards the sun, world frame
    warmth: float  # 0..1 how red the sky is towards a low sun
    sunset: np.ndarray  # (3,) the colour of that glow
    beta: float  # fog extinction (1/m)
    fog: np.ndarray  # (3,) colour of the fog
    lamp_gain: float
    headlight: np.ndarray  # (3,) the headlights' colour times their gain


@functools.lru_cache(maxsize=64)
def _look(weather: Weather) -> _Look:
    night = min(max(-weather.sun_elevation / 6.0, 0.0), 1.0)
    tint = (1.0 + night * (_MOON - 1.0)) * (1.0 + weather.rain * (_RAIN_TINT - 1.0))
    light = (np.float32(weather.brightness) * tint).astype(np.float32)
    ambient, diffuse, _ = weather.shading()
    sun = weather.sun_vector()
    direct = diffuse * max(sun[2], 0.0) * weather.sun_colour()
    n = len(CLASS_NAMES)
    gain = np.tile(light, (2 * n, 1))
    for c in (GRASS, ROAD, MARKING):
        gain[c] *= (ambient + direct) / _DAY_GROUND
        gain[n + c] *= ambient / _DAY_GROUND  # in a shadow only the sky's light is left
    gain[[ROAD, n + ROAD]] *= 1 - 0.3 * weather.rain  # wet asphalt is darker
    gain[[LIGHT, n + LIGHT]] = np.maximum(gain[LIGHT], 1.0)  # traffic lights shine
    gain[[SKY, n + SKY]] = 0.0
    offset = np.zeros((n, 3), dtype=np.float32)
    o = weather.overcast
    offset[SKY] = (_SKY * (1 - o) + _CLOUD * o) * light
    e = weather.sun_elevation
    warmth = min(max((25.0 - e) / 25.0, 0.0), 1.0) * min(max((e + 8.0) / 8.0, 0.0), 1.0)
    # the camera's exposure follows the scene's light: the headlights that dominate a
    # night picture barely show by day
    lamp_gain = min(max(1.0 - weather.brightness, 0.1), 1.0) ** 2
    return _Look(
        light=light,
        gain=gain.astype(np.float32),
        offset=offset,
        shadows=bool(weather.shadows and diffuse > 0 and sun[2] > 0),
        sun=sun,
        warmth=warmth * (1.0 - o),
        sunset=(_SUNSET * min(1.0, 1.6 * weather.brightness)).astype(np.float32),
        beta=weather.fog_beta,
        fog=(_FOG * light).astype(np.float32),
        lamp_gain=lamp_gain,
        headlight=(lamp_gain * _HEADLIGHT).astype(np.float32),
    )


@dataclasses.dataclass
class _Bodies:
    """The boxes near the camera in the ego frame (ego first, at the origin)."""

    x: np.ndarray
    y: np.ndarray
    yaw: np.ndarray
    half: np.ndarray  # (n, 3) half extents
    base: np.ndarray  # height of the box's bottom above the ground
    vehicle: np.ndarray  # bool: has lamps

    def poses(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.x[mask], self.y[mask], self.yaw[mask]


def _bodies(world: World, pose, reach: float) -> _Bodies:
    """The ego and the vehicles, pedestrians and obstacles within ``reach`` metres of it,
    from the world's boxes (:class:`.movers.MovingBoxes`); vehicles carry lamps."""
    ex, ey, eyaw = pose
    m = world.movers
    box = m.box
    near = m.active & ((box[:, 0] - ex) ** 2 + (box[:, 1] - ey) ** 2 < reach * reach)
    lamps = np.isin(m.ids, world.vehicles)
    x = np.concatenate([[ex], box[near, 0]])
    y = np.concatenate([[ey], box[near, 1]])
    c, s = math.cos(eyaw), math.sin(eyaw)
    dx, dy = x - ex, y - ey
    return _Bodies(
        c * dx + s * dy,
        -s * dx + c * dy,
        np.concatenate([[eyaw], m.yaw[near]]) - eyaw,
        np.concatenate([[EGO_HALF], m.half[near]]),
        np.concatenate([[EGO_Z - EGO_HALF[2]], box[near, 6]]),
        np.concatenate([[True], lamps[near]]),
    )


def _shadowed(b: _Bodies, pts: list[np.ndarray], yaw: float, sun: np.ndarray) -> np.ndarray:
    """uint8 0/1 per pixel: its point lies in a box's shadow, the convex hull of the box's
    corners projected along the sun onto the ground, filled into a raster around them."""
    import cv2

    c, s = math.cos(yaw), math.sin(yaw)
    sx, sy = c * sun[0] + s * sun[1], -s * sun[0] + c * sun[1]  # the sun in the ego frame
    slope = max(sun[2], math.sin(math.radians(3.0)))  # a sun on the horizon: long, not endless
    shift = -np.array([sx, sy]) / slope  # ground offset per metre of height
    along = np.array([1.0, 1.0, -1.0, -1.0]) * b.half[:, :1]
    side = np.array([1.0, -1.0, -1.0, 1.0]) * b.half[:, 1:2]
    ch, sh = np.cos(b.yaw)[:, None], np.sin(b.yaw)[:, None]
    foot = np.stack([b.x[:, None] + ch * along - sh * side,
                     b.y[:, None] + sh * along + ch * side], axis=-1)  # fmt: skip
    low, high = b.base[:, None, None], (b.base + 2 * b.half[:, 2])[:, None, None]
    hulls = np.concatenate([foot + low * shift, foot + high * shift], axis=1)  # (n, 8, 2)
    lo = hulls.reshape(-1, 2).min(axis=0) - 1.0
    span = hulls.reshape(-1, 2).max(axis=0) + 1.0 - lo
    res = max(_SHADOW_RES, float(span.max()) / 1024)  # a coarser raster over a wide scene
    size = np.ceil(span / res).astype(int)
    raster = np.zeros((size[1], size[0]), dtype=np.uint8)
    cells = np.round((hulls - lo) * (4 / res)).astype(np.int32)  # 2 fractional bits
    for hull in cells:
        cv2.fillConvexPoly(raster, cv2.convexHull(hull), 1, cv2.LINE_8, 2)
    col = ((pts[0] - lo[0]) * (1 / res)).astype(np.int64)
    row = ((pts[1] - lo[1]) * (1 / res)).astype(np.int64)
    inside = (col >= 0) & (col < size[0]) & (row >= 0) & (row < size[1])
    out = np.zeros(inside.shape, dtype=np.uint8)
    out[inside] = raster[row[inside], col[inside]]
    return out


def _pools(pts: list[np.ndarray], poses) -> np.ndarray:
    """The light of all the cars' beams per pixel, 0..1: overlapping pools saturate rather
    than blow out. Pools are smooth, so a large image computes them on every other pixel
    and scales them up."""
    import cv2

    h, w = pts[0].shape
    step = 2 if h * w > 20000 else 1
    beams = _beams([p[::step, ::step] for p in pts], *poses).sum(axis=0)
    pool = 1.0 - np.exp(-beams)
    return pool if step == 1 else cv2.resize(pool, (w, h), interpolation=cv2.INTER_LINEAR)


def _beams(pts: list[np.ndarray], x: np.ndarray, y: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """The light of each car's low beams at the points ``pts`` (ego frame: x, y, z planes),
    one plane per car: a cone about its heading from the middle of its front, falling off
    with distance; dipped, so the beam is brightest just below the horizontal (the road
    from a few metres ahead on) and fades above the lamps and steeply below them."""
    c, s = (v.astype(np.float32)[:, None, None] for v in (np.cos(yaw), np.sin(yaw)))
    dx = pts[0] - x.astype(np.float32)[:, None, None]
    dy = pts[1] - y.astype(np.float32)[:, None, None]
    fwd = c * dx + s * dy - np.float32(0.5 * VEHICLE_LENGTH)
    lat = -s * dx + c * dy
    up = pts[2] - _LAMP_HEIGHT
    reach2 = fwd * fwd + lat * lat + 1e-6
    reach = np.sqrt(reach2)
    cone = np.clip((fwd / reach - _BEAM_COS[0]) * (1 / (_BEAM_COS[1] - _BEAM_COS[0])), 0, 1)
    down = (-57.3 * up) / reach  # degrees below the lamps' horizontal (small angles)
    dip = np.clip(np.minimum(1.0 + down / 4.0, 1.0 - (down - 2.0) / 12.0), 0.0, 1.0)
    return 2.0 * cone * cone * dip / (1.0 + (reach2 + up * up) * (1 / _BEAM_RANGE**2))


@functools.lru_cache(maxsize=16)
def _sky_angles(rig) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel of a camera rig: how the glow fades with the ray's height over the
    horizon, and the ray's azimuth in the ego frame."""
    x, y, z = rig.rays
    elevation = np.arctan2(z, np.hypot(x, y))
    return np.exp(-np.maximum(elevation, 0.0) / 0.25), np.arctan2(y, x)


def _sunset(rig, yaw: float, weather: Weather, look: _Look) -> np.ndarray:
    """0..1 per pixel: how much of a low sun's warm glow its sky ray sees (strongest low
    in the sky towards the sun)."""
    fade, azimuth = _sky_angles(rig)
    towards = np.maximum(np.cos(azimuth + (yaw - math.radians(weather.sun_azimuth))), 0.0)
    return look.warmth * fade * (0.3 + 0.7 * towards * towards)


_LAMPS = (  # (along the car over its length, across in metres, facing, kind)
    (0.5, 0.5 * VEHICLE_WIDTH - _LAMP_INSET, 1.0, 0),
    (0.5, -(0.5 * VEHICLE_WIDTH - _LAMP_INSET), 1.0, 0),
    (-0.5, 0.5 * VEHICLE_WIDTH - _LAMP_INSET, -1.0, 1),
    (-0.5, -(0.5 * VEHICLE_WIDTH - _LAMP_INSET), -1.0, 1),
)


def _glow(rig, cam: PinholeCamera, depth: np.ndarray, b: _Bodies, beta: float, gain: float):
    """The vehicles' lamps seen by the camera (headlights white, tail lights red) as
    glowing spots of brightness ``gain``: a lamp shows when it faces the camera and
    nothing nearer hides it; fog dims it and widens its halo. Returns HxWx3 float32."""
    import cv2

    h, w = depth.shape
    x, y, yaw = b.poses(b.vehicle)
    along, across, facing, kind = (np.array(v) for v in zip(*_LAMPS, strict=True))
    c, s = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
    lx = x[:, None] + c * (along * VEHICLE_LENGTH) - s * across  # (vehicles, 4)
    ly = y[:, None] + s * (along * VEHICLE_LENGTH) + c * across
    mount = np.asarray(cam.mount)
    v = np.stack([lx, ly, np.full_like(lx, _LAMP_HEIGHT)], axis=-1) - mount  # camera → lamp
    faces = facing * (c * v[..., 0] + s * v[..., 1]) < 0  # the lamp looks at the camera
    z = v @ rig.forward
    f_px = 0.5 * h / math.tan(math.radians(cam.fov) / 2)
    zs = np.maximum(z, cam.near)
    u = (v @ rig.right) / zs * f_px + 0.5 * w - 0.5
    r = 0.5 * h - (v @ rig.up) / zs * f_px - 0.5
    iu, ir = np.round(u).astype(int), np.round(r).astype(int)
    seen = faces & (z > cam.near) & (iu >= 0) & (iu < w) & (ir >= 0) & (ir < h)
    seen[seen] &= depth[ir[seen], iu[seen]] > z[seen] - 0.5  # nothing nearer hides it
    power = np.where(kind == 0, 1.5, 0.8) * gain * np.exp(-0.5 * beta * np.linalg.norm(v, axis=-1))
    radius = np.maximum(1.0, 0.2 * f_px / zs)  # a far lamp still fills a pixel
    spots = np.zeros((2, h, w), np.float32)
    for i, j in zip(*np.nonzero(seen), strict=True):
        centre = (int(round(u[i, j] * 4)), int(round(r[i, j] * 4)))
        size = int(round(radius[i, j] * 4))
        cv2.circle(spots[kind[j]], centre, size, float(power[i, j]), -1, cv2.LINE_AA, 2)
    sigma = max(0.5, w / 200)
    halo = sigma * 3 * (1 + 3 * min(1.0, 40.0 * beta / 3.912))
    out = np.zeros((h, w, 3), np.float32)
    for k, colour in ((0, _HEADLIGHT), (1, _TAILLIGHT)):
        if seen[:, kind == k].any():
            core = cv2.GaussianBlur(spots[k], (0, 0), sigma)
            wide = cv2.GaussianBlur(spots[k], (0, 0), halo)
            out += (core + 0.6 * wide)[..., None] * colour
    return out


def _rain(img: np.ndarray, weather: Weather, light: np.ndarray, rng) -> np.ndarray:
    """Falling rain: short, slightly slanted, pale streaks at random places, about one per
    200 pixels in heavy rain, drawn into an anti-aliased mask and blended in."""
    import cv2

    h, w = img.shape[:2]
    n = int(rng.poisson(0.005 * weather.rain * h * w))
    top = rng.random((n, 2)) * (w, h)
    length = (0.06 + 0.06 * rng.random(n)) * h
    ends = top + length[:, None] * np.array([-0.25, 1.0])  # wind slants them
    segments = np.round(np.stack([top, ends], axis=1) * 4).astype(np.int32)  # 2 bits
    mask = np.zeros((h, w), np.uint8)
    cv2.polylines(mask, list(segments), False, 255, 1, cv2.LINE_AA, 2)
    a = mask.astype(np.float32)[..., None] * np.float32(0.35 / 255)
    return img * (1 - a) + a * (_STREAK * (0.3 + 0.7 * light))
