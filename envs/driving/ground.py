"""What is painted on the flat ground of a road network: lane surfaces, lane lines, stop
lines and crosswalk stripes as world-frame shapes (:class:`GroundShapes`), and the raster
of them the camera's ground pixels and the BEV drawings are coloured from
(:class:`GroundRaster`, painted in tiles as the car comes near)."""

from __future__ import annotations

import math
import weakref

import numpy as np

from .roads import RoadNetwork, arc_length
from .semantics import GRASS, MARKING, ROAD

#: Fractional bits of the fixed-point pixel coordinates given to cv2's drawing functions.
SHIFT = 2


class GroundShapes:
    """What is painted on the ground of a road network, as world-frame shapes: lane
    surfaces (one quad per centre-line segment), lane lines (solid polylines at the road's
    edges, 3 m dashes every 9 m between lanes of one direction), stop lines and crosswalk
    stripes. Built once per network, so the world raster (camera ground, BEV drawings) and
    the perception labels paint the same road from the same shapes."""

    def __init__(self, net: RoadNetwork) -> None:
        quads = []
        for ln in net.lanes:
            lb, rb = ln.left_boundary, ln.right_boundary
            quads.append(np.stack([lb[:-1], lb[1:], rb[1:], rb[:-1]], axis=1))
        self.quads = np.concatenate(quads)  # (n, 4, 2)
        self.surfaces = [np.asarray(poly) for poly in net.surfaces]  # paved junction gaps
        self.solid: list[np.ndarray] = []  # polylines (k, 2)
        dashes = []
        for ln in net.lanes:
            if ln.kind != "road":
                continue
            for boundary, neighbour in ((ln.left_boundary, ln.left), (ln.right_boundary, ln.right)):
                if neighbour is None:
                    self.solid.append(boundary)
                else:
                    dashes.append(_dashes(boundary, 3.0, 6.0))
        self.dashes = np.concatenate([np.zeros((0, 3, 2)), *dashes])
        self.stop_lines = np.array(
            [g.stop_line for g in [*net.lights, *net.stop_signs]], dtype=np.float64
        ).reshape(-1, 2, 2)
        stripes = []
        corners = np.array(((-0.25, -1.5), (0.25, -1.5), (0.25, 1.5), (-0.25, 1.5)))
        for a, b in net.crosswalks:  # zebra stripes across the walking direction
            d = (b - a) / np.linalg.norm(b - a)
            n = np.array([-d[1], d[0]])
            length = float(np.linalg.norm(b - a))
            c = a + d * np.arange(0.5, length, 1.0)[:, None]
            along, across = corners[:, :1, None], corners[:, 1:, None]
            stripes.append((c + along * d + across * n).transpose(1, 0, 2))
        self.stripes = np.concatenate([np.zeros((0, 4, 2)), *stripes])

    def paint(
        self,
        road: np.ndarray,
        marking: np.ndarray,
        px,
        thick: int,
        values: tuple[int, int] = (ROAD, MARKING),
    ) -> None:
        """Fill the lane surfaces into ``road`` and draw the markings into ``marking`` (the
        same image or two), with ``values`` (road, marking). ``px`` maps world points
        ``(..., 2)`` to cv2 pixel coordinates in fixed point with :data:`SHIFT` fractional
        bits (int32); lines are ``thick`` pixels wide, stop lines three times that."""
        import cv2

        road_value, marking_value = values
        # one polygon per call: cv2 fills a list of polygons even-odd, which left holes
        # where lanes overlap (crossing connectors in a junction); only those in the image
        corners = np.array(road.shape[1::-1]) << SHIFT
        for poly in [*px(self.quads), *(px(p) for p in self.surfaces)]:
            if (poly.max(axis=0) >= 0).all() and (poly.min(axis=0) < corners).all():
                cv2.fillPoly(road, [poly], road_value, cv2.LINE_8, SHIFT)
        lines = [px(line) for line in self.solid] + list(px(self.dashes))
        if lines:
            cv2.polylines(marking, lines, False, marking_value, thick, cv2.LINE_8, SHIFT)
        for a, b in px(self.stop_lines).tolist():
            cv2.line(marking, tuple(a), tuple(b), marking_value, 3 * thick, cv2.LINE_8, SHIFT)
        if len(self.stripes):
            for stripe in px(self.stripes):
                cv2.fillPoly(marking, [stripe], marking_value, cv2.LINE_8, SHIFT)


