"""BEV perception for the driving stack.

* :mod:`.labels` reads the ground truth from a live driving env on the grid of :mod:`.grid`;
* :mod:`.episodes` records shards with the scripted :mod:`.expert`, :mod:`.dataset`
  collects them (``pilot perception collect``) and loads them back, :mod:`.shards` is the
  file format;
* :mod:`.metrics` scores predictions (IoU, nuScenes-style AP, light accuracy, waypoint L2);
* :mod:`.model` is the camera-lidar fusion network (camera features sampled into the BEV
  through the calibration, a lidar BEV branch, fusion in BEV) and :mod:`.heads` its heads,
  targets, loss and box decoder; :mod:`.train` trains it into a run directory (batches from
  :mod:`.batches`) and :mod:`.evaluate` scores it on a split.

Nothing is imported here: the loader and the metrics need only numpy, the collection
pulls in pybullet when it runs, the network torch.
"""
