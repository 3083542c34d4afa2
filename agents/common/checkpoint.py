"""Checkpoints: a ``state_dict`` file plus JSON metadata, written atomically, loaded safely.

Layout inside a checkpoint folder::

    step_000050000.pt           torch.save of plain tensors/numbers (agent.state_dict())
    step_000050000.replay.npz   optional: the replay buffer, numpy arrays only (newest only)
    step_000050000.json         metadata: format, algorithm, env id, config, step, versions,
                                size and sha256 of the .pt (and of the replay)
    latest.json                 {"checkpoint": "step_000050000"}, replaced last

Every file is written to a temporary name and renamed into place, and ``latest.json`` moves
only after every file of a checkpoint is complete, so a process killed at any instant
leaves the previous checkpoint as the latest good one; the temporary files such a kill
leaves behind are removed by the next save (and by ``pilot train --resume``). Loading
checks the size and SHA-256 recorded in the metadata and uses
``torch.load(weights_only=True)`` (the replay: ``numpy.load(allow_pickle=False)``): a
truncated or tampered file or a pickled object is refused, with the reason in our words and
the newest intact checkpoint beside it, never executed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import platform
import re
import time
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pilot
from pilot.errors import UserError
from pilot.files import atomic_write

if TYPE_CHECKING:  # torch loads only to save or load tensors: reading metadata stays fast
    import numpy as np
    import torch

FORMAT = "pilot-checkpoint/1"
_NAME = re.compile(r"^step_(\d+)$")
#: what _atomic_write leaves behind when killed: ".<final name>.<random>.tmp"
_ORPHAN = re.compile(r"^\.(step_\d+\.(pt|json|replay\.npz)|latest\.json)\..+\.tmp$")
_CHUNK = 1 << 22


class CheckpointRefused(UserError):
    """A checkpoint file that fails its checks; ``intact`` is the newest one that passes."""

    def __init__(self, message: str, path: Path, intact: Path | None) -> None:
        if intact is not None:
            message += f"; the newest intact checkpoint there is {intact.stem}"
        super().__init__(message)
        self.path, self.intact = path, intact


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: its metadata and the agent state."""

    path: Path
    meta: dict[str, Any]
    state: dict[str, Any]


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


def step_of(path: Path) -> int:
    """The step in a checkpoint's file name (``step_000050000.pt`` → 50000)."""
    return int(path.name.split(".")[0].split("_")[1])


def clean_orphans(folder: str | Path) -> list[Path]:
    """Remove the temporary files a killed save left in ``folder``; never a finished file."""
    folder = Path(folder)
    removed = []
    if folder.is_dir():
        for p in folder.iterdir():
            if _ORPHAN.match(p.name) and p.is_file():
                p.unlink(missing_ok=True)
                removed.append(p)
    return removed


