"""Training entries: a spec's recipe trained once per track and seed, where the records are.

The run goes to ``RESULTS/runs/<entry>/<track>/seed-<n>/`` through the CLI's own
``pilot train`` (same presets, checks, run directory and checkpoints as by hand), in the
track's world (its env settings as ``--set env.KEY=VALUE``). A run killed midway is
resumed from its last checkpoint the next time the grid reaches it; a finished one is
reused.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import IO

from pilot.errors import UserError

from .run import Job, train_overrides


class _Lines(io.TextIOBase):
    """A stream for the training's stderr: every line goes to ``log``, each becomes
    ``show``'s text (the training's progress lines show in the grid's progress line), and
    the last error line (``pilot: ...``) is kept for the cell's failure."""

    def __init__(self, log: IO[str], show: Callable[[str], None] | None) -> None:
        self.log, self.show = log, show
        self.error = ""

    def write(self, text: str) -> int:
        self.log.write(text)
        for line in filter(None, (ln.strip() for ln in text.splitlines())):
            if line.startswith("pilot: "):
                self.error = line.removeprefix("pilot: ").removeprefix("error: ")
            elif self.show is not None:
                self.show(line)
        return len(text)

    def isatty(self) -> bool:
        return False


def trained_run(job: Job, progress: Callable[[str], None] | None = None) -> Path:
    """The run of a training entry for this track and seed: trained (or resumed) into
    ``RESULTS/runs/<entry>/<track>/seed-<n>/`` unless it has reached its budget. With
    ``progress``, the training's progress lines (``12,288/60,000 step (20%), ...``) are
    handed to it as they come, prefixed with the cell, and go to its ``train.log``."""
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
        argv = ["train", "--resume", str(run.path)]
    else:
        argv = ["train", recipe["algo"], "--env", job.track.env, "--seed", str(job.seed)]
        argv += ["--runs-dir", str(folder)]
        argv += ["--steps", str(recipe["steps"])] if "steps" in recipe else []
        for setting in train_overrides(job.entry, job.track):
            argv += ["--set", setting]
    folder.mkdir(parents=True, exist_ok=True)
    if progress is None:
        argv.append("--no-progress")
    show = None if progress is None else (lambda line: progress(f"{job.label}: training {line}"))
    with (folder / "train.log").open("a") as log, contextlib.redirect_stdout(log):
        lines = _Lines(log, show)
        with contextlib.redirect_stderr(lines):
            status = cli.main(argv)
    if status != 0:
        cause = f": {lines.error}" if lines.error else ""
        raise UserError(
            f"{job.label}: training failed (exit {status}){cause}; see {folder / 'train.log'}"
        )
    return run_dirs(folder)[-1]
