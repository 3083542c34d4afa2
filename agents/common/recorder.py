"""What a training loop reports to: progress bar, metrics CSV, TensorBoard, checkpoints.

Algorithms call four methods and know nothing about files:

* ``recorder.episodes(step, episodes)`` after collecting (real-score episode returns),
* ``recorder.log(step, metrics)`` after an update (NaN/inf raise :class:`TrainingDiverged`
  *before* anything is saved, so the last checkpoint stays the last good one),
* ``recorder.maybe_checkpoint(agent)`` at the end of an iteration,
* ``recorder.progress(step)`` to move the progress bar.

``Recorder(None, ...)`` keeps everything in memory (tests, benchmarks).

A resumed run (``start_step > 0``) continues its files as if it had never stopped: rows
past the checkpoint are dropped, the recent returns and successes are read back from
``episodes.csv`` (so the progress bar and the closing line go on from them), and the
``time`` column continues from the last recorded time instead of restarting at 0.
"""

from __future__ import annotations

import csv
import math
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pilot.envs.vector import Episode
from pilot.errors import TrainingDiverged
from pilot.progress import Progress


def _number(text: str) -> float:
    """A CSV cell as a number; nan for a cell a killed write left half-written."""
    try:
        return float(text)
    except ValueError:
        return math.nan


