"""Where the traffic lights' heads stand: every light has two, as at real junctions.

* The **near head** stands beside the stop line (on a pole, in the town), 1.5 m past
  its kerb end, 3.5 m up. A car at its stop line cannot see it: with the perception camera (mount
  1.4 m up, 8° down, 60° vertical field) the whole head is in the image only while the
  car's centre is at least 9.25 m before the line.
* The **far head** hangs on a span wire over the approach's lanes on the far side of the
  junction (5 m up, clear of every vehicle), facing the approach: a lamp in the light's
  colour in front of a black housing, so that the other approaches see its edge or its
  back. It is in view from the stop line, where a car waits.

Both are visual only: rays and contacts ignore them (they are above or beside the road),
so the lidar and every rule are the same with and without them.
"""

from __future__ import annotations

import math

import numpy as np

from .roads import RoadNetwork, TrafficLight

NEAR_Z = 3.5
FAR_Z = 5.0
#: half extents (along the approach, across it, up) of the near head, and of the far
#: head's housing and lamp
#: (the lamp's face, 0.9 × 1.2 m, is a signal's with its backplate: 10-26 m from the
#: camera of a car at a town's stop line, it is 3-7 pixels wide in the 128 × 96 camera)
NEAR_HALF = (0.3, 0.3, 0.5)
HOUSING_HALF = (0.25, 0.5, 0.65)
LAMP_HALF = (0.03, 0.45, 0.6)


def beside_line(stop_line, out: float = 1.5) -> tuple[float, float]:
    """The point ``out`` metres past the kerb end (the second point) of a stop line, where
    the near head's pole and a stop sign's pole stand."""
    (ax, ay), (bx, by) = stop_line
    length = math.hypot(bx - ax, by - ay)
    return bx + out * (bx - ax) / length, by + out * (by - ay) / length


def near_head(light: TrafficLight) -> tuple[float, float, float]:
    """The near head's centre: beside the stop line, 3.5 m up."""
    return (*beside_line(light.stop_line), NEAR_Z)


Pose = tuple[float, float, float, float]  # x, y, z, yaw


def head_poses(net: RoadNetwork) -> list[tuple[Pose, Pose, Pose]]:
    """Per light of ``net`` (in order), the poses of its near head, its far head's housing
    and its far head's lamp, in one pass over the lanes.

    The housing hangs over the middle of the stop line, moved along the approach as far
    as the farthest end of the junction's lanes that leave it (the far side's edge, or
    the far lane of a T-junction's crossing road), facing back along it; the lamp is on
    its face towards the approaching cars."""
    mids = [0.5 * (np.array(lt.stop_line[0]) + np.array(lt.stop_line[1])) for lt in net.lights]
    dirs = [np.array([math.cos(lt.heading), math.sin(lt.heading)]) for lt in net.lights]
    reach = [0.0] * len(net.lights)
    for lane in net.lanes:
        if lane.light is None:
            continue
        k = lane.light
        for nxt in lane.successors:
            end = net.lanes[nxt].centre[-1]
            reach[k] = max(reach[k], float(np.dot(end - mids[k], dirs[k])))
    out = []
    for light, mid, h, r in zip(net.lights, mids, dirs, reach, strict=True):
        x, y = mid + h * r
        housing = (float(x), float(y), FAR_Z, float(light.heading))
        out.append(((*near_head(light), 0.0), housing, _lamp_of(housing)))
    return out


def _lamp_of(housing: Pose) -> Pose:
    """The lamp's pose: on the housing's face towards the approaching cars."""
    x, y, z, yaw = housing
    back = HOUSING_HALF[0] + LAMP_HALF[0]
    return x - back * math.cos(yaw), y - back * math.sin(yaw), z, yaw
