"""Leaderboards: evaluate a grid of entries × tracks × seeds and report it.

A spec (YAML, :mod:`.spec`) names the entries (a run directory or checkpoint, a training
recipe, or a built-in agent), the tracks (env ids with their protocol) and the seeds.
:mod:`.run` plays each (entry, track, seed) once and writes it atomically as one *record*;
:mod:`.aggregate` turns the records into a *report model*; :mod:`.report` writes the model
as Markdown, CSV, JSON and one self-contained HTML page.

Record (``RESULTS/records/<entry>/<track>/seed-<n>.json``)::

    {"schema": "pilot.leaderboard/1",
     "entry": str, "track": str, "seed": int,
     "env_id": str, "kind": "atari" | "driving" | "navigation" | "control",
     "game": str | None,                 # Atari: the game's name (a key of the HNS tables)
     "protocol": "deepmind" | "machado" | None,
     "episodes": [{"seed", "episode", "ret", "length", "terminated", "success", "end",
                   "driving": DrivingScore as a dict | None,
                   "navigation": {"path_length", "optimal_length"} | None}, ...],
     "provenance": {"entry_kind": "checkpoint" | "train" | "builtin", "algo": str,
                    "checkpoint": str | None, "checkpoint_sha256": str | None,
                    "run_dir": str | None, "config": dict, "git_commit": str | None,
                    "versions": dict, "protocol": str | None, "seeds": [int],
                    "episodes": int, "acting": str, "wall_s": float, "created": str}}
"""
