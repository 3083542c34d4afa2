"""Run directories: where one training run keeps its config, curves, checkpoints and videos.

``runs/<env>__<algo>__<seed>__<YYYYmmdd-HHMMSS>/`` holds::

    run.json          algorithm, env id, seed, step budget, git commit, command, versions
    config.yaml       the fully resolved config (preset ← file ← --set)
    metrics.csv       step,time,name,value (long format: one row per logged scalar)
    episodes.csv      step,time,return,length (real-score episodes while training)
    tb/               TensorBoard events
    checkpoints/      step_*.pt + step_*.json + latest.json
    videos/, eval/    written by `pilot watch` / `pilot eval`
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pilot.agents.common import checkpoint
from pilot.errors import UserError


def git_commit(cwd: Path | None = None) -> str | None:
    """The commit of the code that ran (with ``-dirty`` when there are local changes)."""
    here = cwd or Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


@dataclass
class Run:
    """An existing or new run directory and its recorded facts."""

    path: Path
    info: dict[str, Any]
    config: dict[str, Any]

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    def subdir(self, name: str) -> Path:
        d = self.path / name
        d.mkdir(parents=True, exist_ok=True)
        return d

    def update_info(self, **fields: Any) -> None:
        self.info.update(fields)
        _write(self.path / "run.json", json.dumps(self.info, indent=2))


def _write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def slug(env_id: str) -> str:
    return env_id.replace("/", "-")


def create(
    root: str | Path, algo: str, env_id: str, seed: int, config: dict[str, Any], **info: Any
) -> Run:
    """Make a new run directory and record what the run is."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path(root) / f"{slug(env_id)}__{algo}__{seed}__{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = Path(root) / f"{slug(env_id)}__{algo}__{seed}__{stamp}-{n}"
    path.mkdir(parents=True)
    run_info = {
        "algo": algo,
        "env_id": env_id,
        "seed": seed,
        "git_commit": git_commit(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": checkpoint.versions(),
        **info,
    }
    run = Run(path, run_info, config)
    run.update_info()
    _write(path / "config.yaml", yaml.safe_dump(config, sort_keys=False))
    return run


def open_run(path: str | Path) -> Run:
    """An existing run directory; a path that is not one is a :class:`UserError`."""
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"no such run directory: {path}")
    info_path, cfg_path = path / "run.json", path / "config.yaml"
    if not info_path.is_file() or not cfg_path.is_file():
        raise UserError(f"{path} is not a pilot run directory (run.json/config.yaml missing)")
    try:
        info = json.loads(info_path.read_text())
        config = yaml.safe_load(cfg_path.read_text()) or {}
    except (ValueError, yaml.YAMLError) as exc:
        raise UserError(f"{path} has an unreadable run.json/config.yaml: {exc}") from None
    return Run(path, info, config)


def run_of_checkpoint(ckpt_pt: Path) -> Run | None:
    """The run directory a checkpoint file lives in, if it is inside one."""
    parent = ckpt_pt.parent.parent
    try:
        return open_run(parent)
    except UserError:
        return None