class GroundRaster:
    """The road network painted into a top-down class image (grass / road / markings) at
    ``resolution`` metres per pixel, for camera pixels that see the ground and for BEV
    drawings.

    The image is painted lazily, in square tiles of :attr:`TILE` pixels when a lookup
    first needs them, and at most :attr:`KEEP` tiles are kept (least recently used go):
    a town is a kilometre across, 100 megapixels at 10 cm, of which a camera sees a few
    tiles. A tile is painted from the same fixed-point shapes shifted by whole pixels, so
    it holds the pixels of the whole image painted at once (:attr:`image`).
    """

    TILE = 512
    KEEP = 96
    BORDER = 32

    def __init__(self, net: RoadNetwork, resolution: float = 0.1) -> None:
        self.resolution = resolution
        x0, y0, x1, y1 = net.bounds
        self.origin = np.array([x0, y0])
        self.width = int(math.ceil((x1 - x0) / resolution))
        self.height = int(math.ceil((y1 - y0) / resolution))
        self._net = net
        self._scale = (1 << SHIFT) / resolution
        self._thick = max(1, round(0.15 / resolution))
        self._tiles: dict[tuple[int, int], np.ndarray] = {}

    @property
    def shapes(self) -> GroundShapes:
        """The network's ground shapes (made when first painted: a rollout without a
        camera or a drawing never needs them; kept per network by :func:`ground_shapes`)."""
        return ground_shapes(self._net)

    def _paint(self, row0: int, col0: int, h: int, w: int) -> np.ndarray:
        """Rows ``row0 ... + h`` and columns ``col0 ... + w`` of the image. cv2 clips
        what crosses an image's edge a little differently from what it draws whole, so
        the piece is painted with a border of :attr:`BORDER` pixels, then cut out."""
        m = self.BORDER
        img = np.full((h + 2 * m, w + 2 * m), GRASS, dtype=np.uint8)
        corner = np.array([(col0 - m) << SHIFT, (row0 - m) << SHIFT], dtype=np.int32)

        def px(points: np.ndarray) -> np.ndarray:
            pts = np.round((np.asarray(points) - self.origin) * self._scale).astype(np.int32)
            return pts - corner

        self.shapes.paint(img, img, px, self._thick)
        return img[m : m + h, m : m + w].copy()

    def tile(self, ty: int, tx: int) -> np.ndarray:
        """Tile ``(ty, tx)``: rows ``ty * TILE ...`` and columns ``tx * TILE ...``."""
        key = (ty, tx)
        img = self._tiles.pop(key, None)
        if img is None:
            t = self.TILE
            r0, c0 = ty * t, tx * t
            img = self._paint(r0, c0, min(t, self.height - r0), min(t, self.width - c0))
            if len(self._tiles) >= self.KEEP:
                del self._tiles[next(iter(self._tiles))]
        self._tiles[key] = img  # most recently used last
        return img

    @property
    def image(self) -> np.ndarray:
        """The whole image, painted now (large for a town: for pictures and checks)."""
        return self._paint(0, 0, self.height, self.width)

    def lookup(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Class of the world points ``(x, y)``; outside the raster is grass."""
        col = ((x - self.origin[0]) / self.resolution).astype(np.int64)
        row = ((y - self.origin[1]) / self.resolution).astype(np.int64)
        ok = (col >= 0) & (col < self.width) & (row >= 0) & (row < self.height)
        out = np.full(x.shape, GRASS, dtype=np.uint8)
        row, col = row[ok], col[ok]
        t = self.TILE
        key = (row // t) * (self.width // t + 1) + col // t
        values = np.empty(len(row), dtype=np.uint8)
        for k in np.unique(key).tolist():
            ty, tx = divmod(k, self.width // t + 1)
            sel = key == k
            values[sel] = self.tile(ty, tx)[row[sel] - ty * t, col[sel] - tx * t]
        out[ok] = values
        return out


def _dashes(line: np.ndarray, on: float, off: float) -> np.ndarray:
    """Dashes ``on`` metres long every ``on + off`` metres along a polyline, 3 points each
    (start, middle, end: the values ``np.linspace(start, start + on, 3)`` gives)."""
    s = arc_length(line)
    start = np.arange(0.0, s[-1] - on, on + off)
    stop = start + on
    u = np.stack([start, (stop - start) / 2 + start, stop], axis=1)
    return np.stack([np.interp(u, s, line[:, 0]), np.interp(u, s, line[:, 1])], axis=2)


_SHAPES: weakref.WeakKeyDictionary[RoadNetwork, GroundShapes] = weakref.WeakKeyDictionary()


def ground_shapes(net: RoadNetwork) -> GroundShapes:
    """:class:`GroundShapes` of ``net``, made once per network (a town is kept between
    episodes, and so are its shapes)."""
    if net not in _SHAPES:
        _SHAPES[net] = GroundShapes(net)
    return _SHAPES[net]
