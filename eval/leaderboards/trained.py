"""Training entries: a spec's recipe trained once per track and seed, where the records are.

The run goes to ``RESULTS/runs/<entry>/<track>/seed-<n>/`` through the CLI's own
``pilot train`` (same presets, checks, run directory and checkpoints as by hand), in the
track's world (its env settings as ``--set env.KEY=VALUE``). A run killed midway is
resumed from its last checkpoint the next time the grid reaches it; a finished one is
reused.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from pilot.errors import UserError

from .run import Job, train_overrides


def trained_run(job: Job) -> Path:
    """The run of a training entry for this track and seed: trained (or resumed) into
    ``RESULTS/runs/<entry>/<track>/seed-<n>/`` unless it has reached its budget."""
    from pilot import cli
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
        argv = ["train", "--resume", str(run.path), "--no-progress"]
    else:
        argv = ["train", recipe["algo"], "--env", job.track.env, "--seed", str(job.seed)]
        argv += ["--runs-dir", str(folder), "--no-progress"]
        argv += ["--steps", str(recipe["steps"])] if "steps" in recipe else []
        for setting in train_overrides(job.entry, job.track):
            argv += ["--set", setting]
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "train.log").open("a") as log, contextlib.redirect_stdout(log):
        status = cli.main(argv)
    if status != 0:
        raise UserError(f"{job.label}: training failed (exit {status}); see {folder / 'train.log'}")
    return run_dirs(folder)[-1]
