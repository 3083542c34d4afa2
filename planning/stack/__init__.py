"""The modular driving stack: perception → prediction → behaviour → Frenet lattice
planning → path tracking, as an agent (:class:`~pilot.planning.stack.agent.ModularAgent`,
``pilot eval modular --env pilot/Driving-Intersection-v0``).

* :mod:`.config` — :class:`ModularConfig` and the presets in ``presets.yaml``;
* :mod:`.perception` — the privileged percept (through the perception labels' code);
* :mod:`.prediction` — constant-velocity occupancy with footprints growing in time;
* :mod:`.behaviour` — open lanes, leads, stop lines, pedestrians;
* :mod:`.frenet` — candidates in the route's Frenet frame, collision check, costs;
* :mod:`.stack` — one control step, top to bottom.
"""