def _file_digest(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def save(
    folder: str | Path,
    state: dict[str, Any],
    meta: dict[str, Any],
    keep: int = 3,
    replay: tuple[Mapping[str, np.ndarray], dict[str, Any]] | None = None,
) -> Path:
    """Write ``state`` + ``meta`` as ``step_<meta['step']>`` and make it the latest.

    ``replay`` is ``(arrays, info)``: numpy arrays written beside the checkpoint as an
    uncompressed ``.npz`` (streamed to disk, so a buffer of several GB is not copied in
    memory), its size and SHA-256 recorded with ``info`` in the metadata. Afterwards, of
    the checkpoints up to this step only the newest ``keep`` stay, and only this one keeps
    a replay (a replay is large and only the newest is worth resuming from). Checkpoints
    past this step (a resume from an older one) are left alone until overwritten.
    """
    import numpy as np
    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    clean_orphans(folder)
    step = int(meta["step"])
    name = f"step_{step:09d}"
    buf = io.BytesIO()
    torch.save(state, buf)
    payload = buf.getvalue()
    full_meta = {
        "format": FORMAT,
        **meta,
        "bytes": len(payload),
        "sha256": hashlib.sha256(payload).hexdigest(),
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": versions(),
    }
    atomic_write(folder / f"{name}.pt", payload)
    if replay is not None:
        arrays, info = replay
        path = folder / f"{name}.replay.npz"
        atomic_write(path, lambda f: np.savez(f, **arrays))
        full_meta["replay"] = {
            "file": path.name,
            "bytes": path.stat().st_size,
            "sha256": _file_digest(path),
            **info,
        }
    atomic_write(folder / f"{name}.json", json.dumps(full_meta, indent=2).encode())
    atomic_write(folder / "latest.json", json.dumps({"checkpoint": name}).encode())
    older = sorted(p.stem for p in folder.glob("step_*.json") if _NAME.match(p.stem))
    older = [n for n in older if int(n[5:]) <= step]
    for old in older[:-keep] if keep > 0 else []:
        for suffix in (".pt", ".json", ".replay.npz"):
            (folder / f"{old}{suffix}").unlink(missing_ok=True)
    if replay is not None:
        for p in folder.glob("step_*.replay.npz"):
            if step_of(p) < step:
                p.unlink(missing_ok=True)
    return folder / f"{name}.pt"


def _no_checkpoint_yet(path: Path) -> UserError:
    if (path / "run.json").is_file():
        return UserError(
            f"{path} has no checkpoint yet: the run stopped before its first save "
            "(checkpoints are written every checkpoint_every steps and at the end)"
        )
    return UserError(f"{path} holds no pilot checkpoint (no latest.json)")


def resolve(path: str | Path, name: str | None = None) -> Path:
    """The ``.pt`` file meant by a run dir, a checkpoint folder, a ``.pt`` or a ``.json``.

    ``name`` (``step_000040000``) picks that checkpoint of a run dir or folder instead of
    the latest.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"no such run directory or checkpoint: {path}")
    if path.is_dir():
        folder = path / "checkpoints" if (path / "checkpoints").is_dir() else path
        if name is not None:
            name = name.removesuffix(".pt").removesuffix(".json")
            found = sorted(p.stem for p in folder.glob("step_*.json") if _NAME.match(p.stem))
            if not _NAME.match(name) or name not in found:
                choices = ", ".join(found[-5:]) or "none"
                raise UserError(f"{folder} has no checkpoint '{name}' (it has: {choices})")
            return folder / f"{name}.pt"
        latest = folder / "latest.json"
        if not latest.is_file():
            raise _no_checkpoint_yet(path)
        try:
            name = json.loads(latest.read_text())["checkpoint"]
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise UserError(f"{latest} is not a pilot checkpoint pointer") from None
        if not isinstance(name, str) or not _NAME.match(name):
            raise UserError(f"{latest} names a bad checkpoint {name!r}")
        return folder / f"{name}.pt"
    if name is not None:
        raise UserError(f"{path} is a file; a checkpoint name picks one in a run directory")
    if path.suffix == ".json":
        return path.with_suffix(".pt")
    return path


def read_meta(path: str | Path, name: str | None = None) -> dict[str, Any]:
    """Metadata of a checkpoint, validated, without loading its tensors."""
    pt = resolve(path, name)
    meta_path = pt.with_suffix(".json")
    if not meta_path.is_file():
        raise UserError(f"{pt} has no metadata file {meta_path.name}: not a pilot checkpoint")
    try:
        meta = json.loads(meta_path.read_text())
    except (ValueError, UnicodeDecodeError):
        raise UserError(f"{meta_path} is not valid JSON: not a pilot checkpoint") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UserError(f"{meta_path} is not pilot checkpoint metadata (format {FORMAT})")
    return meta


def _problem(path: Path, size: int | None, sha256: str | None) -> str | None:
    """Why ``path`` is not the file its metadata describes, in words; None when it is."""
    if not path.is_file():
        return f"{path} is missing"
    if _file_digest(path) == sha256:
        return None
    actual = path.stat().st_size
    if size is not None and actual < size:
        return f"{path} is truncated: {actual:,} of the {size:,} bytes written when it was saved"
    return (
        f"{path} does not match the SHA-256 in its metadata: it was tampered with or "
        "damaged after it was saved"
    )


def newest_intact(folder: Path, below: int | None = None) -> Path | None:
    """The newest checkpoint in ``folder`` (before step ``below``) whose metadata reads and
    whose file matches its recorded size and hash; None when there is none."""
    names = sorted(
        (p.stem for p in folder.glob("step_*.json") if _NAME.match(p.stem)), reverse=True
    )
    for name in names:
        if below is not None and int(name[5:]) >= below:
            continue
        pt = folder / f"{name}.pt"
        try:
            meta = read_meta(pt)
        except UserError:
            continue
        if _problem(pt, meta.get("bytes"), meta.get("sha256")) is None:
            return pt
    return None


def verify(path: str | Path, name: str | None = None) -> tuple[Path, dict[str, Any]]:
    """``(pt, meta)`` of a checkpoint whose file is whole and unchanged, checked without
    torch; otherwise :class:`CheckpointRefused` naming the newest intact one."""
    pt = resolve(path, name)
    meta = read_meta(pt)
    problem = _problem(pt, meta.get("bytes"), meta.get("sha256"))
    if problem is not None:
        raise CheckpointRefused(problem, pt, newest_intact(pt.parent, below=step_of(pt)))
    return pt, meta


def load(
    path: str | Path, map_location: str | torch.device = "cpu", name: str | None = None
) -> Checkpoint:
    """Load and verify a checkpoint; anything not written by :func:`save` is refused."""
    import torch

    pt, meta = verify(path, name)
    payload = pt.read_bytes()
    if hashlib.sha256(payload).hexdigest() != meta.get("sha256"):  # changed since verify
        raise CheckpointRefused(f"{pt} changed while it was being read", pt, None)
    try:
        with warnings.catch_warnings():  # torch warns about odd pickles before refusing them
            warnings.simplefilter("ignore")
            state = torch.load(io.BytesIO(payload), map_location=map_location, weights_only=True)
    except Exception:  # noqa: BLE001 - torch's own message advises unsafe loading: not quoted
        intact = newest_intact(pt.parent, below=step_of(pt))
        if not zipfile.is_zipfile(io.BytesIO(payload)):
            raise CheckpointRefused(f"{pt} is not a torch tensor file", pt, intact) from None
        raise CheckpointRefused(
            f"{pt} holds objects other than tensors, numbers and strings; refusing to load it",
            pt,
            intact,
        ) from None
    if not isinstance(state, dict):
        raise UserError(f"{pt} is not a pilot agent state")
    return Checkpoint(pt, meta, state)


def load_replay(pt: Path, meta: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The replay arrays saved with checkpoint ``pt`` and their recorded info, verified
    (size, SHA-256) and read without unpickling; a :class:`UserError` says what is wrong."""
    import numpy as np

    info = meta.get("replay")
    if not isinstance(info, dict) or not isinstance(info.get("file"), str):
        raise UserError(f"{pt} was saved without a replay buffer")
    path = pt.parent / Path(info["file"]).name
    problem = _problem(path, info.get("bytes"), info.get("sha256"))
    if problem is not None:
        raise UserError(problem)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile):
        raise UserError(f"{path} is not a replay buffer of plain numpy arrays") from None
    return arrays, {k: v for k, v in info.items() if k not in ("file", "bytes", "sha256")}
