"""The on-disk format of a perception dataset: ``.npz`` shards and a ``manifest.json``.

A shard holds the frames of one episode (one scenario, one seed) as numpy arrays with a
first frame axis; objects are concatenated, frame ``i``'s at rows ``box_start[i] :
box_start[i + 1]``. Shards are zip files of ``.npy`` arrays with fixed entry dates, so the
same arrays give the same bytes; they are read with ``allow_pickle=False`` and only after
their SHA-256 matches the manifest's.

The manifest records the format, the collection config, the class lists, the camera and
lidar calibration, the splits and, per shard, its split, scenario, seed, frame count, how
the episode ended, size and SHA-256. Every file is written to a temporary name beside its
target and renamed into place, so a collection killed at any moment leaves whole files.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from pilot.errors import UserError
from pilot.files import atomic_write

FORMAT, VERSION = "pilot-perception", 1
SHARD_FORMAT = "pilot-perception-shard"
MANIFEST = "manifest.json"

#: Keys of a shard and the dtype and per-frame shape (``None``: from the config) of each.
FRAME_KEYS: dict[str, str] = {
    "camera": "uint8",
    "lidar": "float32",
    "lidar_bev": "uint8",
    "bev": "uint8",
    "light": "int8",
    "light_distance": "float32",
    "waypoints": "float32",
    "speed": "float32",
    "action": "float32",
    "pose": "float64",
    "time": "float32",
    "step": "int32",
    "camera_K": "float32",
    "camera_T": "float32",
    "lidar_T": "float32",
}
BOX_KEYS: dict[str, str] = {"boxes": "float32", "box_class": "uint8", "box_start": "int64"}
#: Keys a shard may lack (datasets collected before they were recorded), checked when there.
OPTIONAL_KEYS: dict[str, str] = {"light_heads": "float32"}


def remove_orphans(folder: Path) -> list[Path]:
    """Delete the temporary files a killed writer left in ``folder``."""
    gone = []
    for tmp in folder.glob(".*.tmp"):
        tmp.unlink()
        gone.append(tmp)
    return gone


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def shard_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """The ``.npz`` bytes of a shard, with its format tag, deflate-compressed."""
    buf = io.BytesIO()
    tagged = {"format": np.array(SHARD_FORMAT), "version": np.array(VERSION), **arrays}
    np.savez_compressed(buf, allow_pickle=False, **tagged)
    return buf.getvalue()


def read_shard(path: Path, expected_sha256: str, frames: int, shapes: dict[str, tuple]) -> dict:
    """The arrays of the shard at ``path``, after checking its hash against the manifest's,
    its format tag, keys, dtypes and shapes; any mismatch is a :class:`UserError` that names
    the file and says how to rebuild it."""
    fix = "run the same `pilot perception collect` again to rebuild it"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"shard {path} is missing; {fix}") from None
    except OSError as exc:
        raise UserError(f"cannot read shard {path}: {exc.strerror}") from None
    if sha256(data) != expected_sha256:
        raise UserError(
            f"shard {path} does not match the SHA-256 in its manifest (corrupt, truncated or "
            f"replaced); {fix}"
        )
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise UserError(f"shard {path} is not a readable .npz ({exc}); {fix}") from None
    try:
        ours = str(arrays["format"]) == SHARD_FORMAT and int(arrays["version"]) == VERSION
    except (KeyError, TypeError, ValueError):
        ours = False
    if not ours:
        raise UserError(f"{path} is not a version-{VERSION} pilot perception shard")
    for key, dtype in {**FRAME_KEYS, **BOX_KEYS, **OPTIONAL_KEYS}.items():
        if key not in arrays:
            if key in OPTIONAL_KEYS:
                continue
            raise UserError(f"shard {path} lacks the array '{key}'; {fix}")
        if arrays[key].dtype != np.dtype(dtype):
            raise UserError(f"shard {path}: '{key}' is {arrays[key].dtype}, expected {dtype}")
    for key, shape in shapes.items():
        if key in arrays and arrays[key].shape != (frames, *shape):
            raise UserError(
                f"shard {path}: '{key}' has shape {arrays[key].shape}, expected {(frames, *shape)}"
            )
    start = arrays["box_start"]
    if start.shape != (frames + 1,) or start[0] != 0 or start[-1] != len(arrays["boxes"]):
        raise UserError(f"shard {path}: box offsets do not match its {frames} frames")
    return arrays


def read_manifest(root: Path) -> dict[str, Any]:
    """The manifest of the dataset folder ``root``, checked to be ours and readable."""
    path = root / MANIFEST
    if root.exists() and not root.is_dir():
        raise UserError(f"{root} is a file, not a dataset folder")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"no {MANIFEST} in {root}: not a perception dataset folder") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {path}: {exc}") from None
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON (line {exc.lineno}): truncated?") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise UserError(f"{path} is not a pilot perception manifest")
    if manifest.get("version") != VERSION:
        raise UserError(
            f"{path} has format version {manifest.get('version')}; this pilot reads {VERSION}"
        )
    for key in ("config", "splits", "shards", "classes", "scenarios"):
        if key not in manifest:
            raise UserError(f"{path} lacks '{key}': truncated or edited by hand?")
    for entry in manifest["shards"] if isinstance(manifest["shards"], list) else [None]:
        if not _entry_ok(entry):
            raise UserError(f"{path} has a malformed shard entry: {str(entry)[:80]}")
    return manifest


_ENTRY = re.compile(r"^shards/[A-Za-z]+-\d{6,}\.npz$")


def _entry_ok(entry: Any) -> bool:
    """A shard entry names a file inside ``shards/`` and has the fields the loader reads."""
    if not isinstance(entry, dict):
        return False
    fields = {"file": str, "split": str, "scenario": str, "seed": int, "frames": int}
    if any(not isinstance(entry.get(k), t) for k, t in fields.items()):
        return False
    return bool(_ENTRY.match(entry["file"])) and isinstance(entry.get("sha256"), str | None)


def write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    """Write the manifest atomically, shards in a fixed order (split, scenario, seed), so
    the same collection gives the same file however many workers made it."""
    order = {name: i for i, name in enumerate(manifest["scenarios"])}
    manifest["shards"].sort(key=lambda e: (e["split"], order[e["scenario"]], e["seed"]))
    text = json.dumps(manifest, indent=1, sort_keys=False) + "\n"
    atomic_write(root / MANIFEST, text.encode())
