"""Run directories: where one training run keeps its config, curves, checkpoints and videos.

``runs/<env>__<algo>__<seed>__<YYYYmmdd-HHMMSS>/`` holds::

    run.json          algorithm, env id, seed, step budget, git commit, command, versions,
                      device and torch threads, the steps each resume started from
    config.yaml       the fully resolved config (preset ← file ← --set); its ``steps`` is
                      the step budget, the same number as run.json's ``total_steps``
    metrics.csv       step,time,name,value (long format: one row per logged scalar)
    episodes.csv      step,time,return,length (real-score episodes while training)
    tb/               TensorBoard events
    checkpoints/      step_*.pt + step_*.json + latest.json (+ step_*.replay.npz)
    videos/, eval/    written by `pilot watch` / `pilot eval`
"""

from __future__ import annotations

import json
import os
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

    def set_steps(self, total: int) -> None:
        """Record a new step budget in config.yaml and run.json alike."""
        self.config["steps"] = total
        _write(self.path / "config.yaml", yaml.safe_dump(self.config, sort_keys=False))
        self.update_info(total_steps=total)

    def clean_orphans(self) -> list[Path]:
        """Remove the temporary files a process killed while writing left behind."""
        removed = checkpoint.clean_orphans(self.checkpoints)
        for name in ("run.json", "config.yaml"):
            tmp = self.path / f"{name}.tmp"
            if tmp.is_file():
                tmp.unlink()
                removed.append(tmp)
        return removed


def _write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def slug(env_id: str) -> str:
    return env_id.replace("/", "-")


def check_root(root: str | Path) -> None:
    """``root`` can hold run directories: it is a writable folder, or can be made in one."""
    root = Path(root)
    existing = root
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        what = "is a file" if existing == root else f"is under {existing}, which is a file"
        raise UserError(f"--runs-dir {root} {what}, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"--runs-dir {root}: cannot write in {existing} (permission denied)")


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
    try:
        path.mkdir(parents=True)
    except OSError as exc:
        raise UserError(f"cannot make run directory {path}: {exc.strerror}") from None
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


def run_dirs(folder: str | Path) -> list[Path]:
    """The run directories directly in ``folder`` (those with a ``run.json``), oldest name
    first; none when the folder does not exist."""
    folder = Path(folder)
    return (
        sorted(p for p in folder.iterdir() if (p / "run.json").is_file()) if folder.is_dir() else []
    )


def open_run(path: str | Path) -> Run:
    """An existing run directory; a path that is not one is a :class:`UserError`."""
    path = Path(path)
    if path.is_file():
        raise UserError(f"{path} is a file, not a run directory")
    if not path.is_dir():
        raise UserError(f"no such run directory: {path}")
    info_path, cfg_path = path / "run.json", path / "config.yaml"
    if not info_path.is_file() or not cfg_path.is_file():
        raise UserError(f"{path} is not a pilot run directory (run.json/config.yaml missing)")
    try:
        info = json.loads(info_path.read_text())
        config = yaml.safe_load(cfg_path.read_text()) or {}
    except (ValueError, yaml.YAMLError) as exc:  # UnicodeDecodeError is a ValueError
        first = str(exc).strip().splitlines()[0]
        raise UserError(f"{path} has an unreadable run.json/config.yaml: {first}") from None
    if not isinstance(info, dict) or not isinstance(config, dict):
        raise UserError(f"{path} has a run.json/config.yaml that is not a mapping")
    return Run(path, info, config)


def run_of_checkpoint(ckpt_pt: Path) -> Run | None:
    """The run directory a checkpoint file lives in, if it is inside one."""
    parent = ckpt_pt.parent.parent
    try:
        return open_run(parent)
    except UserError:
        return None