class Recorder:
    def __init__(
        self,
        run_dir: str | Path | None,
        total_steps: int,
        start_step: int = 0,
        checkpoint_every: int = 0,
        save: Callable[[Any], Any] | None = None,
        progress_bar: bool = False,
        tensorboard: bool = True,
    ) -> None:
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.total_steps = total_steps
        self.checkpoint_every = checkpoint_every
        self._save = save
        self._last_ckpt_step = start_step
        self.recent = deque(maxlen=100)
        self.recent_success: deque[bool] = deque(maxlen=100)  # envs that judge success
        self.history: list[tuple[int, float, int]] = []  # (step, return, length)
        self.metrics: dict[str, list[tuple[int, float]]] = {}
        self._t0 = time.perf_counter()
        self._time_before = 0.0  # wall time the run had recorded before this process
        self._s0 = start_step
        self._bar = None
        self._tb = None
        self._metrics_file = self._episodes_file = None
        if self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._metrics_file, self._metrics, metric_rows = self._open_csv(
                "metrics.csv", ["step", "time", "name", "value"], start_step
            )
            self._episodes_file, self._episodes, episode_rows = self._open_csv(
                "episodes.csv", ["step", "time", "return", "length", "success"], start_step
            )
            self._continue(metric_rows, episode_rows)
            if tensorboard:
                from torch.utils.tensorboard import SummaryWriter

                # purge_step drops events a crashed run wrote after its last checkpoint,
                # so a resumed run's curves continue without a fold-back.
                self._tb = SummaryWriter(str(self.run_dir / "tb"), purge_step=start_step or None)
        if progress_bar:
            self._bar = Progress(total_steps, unit="step", initial=start_step)
            self._postfix()

    def _open_csv(self, name: str, header: list[str], start_step: int):
        """Open a CSV for appending; on resume drop rows past ``start_step`` (unsaved work).

        Returns the file, its writer and the rows kept.
        """
        path = self.run_dir / name
        rows: list[list[str]] = []
        if path.exists() and start_step > 0:
            with path.open(newline="") as f:
                rows = [r for r in csv.reader(f)][1:]
            rows = [r for r in rows if r and _number(r[0]) <= start_step]
        f = path.open("w", newline="")
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
        f.flush()
        return f, writer, rows

    def _continue(self, metric_rows: list[list[str]], episode_rows: list[list[str]]) -> None:
        """Pick up where the kept rows end: the last recorded time, the recent episodes."""
        times = [_number(r[1]) for r in metric_rows[-1:] + episode_rows[-1:] if len(r) > 1]
        self._time_before = max([t for t in times if math.isfinite(t)], default=0.0)
        for row in episode_rows[-self.recent.maxlen :]:
            if len(row) < 4 or not math.isfinite(ret := _number(row[2])):
                continue
            self.recent.append(ret)
            self.history.append((int(_number(row[0])), ret, int(_number(row[3]))))
            if len(row) > 4 and row[4] in ("0", "1"):
                self.recent_success.append(row[4] == "1")

    def _now(self) -> float:
        """Seconds of wall time since the run began, summed over its resumes."""
        return self._time_before + time.perf_counter() - self._t0

    @property
    def mean_recent_return(self) -> float:
        """Mean real-score return of the last 100 finished episodes (nan before the first)."""
        return sum(self.recent) / len(self.recent) if self.recent else math.nan

    @property
    def success_rate(self) -> float:
        """Share of the last 100 finished episodes the env judged a success (nan where the
        env has no notion of success, or before the first episode)."""
        n = len(self.recent_success)
        return sum(self.recent_success) / n if n else math.nan

    def episodes(self, step: int, episodes: list[Episode]) -> None:
        now = self._now()
        for ep in episodes:
            self.recent.append(ep.ret)
            self.history.append((step, ep.ret, ep.length))
            if ep.success is not None:
                self.recent_success.append(ep.success)
            if self._episodes_file is not None:
                flag = "" if ep.success is None else int(ep.success)
                self._episodes.writerow([step, f"{now:.2f}", ep.ret, ep.length, flag])
            if self._tb is not None:
                self._tb.add_scalar("episode/return", ep.ret, step)
                self._tb.add_scalar("episode/length", ep.length, step)
                if ep.success is not None:
                    self._tb.add_scalar("episode/success", float(ep.success), step)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        bad = [k for k, v in metrics.items() if not math.isfinite(float(v))]
        if bad:
            raise TrainingDiverged(f"{', '.join(bad)} became {metrics[bad[0]]} at step {step}")
        elapsed = time.perf_counter() - self._t0
        sps = (step - self._s0) / max(elapsed, 1e-9)
        now = self._time_before + elapsed
        metrics = {**metrics, "perf/steps_per_s": sps}
        for k, v in metrics.items():
            v = float(v)
            self.metrics.setdefault(k, []).append((step, v))
            if self._metrics_file is not None:
                self._metrics.writerow([step, f"{now:.2f}", k, f"{v:.6g}"])
            if self._tb is not None:
                self._tb.add_scalar(k, v, step)
        if self.recent and self._tb is not None:
            self._tb.add_scalar("episode/return_mean100", self.mean_recent_return, step)
        if self.recent_success and self._tb is not None:
            self._tb.add_scalar("episode/success_rate100", self.success_rate, step)

    def progress(self, step: int) -> None:
        if self._bar is not None:
            if step > self._bar.total:  # whole rollouts can end past the asked-for steps;
                self._bar.total = step  # keep showing a full bar rather than a bare count
            self._postfix()
            self._bar.update(step - self._bar.n)

    def _postfix(self) -> None:
        r = self.mean_recent_return
        text = "return " + ("-" if math.isnan(r) else f"{r:.1f}")
        if self.recent_success:
            text += f", success {self.success_rate:.0%}"
        self._bar.set_postfix_str(text, refresh=False)

    def maybe_checkpoint(self, agent: Any, force: bool = False) -> None:
        if self._save is None:
            return
        if force or (
            self.checkpoint_every and agent.step - self._last_ckpt_step >= self.checkpoint_every
        ):
            self._save(agent)
            self._last_ckpt_step = agent.step
            self.flush()

    def flush(self) -> None:
        for f in (self._metrics_file, self._episodes_file):
            if f is not None:
                f.flush()
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        """Flush and close everything; safe to call more than once."""
        if self._bar is not None:
            self._bar.close()
        self.flush()
        for f in (self._metrics_file, self._episodes_file):
            if f is not None:
                f.close()
        if self._tb is not None:
            self._tb.close()
        self._bar = self._tb = self._metrics_file = self._episodes_file = None
