"""Pictures of the driving env: the rendered frame, and the panels a viewer shows.

:class:`DrivingViews` is a mixin of :class:`.env.DrivingEnv`: ``render()`` (a chase-camera
view beside a top-down view, or the same in a pygame window), ``sensor_panels()`` (camera,
lidar plot, BEV), ``lidar_image()`` and ``bev_image()``. They read the env's episode and
world and never its random generator, so drawing never changes a rollout.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from ..rendering import warn_no_render_mode
from .episode import EpisodeState
from .pedestrians import crosswalk_positions
from .roads import GREEN, RED, YELLOW, RoadNetwork
from .routes import Route
from .sensors import Lidar, LidarConfig
from .traffic import TrafficModel
from .weather import Weather, render_camera
from .world import OBSTACLE_HALF, PALETTE, PEDESTRIAN, STATIC, VEHICLE, PinholeCamera, World


class DrivingViews:
    """Drawing for :class:`.env.DrivingEnv`, from the attributes below and its ``_frame()``
    (what the sensors read now), all set by the env."""

    render_mode: str | None
    metadata: dict[str, Any]
    world: World
    net: RoadNetwork
    route: Route
    traffic_model: TrafficModel
    sensors: dict[str, Any]
    camera_spec: PinholeCamera
    lidar_spec: LidarConfig
    _sim: EpisodeState | None
    _obstacles: np.ndarray
    _frame_cache: dict[str, Any]
    _window: Any
    _clock: Any
    weather: Weather | None

    #: The chase camera of ``render()`` and of the panels without a camera: behind and
    #: above the car.
    CHASE = PinholeCamera(320, 240, 60.0, (-10.0, 0.0, 5.0), 15.0, far=150.0)

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            warn_no_render_mode(self)
            return None
        if self._sim is None:
            raise RuntimeError("call reset() before render()")
        ego = self._sim.ego
        if self.world.gui:  # pybullet's window follows the car
            self.world.client.resetDebugVisualizerCamera(
                12.0, math.degrees(ego.yaw) - 90.0, -20.0, [ego.x, ego.y, 1.0]
            )
        chase = self._picture(self.CHASE)
        frame = np.concatenate([chase, self.bev_image(self.CHASE.height)], axis=1)
        if self.render_mode == "rgb_array":
            return frame
        self._show(frame)
        return None

    def _show(self, frame: np.ndarray) -> None:
        """Draw ``frame`` in a pygame window, like Gymnasium's classic-control envs."""
        import pygame

        if self._window is None:
            pygame.display.init()
            self._window = pygame.display.set_mode((frame.shape[1], frame.shape[0]))
            self._clock = pygame.time.Clock()
        surface = pygame.surfarray.make_surface(np.ascontiguousarray(frame.transpose(1, 0, 2)))
        self._window.blit(surface, (0, 0))
        pygame.event.pump()
        pygame.display.flip()
        self._clock.tick(self.metadata["render_fps"])

    def sensor_panels(self, size: int = 320) -> list[tuple[str, np.ndarray]]:
        """``(title, RGB image)`` pictures of what the car senses now, for a viewer to show
        side by side: the forward camera image the agent sees (the chase camera when the
        observation has no camera), a top-down plot of the lidar sweep, and the BEV.

        The camera image keeps its own resolution (the viewer scales it); the lidar plot
        and the BEV are ``size × size``. Nothing here touches the episode's state or its
        random generator, so showing the panels never changes a rollout."""
        if self._sim is None:
            raise RuntimeError("call reset() before sensor_panels()")
        cam = next((k for k in ("camera", "depth", "segmentation") if k in self.sensors), None)
        weather = f", {self.weather.preset}" if self.weather and not self.weather.plain else ""
        if cam == "camera":
            image = self._frame_cache.get("camera_rgb")
            if image is None:  # e.g. just after set_state(): the same view, rendered again
                image = self._picture(self.camera_spec)
            spec = self.camera_spec
            first = (f"camera {spec.width}x{spec.height} (agent{weather})", image)
        else:
            first = (f"chase camera (no camera in obs{weather})", self._picture(self.CHASE))
        spec = self.lidar_spec
        lidar_title = f"lidar {spec.channels}x{spec.rays}, {spec.max_range:g} m"
        if not any(isinstance(s, Lidar) for s in self.sensors.values()):
            lidar_title += " (not in obs)"
        return [
            first,
            (lidar_title, self.lidar_image(size)),
            ("BEV", self.bev_image(size)),
        ]

    def _picture(self, cam: PinholeCamera) -> np.ndarray:
        """What ``cam`` on the car sees now, in the episode's weather (whose noise is drawn
        per step from its own seed, so a picture never moves the env's generator)."""
        ego = self._sim.ego
        pose = (ego.x, ego.y, ego.yaw)
        return render_camera(self.world, cam, pose, self.weather, self._sim.steps)[0]

    def lidar_image(self, size: int = 320) -> np.ndarray:
        """The last lidar sweep seen from above, car at the centre heading up: the free
        space the rays swept, a dot at every return coloured by what it hit (vehicle,
        pedestrian, static, on a light rim; brown: the ground) and range rings every 10 m.
        Without a lidar in the observation a noise-free sweep of the configured lidar is
        cast for the picture."""
        import cv2

        sensor, (ranges, ids) = self._last_sweep()
        spec = sensor.spec
        img = np.full((size, size, 3), 24, dtype=np.uint8)
        centre = np.array([size / 2, size / 2])
        px_per_m = 0.5 * (size - 8) / spec.max_range
        pts = sensor.dirs[:, :2] * ranges[:, None]  # ego frame: x forward, y left
        pix = np.round(centre - pts[:, ::-1] * px_per_m).astype(np.int32)  # up = forward
        cls = self.world.body_class[np.clip(ids, 0, len(self.world.body_class) - 1)]
        colours = np.where(ids[:, None] >= 0, PALETTE[cls], (120, 120, 120))
        colours[ids == -2] = (140, 100, 60)
        hit = ids != -1
        # free space: the area the rays swept before their returns
        outline = pix if spec.h_fov >= 360.0 else np.vstack([centre.astype(np.int32), pix])
        cv2.fillPoly(img, [outline.reshape(-1, 1, 2)], (52, 60, 72), cv2.LINE_AA)
        for ring in np.arange(10.0, spec.max_range + 1e-9, 10.0):
            cv2.circle(img, (size // 2, size // 2), int(ring * px_per_m), (80, 80, 80), 1)
        for u, v in pix[ids >= 0].tolist():  # a light rim lifts body returns off the dark
            cv2.circle(img, (u, v), 4, (210, 210, 210), -1, cv2.LINE_AA)
        for (u, v), colour in zip(pix[hit].tolist(), colours[hit].tolist(), strict=True):
            cv2.circle(img, (u, v), 3, tuple(int(x) for x in colour), -1, cv2.LINE_AA)
        half = np.array([2.25, 0.95]) * px_per_m
        cv2.rectangle(
            img,
            tuple(int(x) for x in centre - half[::-1]),
            tuple(int(x) for x in centre + half[::-1]),
            (220, 40, 40),
            -1,
        )
        return img

    def _last_sweep(self) -> tuple[Lidar, tuple[np.ndarray, np.ndarray]]:
        """The lidar and its last sweep (ranges, hit ids) for the pictures; without a lidar
        in the observation a noise-free sweep of the configured lidar is cast, so the
        env's generator is never drawn from."""
        sensor = next((s for s in self.sensors.values() if isinstance(s, Lidar)), None)
        ranges_ids = self._frame_cache.get("lidar") if sensor is not None else None
        if ranges_ids is None:
            sensor = Lidar(dataclasses.replace(self.lidar_spec, noise_std=0.0))
            ranges_ids = sensor.sweep(self._frame())
        return sensor, ranges_ids

    #: Colour of the lidar returns in the BEV: magenta, which no class of the palette uses.
    LIDAR_RETURN = (255, 0, 255)

    def bev_image(self, size: int = 240, extent: float = 60.0) -> np.ndarray:
        """A top-down view centred ahead of the car, heading up: the ground classes, the
        route (green), other bodies, the car (red) and the last lidar returns on bodies
        (magenta dots with a dark rim, about a metre across, so they stand out on any
        class)."""
        import cv2

        sim, ego = self._sim, self._sim.ego
        m_per_px = extent / size
        c, s = math.cos(ego.yaw), math.sin(ego.yaw)
        fwd = (size * 0.65 - np.arange(size) - 0.5) * m_per_px  # rows: ahead is up
        left = (size * 0.5 - np.arange(size) - 0.5) * m_per_px  # cols: left is left
        ex, ey = np.meshgrid(fwd, left, indexing="ij")
        wx, wy = ego.x + c * ex - s * ey, ego.y + s * ex + c * ey
        img = np.ascontiguousarray(PALETTE[self.world.raster.lookup(wx, wy)])

        def to_px(points: np.ndarray) -> np.ndarray:
            dx, dy = points[:, 0] - ego.x, points[:, 1] - ego.y
            lx, ly = c * dx + s * dy, -s * dx + c * dy
            return np.stack([size * 0.5 - ly / m_per_px, size * 0.65 - lx / m_per_px], 1).astype(
                np.int32
            )

        pts = self.route.points
        cv2.polylines(img, [to_px(pts).reshape(-1, 1, 2)], False, (60, 200, 90), 1, cv2.LINE_AA)

        def box(x, y, h, half, colour):
            cx, sx = math.cos(h), math.sin(h)
            corners = np.array(
                [(half[0], half[1]), (half[0], -half[1]), (-half[0], -half[1]), (-half[0], half[1])]
            )
            world_pts = np.stack(
                [
                    x + cx * corners[:, 0] - sx * corners[:, 1],
                    y + sx * corners[:, 0] + cx * corners[:, 1],
                ],
                1,
            )
            cv2.fillPoly(img, [to_px(world_pts)], colour, cv2.LINE_AA)

        tr = sim.traffic
        if len(tr.s):
            x, y, h = self.traffic_model.poses(tr)
            for i in np.flatnonzero(tr.active):
                box(x[i], y[i], h[i], (2.25, 0.95), tuple(int(v) for v in PALETTE[VEHICLE]))
        if len(sim.peds.u):
            x, y, h = crosswalk_positions(self.net, sim.peds)
            for i in np.flatnonzero(sim.peds.active):
                box(x[i], y[i], h[i], (0.4, 0.4), tuple(int(v) for v in PALETTE[PEDESTRIAN]))
        for ox, oy, oh in self._obstacles:
            box(ox, oy, oh, OBSTACLE_HALF[:2], tuple(int(v) for v in PALETTE[STATIC]))
        near = self.world.clutter.footprints_near(ego.x, ego.y, extent)  # buildings, trees, ...
        if len(near):
            static = tuple(int(v) for v in PALETTE[STATIC])
            cv2.fillPoly(img, list(to_px(near.reshape(-1, 2)).reshape(-1, 4, 2)), static)
        for light in self.net.lights:
            a, b = np.array(light.stop_line)
            colour = {GREEN: (40, 220, 60), YELLOW: (250, 200, 0), RED: (230, 30, 30)}[
                light.state(sim.t)
            ]
            cv2.line(img, *[tuple(p) for p in to_px(np.array([a, b]))], colour, 2)
        for sign in self.net.stop_signs:  # a white stop line, a red sign at the kerb
            a, b = np.array(sign.stop_line)
            kerb = b + (b - a) / np.linalg.norm(b - a) * 1.0
            ends = to_px(np.array([a, b, kerb]))
            cv2.line(img, tuple(ends[0]), tuple(ends[1]), (240, 240, 240), 2)
            cv2.circle(img, tuple(ends[2]), max(3, round(0.6 / m_per_px)), (200, 20, 20), -1)
        box(ego.x, ego.y, ego.yaw, (2.25, 0.95), (220, 40, 40))
        sensor, (ranges, ids) = self._last_sweep()
        pts = sensor.dirs[:, :2] * ranges[:, None]
        hit = ids >= 0
        world_pts = np.stack(
            [
                ego.x + c * pts[hit, 0] - s * pts[hit, 1],
                ego.y + s * pts[hit, 0] + c * pts[hit, 1],
            ],
            1,
        )
        radius = max(2, round(0.5 / m_per_px))  # a dot about a metre across
        dots = [(u, v) for u, v in to_px(world_pts).tolist() if 0 <= u < size and 0 <= v < size]
        for rim, colour in ((radius + 1, (20, 20, 20)), (radius, self.LIDAR_RETURN)):
            for centre in dots:  # every rim first, so no rim cuts into a neighbour's dot
                cv2.circle(img, centre, rim, colour, -1)
        return img

    def _close_window(self) -> None:
        if getattr(self, "_window", None) is not None:
            import pygame

            pygame.display.quit()
            self._window = None
