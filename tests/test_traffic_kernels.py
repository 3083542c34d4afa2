"""The traffic's compiled per-step functions (envs/driving/traffic_kernels.py, and the
world's other compiled loops: box rays and contacts, lane and route lookups): they give
the numbers the array code gave, and the same source runs as plain Python, to the bit,
where numba is missing."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

import pilot.envs  # noqa: F401 - registers the pilot/... ids
from pilot.envs import make_env
from pilot.envs.driving import layouts
from pilot.envs.driving.traffic import TrafficModel, TrafficState


def test_vehicle_poses_are_the_networks_poses_to_the_bit():
    """In their lanes (no lane change under way) vehicles stand where ``RoadNetwork.poses``
    puts them, bit for bit: on the town's open lanes (arc lengths past either end are
    clipped) and on a loop's closed ones (wrapped), at points between and on the lanes'
    centre-line points."""
    env = make_env("pilot/Driving-Town-v0", town_maps=1)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for net in (env.unwrapped.net, layouts.loop(rng, n_lanes=2)):
        model = TrafficModel(net)
        lanes = rng.integers(len(net.lanes), size=400)
        s = rng.uniform(-5.0, 5.0 + net.lane_lengths[lanes])
        s[::4] = [net.lanes[k].s[len(net.lanes[k].s) // 2] for k in lanes[::4]]  # on a point
        tr = TrafficState.empty(len(s))
        tr.lane[:], tr.s[:] = lanes, s
        for got, want in zip(model.poses(tr), net.poses(lanes, s), strict=True):
            np.testing.assert_array_equal(got, want)
    env.close()


#: A StopSign episode with the ego standing: vehicles queue at the signs and are let in,
#: yield in the junction, pedestrians walk; prints a digest of every step's traffic and
#: pedestrian arrays and the vehicle-steps spent in the junction.
EPISODE = """
import hashlib, sys
if sys.argv[1] == "plain":
    sys.modules["numba"] = None  # as where numba is not installed
import numpy as np
from pilot.envs import make_env
from pilot.envs.driving import traffic_kernels
assert (traffic_kernels.numba is None) == (sys.argv[1] == "plain")
env = make_env("pilot/Driving-StopSign-v0", vehicles=16, blocked_time=1e6,
               initial_speed=0.0, terminate_on_collision=False)
env.reset(seed=1)
digest, entries = hashlib.sha256(), 0
for _ in range(300):
    obs, *_ = env.step(np.array([0.0, -1.0]))
    sim = env.unwrapped._sim
    digest.update(obs["lidar"].tobytes())  # the rays against the moving boxes
    digest.update(obs["state"].tobytes())  # the waypoints in the car's frame
    for a in (*vars(sim.traffic).values(), *vars(sim.peds).values()):
        digest.update(np.ascontiguousarray(a).tobytes())
    entries += int(np.sum(np.isfinite(sim.traffic.entered) & sim.traffic.active))
print(digest.hexdigest(), entries)
"""


def test_the_traffic_runs_the_same_without_numba():
    runs = [
        subprocess.run(
            [sys.executable, "-c", EPISODE, mode],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        ).stdout.split()
        for mode in ("compiled", "plain")
    ]
    assert int(runs[0][1]) > 50  # vehicles did go through the junction
    assert runs[0] == runs[1]
