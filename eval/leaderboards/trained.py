"""Training entries: a spec's recipe trained once per track and seed, where the records are.

The run goes to ``RESULTS/runs/<entry>/<track>/seed-<n>/`` through the CLI's own
``pilot train`` (same presets, checks, run directory and checkpoints as by hand), in the
track's world (its env settings as ``--set env.KEY=VALUE``), in a process of its own: a
training's numbers then do not depend on what the grid's process ran before it (in one
process, a highway PPO training's first return differed in its ninth digit after a
CartPole training, and 60k steps later the two policies had parted), nor on which cells
a runner happened to take. A run killed midway is resumed from its last checkpoint the
next time the grid reaches it; a finished one is reused.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO

from pilot.errors import UserError

from .run import Job, train_overrides

#: What the training process runs: ``python -m pilot ARGV``, once it has asked to be
#: killed with its grid (``prctl(PR_SET_PDEATHSIG)``, Linux), so a training whose grid
#: is killed never writes on into a run a later grid resumes. The child does this itself
#: rather than through ``Popen(preexec_fn=...)``, which is unsafe in a process with
#: threads, as a Ray worker is. Its first argument is the grid's process id: if the grid
#: died before the prctl took hold, the child leaves at once.
_CHILD = """\
import ctypes, os, runpy, signal, sys
parent = int(sys.argv.pop(1))
prctl = getattr(ctypes.CDLL(None), "prctl", None)
if prctl is not None:
    prctl(1, signal.SIGKILL)
if os.getppid() != parent:
    os._exit(1)
runpy.run_module("pilot", run_name="__main__", alter_sys=True)
"""


def _train(argv: list[str], log: IO[str], show: Callable[[str], None] | None) -> tuple[int, str]:
    """``pilot ARGV`` in a process of its own: its stdout and stderr go to ``log``, each
    stderr line (the progress lines) to ``show``; returns the exit status and the last
    error line (``pilot: error: ...``) without its prefix."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(os.getpid()), *argv],
        stdout=log,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    error = ""
    with proc:
        for raw in proc.stderr:
            log.write(raw)
            log.flush()  # beside the training's stdout, which goes to the file directly
            line = raw.strip()
            if line.startswith("pilot: "):
                error = line.removeprefix("pilot: ").removeprefix("error: ")
            elif line and show is not None:
                show(line)
    return proc.returncode, error


def trained_run(job: Job, progress: Callable[[str], None] | None = None) -> Path:
    """The run of a training entry for this track and seed: trained (or resumed) into
    ``RESULTS/runs/<entry>/<track>/seed-<n>/`` unless it has reached its budget. With
    ``progress``, the training's progress lines (``12,288/60,000 step (20%), ...``) are
    handed to it as they come, prefixed with the cell, and go to its ``train.log``."""
    from pilot.agents.common import checkpoint
    from pilot.runs import open_run, run_dirs

    folder = Path(job.results) / "runs" / job.entry.name / job.track.name / f"seed-{job.seed}"
    recipe = job.entry.recipe
    runs = run_dirs(folder)
    if runs:
        run = open_run(runs[-1])
        try:
            step = checkpoint.read_meta(run.path)["step"]
        except UserError:
            step = -1
        if step >= int(run.info.get("total_steps", 0)) > 0:
            return run.path
        argv = ["train", "--resume", str(run.path)]
    else:
        argv = ["train", recipe["algo"], "--env", job.track.env, "--seed", str(job.seed)]
        argv += ["--runs-dir", str(folder)]
        argv += ["--steps", str(recipe["steps"])] if "steps" in recipe else []
        for setting in train_overrides(job.entry, job.track):
            argv += ["--set", setting]
    folder.mkdir(parents=True, exist_ok=True)
    argv += ["--threads", str(recipe["threads"])] if "threads" in recipe else []
    if progress is None:
        argv.append("--no-progress")
    show = None if progress is None else (lambda line: progress(f"{job.label}: training {line}"))
    with (folder / "train.log").open("a") as log:
        status, error = _train(argv, log, show)
    if status != 0:
        cause = f": {error}" if error else ""
        raise UserError(
            f"{job.label}: training failed (exit {status}){cause}; see {folder / 'train.log'}"
        )
    return run_dirs(folder)[-1]
