"""Checkpoints: a ``state_dict`` file plus JSON metadata, written atomically, loaded safely.

Layout inside a checkpoint folder::

    step_000050000.pt     torch.save of plain tensors/numbers (agent.state_dict())
    step_000050000.json   metadata: format, algorithm, env id, config, step, versions, sha256
    latest.json           {"checkpoint": "step_000050000"}, replaced last

Every file is written to a temporary name and renamed into place, and ``latest.json`` moves
only after both files of a checkpoint are complete, so a process killed at any instant
leaves the previous checkpoint as the latest good one. Loading checks the SHA-256 recorded
in the metadata and uses ``torch.load(weights_only=True)``: a tampered file or a pickled
object is refused, never executed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import platform
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pilot
from pilot.errors import UserError

if TYPE_CHECKING:  # torch loads only to save or load tensors: reading metadata stays fast
    import torch

FORMAT = "pilot-checkpoint/1"
_NAME = re.compile(r"^step_(\d+)$")


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: its metadata and the agent state."""

    path: Path
    meta: dict[str, Any]
    state: dict[str, Any]


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def versions() -> dict[str, str]:
    """Versions worth recording next to a result."""
    import torch

    out = {
        "pilot": pilot.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    for name in ("gymnasium", "ale_py", "numpy"):
        with contextlib.suppress(ImportError):
            out[name] = __import__(name).__version__
    return out


def save(folder: str | Path, state: dict[str, Any], meta: dict[str, Any], keep: int = 3) -> Path:
    """Write ``state`` + ``meta`` as ``step_<meta['step']>`` and make it the latest.

    Older checkpoints beyond the newest ``keep`` are removed afterwards.
    """
    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"step_{int(meta['step']):09d}"
    buf = io.BytesIO()
    torch.save(state, buf)
    payload = buf.getvalue()
    full_meta = {
        "format": FORMAT,
        **meta,
        "sha256": hashlib.sha256(payload).hexdigest(),
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": versions(),
    }
    _atomic_write(folder / f"{name}.pt", payload)
    _atomic_write(folder / f"{name}.json", json.dumps(full_meta, indent=2).encode())
    _atomic_write(folder / "latest.json", json.dumps({"checkpoint": name}).encode())
    if keep > 0:
        names = sorted(p.stem for p in folder.glob("step_*.json") if _NAME.match(p.stem))
        for old in names[:-keep]:
            for suffix in (".pt", ".json"):
                (folder / f"{old}{suffix}").unlink(missing_ok=True)
    return folder / f"{name}.pt"


def resolve(path: str | Path) -> Path:
    """The ``.pt`` file meant by a run dir, a checkpoint folder, a ``.pt`` or a ``.json``."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"no such run directory or checkpoint: {path}")
    if path.is_dir():
        folder = path / "checkpoints" if (path / "checkpoints").is_dir() else path
        latest = folder / "latest.json"
        if not latest.is_file():
            raise UserError(f"{path} holds no pilot checkpoint (no latest.json)")
        try:
            name = json.loads(latest.read_text())["checkpoint"]
        except (ValueError, KeyError, TypeError):
            raise UserError(f"{latest} is not a pilot checkpoint pointer") from None
        if not isinstance(name, str) or not _NAME.match(name):
            raise UserError(f"{latest} names a bad checkpoint {name!r}")
        return folder / f"{name}.pt"
    if path.suffix == ".json":
        return path.with_suffix(".pt")
    return path


def read_meta(path: str | Path) -> dict[str, Any]:
    """Metadata of a checkpoint, validated, without loading its tensors."""
    pt = resolve(path)
    meta_path = pt.with_suffix(".json")
    if not meta_path.is_file():
        raise UserError(f"{pt} has no metadata file {meta_path.name}: not a pilot checkpoint")
    try:
        meta = json.loads(meta_path.read_text())
    except ValueError:
        raise UserError(f"{meta_path} is not valid JSON: not a pilot checkpoint") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UserError(f"{meta_path} is not pilot checkpoint metadata (format {FORMAT})")
    return meta


def load(path: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Load and verify a checkpoint; anything not written by :func:`save` is refused."""
    import torch

    pt = resolve(path)
    meta = read_meta(pt)
    if not pt.is_file():
        raise UserError(f"checkpoint file missing: {pt}")
    payload = pt.read_bytes()
    if hashlib.sha256(payload).hexdigest() != meta.get("sha256"):
        raise UserError(
            f"{pt} does not match the SHA-256 in its metadata: refusing a tampered file"
        )
    try:
        state = torch.load(io.BytesIO(payload), map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means "not ours"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(
            f"{pt} holds more than tensors and numbers; refusing to load it ({first})"
        ) from None
    if not isinstance(state, dict):
        raise UserError(f"{pt} is not a pilot agent state")
    return Checkpoint(pt, meta, state)
