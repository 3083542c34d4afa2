"""BEV perception for the driving stack.

* :mod:`.labels` reads the ground truth from a live driving env on the grid of :mod:`.grid`;
* :mod:`.episodes` records shards with the scripted :mod:`.expert`, :mod:`.dataset`
  collects them (``pilot perception collect``) and loads them back, :mod:`.shards` is the
  file format;
* :mod:`.metrics` scores predictions (IoU, nuScenes-style AP, light accuracy, waypoint L2).

Nothing is imported here: the loader and the metrics need only numpy, the collection
pulls in pybullet when it runs.
"""
