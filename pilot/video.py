"""Showing rollouts: frames to MP4/GIF files, or to a live window where a display exists.

Drawing lives here, at the edge, never inside envs, planners or algorithms.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from pilot.errors import UserError


def has_display() -> bool:
    """True where a live window can open (X11 or Wayland session)."""
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def fit_frame(frame: np.ndarray, min_height: int = 320) -> np.ndarray:
    """Upscale small frames (Atari is 210×160) with nearest-neighbour, to even sizes for H.264."""
    frame = np.ascontiguousarray(frame[..., :3]).astype(np.uint8)
    h, w = frame.shape[:2]
    scale = max(1, int(np.ceil(min_height / h)))
    if scale > 1:
        frame = cv2.resize(frame, (w * scale, h * scale), interpolation=cv2.INTER_NEAREST)
    h, w = frame.shape[:2]
    return frame[: h - h % 2, : w - w % 2]


def caption(frame: np.ndarray, lines: list[str]) -> np.ndarray:
    """A dark band with a few lines of text, added above the frame: the picture itself stays
    whole (an Atari score, the road ahead of the car are never covered)."""
    band = np.full((8 + 18 * len(lines), frame.shape[1], 3), 24, np.uint8)
    for i, text in enumerate(lines):
        cv2.putText(
            band,
            text,
            (6, 17 + 18 * i),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5,
            (255, 255, 255),
            1,
            cv2.LINE_AA,
        )
    return np.concatenate([band, np.ascontiguousarray(frame[..., :3])], axis=0)


def panel_row(panels: list[tuple[str, np.ndarray]], height: int = 320) -> np.ndarray:
    """Pictures side by side, each scaled to ``height`` (nearest-neighbour, so small sensor
    images stay crisp) with its title on a strip underneath, a thin gap between them."""
    strip, gap = 24, 4
    columns = []
    for title, image in panels:
        image = np.ascontiguousarray(image[..., :3]).astype(np.uint8)
        h, w = image.shape[:2]
        width = max(1, round(w * height / h))
        scaled = cv2.resize(image, (width, height), interpolation=cv2.INTER_NEAREST)
        label = np.full((strip, width, 3), 30, np.uint8)
        cv2.putText(
            label, title, (6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (230, 230, 230), 1, cv2.LINE_AA
        )
        columns.append(np.concatenate([scaled, label], axis=0))
        columns.append(np.full((height + strip, gap, 3), 12, np.uint8))
    return np.concatenate(columns[:-1], axis=1)


def heat_overlay(
    image: np.ndarray, heat: np.ndarray, height: int | None = None, alpha: float = 0.7
) -> np.ndarray:
    """A heat map (values in [0, 1], any resolution) laid over a picture, scaled to
    ``height``: the picture, dimmed and grey so colour stands out, shows through where the
    map is low; the inferno colour map covers it where the map is high (bilinear heat over
    nearest-neighbour pixels, so both stay readable when small inputs are scaled up)."""
    image = np.ascontiguousarray(image[..., :3]).astype(np.uint8)
    h, w = image.shape[:2]
    if height is not None and height != h:
        size = (max(1, round(w * height / h)), height)
        image = cv2.resize(image, size, interpolation=cv2.INTER_NEAREST)
    h, w = image.shape[:2]
    heat = np.nan_to_num(np.clip(np.asarray(heat, np.float32), 0.0, 1.0))
    if heat.shape != (h, w):
        heat = np.clip(cv2.resize(heat, (w, h), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
    colour = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_INFERNO)[..., ::-1]
    grey = image.astype(np.float32).mean(axis=2, keepdims=True) * 0.6
    weight = alpha * np.sqrt(heat)[..., None]  # sqrt: faint attributions stay visible
    return (grey * (1.0 - weight) + colour * weight).round().astype(np.uint8)


def beside(frame: np.ndarray, panels: list[tuple[str, np.ndarray]]) -> np.ndarray:
    """Titled panels (see :func:`panel_row`) to the right of ``frame``, at its height."""
    if not panels:
        return frame
    row = panel_row(panels, height=max(1, frame.shape[0] - 24))
    gap = np.full((frame.shape[0], 4, 3), 12, np.uint8)
    out = np.concatenate([np.ascontiguousarray(frame[..., :3]), gap, row], axis=1)
    return out[:, : out.shape[1] - out.shape[1] % 2]  # even width for H.264


def bar_chart(
    probs: np.ndarray, labels: list[str] | None, width: int, height: int = 60
) -> np.ndarray:
    """A small bar chart of an action distribution, as an image strip to put under a frame."""
    strip = np.full((height, width, 3), 30, np.uint8)
    n = len(probs)
    bw = max(1, width // max(n, 1))
    best = int(np.argmax(probs))
    for i, p in enumerate(probs):
        top = height - 14 - int((height - 18) * float(p))
        colour = (80, 220, 80) if i == best else (160, 160, 160)
        cv2.rectangle(strip, (i * bw + 1, top), ((i + 1) * bw - 2, height - 14), colour, -1)
        label = labels[i] if labels and i < len(labels) else str(i)
        cv2.putText(
            strip,
            label[:4],
            (i * bw + 1, height - 3),
            cv2.FONT_HERSHEY_PLAIN,
            0.7,
            (220, 220, 220),
            1,
        )
    return strip


VIDEO_SUFFIXES = (".mp4", ".gif")


def check_video_path(path: str | Path) -> Path:
    """A video path we can write: ``.mp4`` (H.264) or ``.gif``, else a UserError."""
    path = Path(path)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        shown = f"'{path.suffix}'" if path.suffix else "no suffix"
        raise UserError(f"unknown video format {shown} for {path} (use .mp4 or .gif)")
    if path.is_dir():
        raise UserError(f"{path} is a folder; give a video file name ending in .mp4 or .gif")
    return path


class VideoWriter:
    """Frames appended one at a time to MP4 (H.264 via imageio-ffmpeg, encoded as they come,
    so a long video never sits in memory) and/or GIF files.

    Each file is written under a temporary name beside it and moved into place by
    :meth:`close`, so an interrupted watch leaves an earlier video of that name intact.
    """

    def __init__(self, paths: list[Path], fps: int) -> None:
        import imageio.v2 as imageio

        self.paths = [check_video_path(p) for p in paths]
        self.frames = 0
        self._writers = []
        self._tmp = []
        for path in self.paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.stem}.partial{path.suffix.lower()}")
            if tmp.suffix == ".gif":
                writer = imageio.get_writer(tmp, mode="I", duration=1000 / fps, loop=0)
            else:
                writer = imageio.get_writer(
                    tmp,
                    fps=fps,
                    codec="libx264",
                    quality=8,
                    macro_block_size=1,
                    pixelformat="yuv420p",
                )
            self._writers.append(writer)
            self._tmp.append(tmp)

    def append(self, frame: np.ndarray) -> None:
        for writer in self._writers:
            writer.append_data(frame)
        self.frames += 1

    def close(self, keep: bool = True) -> None:
        """Finish the files and move them into place (``keep=False``: discard them)."""
        for writer, tmp, path in zip(self._writers, self._tmp, self.paths, strict=True):
            writer.close()
            if keep and self.frames:
                os.replace(tmp, path)
            else:
                tmp.unlink(missing_ok=True)
        self._writers = []


def write_video(frames: list[np.ndarray], path: str | Path, fps: int) -> Path:
    """Write frames as MP4 or GIF, by the path's suffix."""
    if not frames:
        raise UserError("no frames to write (the env produced no rgb_array frames)")
    writer = VideoWriter([Path(path)], fps)
    try:
        for frame in frames:
            writer.append(frame)
    except BaseException:
        writer.close(keep=False)
        raise
    writer.close()
    return Path(path)


class LiveWindow:
    """A plain window that shows RGB frames at a fixed rate (pygame; closes on Esc/close)."""

    def __init__(self, title: str, fps: int):
        import pygame

        self._pg = pygame
        pygame.display.init()
        pygame.display.set_caption(title)
        self._screen = None
        self._clock = pygame.time.Clock()
        self.fps = fps
        self.open = True
        self.shown = 0

    def show(self, frame: np.ndarray) -> bool:
        pg = self._pg
        if self._screen is None:
            self._screen = pg.display.set_mode((frame.shape[1], frame.shape[0]))
        for event in pg.event.get():
            if event.type == pg.QUIT or (event.type == pg.KEYDOWN and event.key == pg.K_ESCAPE):
                self.open = False
        surface = pg.surfarray.make_surface(np.ascontiguousarray(frame.transpose(1, 0, 2)))
        self._screen.blit(surface, (0, 0))
        pg.display.flip()
        self._clock.tick(self.fps)
        self.shown += 1
        return self.open

    def close(self) -> None:
        self._pg.display.quit()
