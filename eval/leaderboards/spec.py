"""A leaderboard spec: what to compare (entries), where (tracks) and how often (seeds).

```yaml
name: driving-small
seeds: [0, 1, 2]            # or "0-2"; each (entry, track, seed) is one record
episodes: 2                 # episodes per seed (routes, games, maps)
entries:
  - {name: stack, builtin: modular, set: {tracker: stanley}}
  - {name: ppo, checkpoint: runs/pilot-Driving-LaneKeep-v0__ppo__0__20261201-101010}
  - {name: dqn-5k, train: {algo: dqn, steps: 5000}, tracks: [Pong]}
tracks:
  - {name: LaneKeep, env: pilot/Driving-LaneKeep-v0, max_steps: 600}
  - {name: Pong, env: pilot/Atari-Pong-v0, protocol: deepmind}
```

An entry is a run directory or checkpoint (it plays the tracks of its own env), a
built-in agent (``random``, ``modular``: the tracks it can drive), or a training recipe
(trained once per track and seed, into the results folder). ``tracks:`` restricts an
entry to the named tracks. Every key is checked before anything runs; a mistake is a
one-line :class:`UserError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pilot.config import load_yaml
from pilot.errors import UserError, close_matches

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
SPEC_KEYS = ("name", "description", "seeds", "episodes", "max_steps", "entries", "tracks")
ENTRY_KEYS = ("name", "checkpoint", "builtin", "train", "set", "tracks", "acting", "device")
TRAIN_KEYS = ("algo", "steps", "threads", "set")
TRACK_KEYS = ("name", "env", "protocol", "max_steps", "episodes", "set")
ACTING = ("greedy", "sample")


@dataclass(frozen=True)
class Entry:
    """One competitor. Exactly one of ``checkpoint``, ``builtin`` and ``train`` is set."""

    name: str
    checkpoint: str | None = None  # a run directory or checkpoint (file or folder)
    builtin: str | None = None  # a built-in agent's name (pilot list)
    train: tuple[tuple[str, Any], ...] | None = None  # (("algo", "dqn"), ("steps", 5000), ...)
    overrides: tuple[tuple[str, Any], ...] = ()  # a built-in agent's config values
    tracks: tuple[str, ...] | None = None  # only these tracks (None: every track it can play)
    acting: str | None = None  # greedy / sample; None: greedy, Atari ε from its protocol
    device: str = "auto"

    @property
    def kind(self) -> str:
        return "checkpoint" if self.checkpoint else "builtin" if self.builtin else "train"

    @property
    def recipe(self) -> dict[str, Any]:
        """The training recipe as a dict (``algo``, ``steps``, ``threads``, ``set``)."""
        return {k: (dict(v) if k == "set" else v) for k, v in (self.train or ())}


@dataclass(frozen=True)
class Track:
    """One world to play, with its protocol."""

    name: str
    env: str
    protocol: str | None = None  # Atari: deepmind or machado
    max_steps: int | None = None  # cut each episode here (None: the env's time limit)
    episodes: int | None = None  # episodes per seed (None: the spec's)
    env_kwargs: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Spec:
    name: str
    seeds: tuple[int, ...]
    episodes: int
    entries: tuple[Entry, ...]
    tracks: tuple[Track, ...]
    description: str = ""
    source: str = ""  # the file it came from


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UserError(f"{where} must be a mapping of keys to values, got {value!r}")
    return value


def _check_keys(data: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in data:
        if key not in allowed:
            hint = close_matches(str(key), allowed) or f" (keys: {', '.join(allowed)})"
            raise UserError(f"unknown key '{key}' in {where}{hint}")


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise UserError(f"{where} needs a name of letters, digits, '.', '_' or '-', got {value!r}")
    return value


def _count(value: Any, where: str, least: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise UserError(f"{where} must be an integer >= {least}, got {value!r}")
    return value


def parse_seeds(value: Any) -> tuple[int, ...]:
    """``[0, 1, 2]``, ``"0-4"`` or ``"0,2,5"`` as a tuple of distinct seeds >= 0."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if isinstance(value, str):
        parts: list[int] = []
        for piece in value.split(","):
            m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", piece)
            if not m:
                raise UserError(f"seeds: cannot read {value!r}; write 0-4, 0,2,5 or a list")
            lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
            if hi < lo:
                raise UserError(f"seeds: the range {piece.strip()} runs backwards")
            parts.extend(range(lo, hi + 1))
        value = parts
    if not isinstance(value, list) or not value:
        raise UserError(f"seeds must be a non-empty list or range such as 0-4, got {value!r}")
    seeds = tuple(_count(s, "each seed", least=0) for s in value)
    if len(set(seeds)) != len(seeds):
        raise UserError("seeds lists a seed more than once (it would replay the same episodes)")
    return seeds


def _entry(data: Any, i: int) -> Entry:
    data = _mapping(data, f"entries[{i}]")
    _check_keys(data, ENTRY_KEYS, f"entries[{i}]")
    name = _name(data.get("name"), f"entries[{i}]")
    where = f"entry '{name}'"
    given = [k for k in ("checkpoint", "builtin", "train") if data.get(k) is not None]
    if len(given) != 1:
        raise UserError(f"{where} needs exactly one of checkpoint, builtin or train")
    train = None
    if "train" in data:
        recipe = _mapping(data["train"], f"{where} train")
        _check_keys(recipe, TRAIN_KEYS, f"{where} train")
        if "algo" not in recipe:
            raise UserError(f"{where} train needs an algo (see `pilot list`)")
        for key in ("steps", "threads"):
            if key in recipe:
                _count(recipe[key], f"{where} train {key}")
        items = dict(recipe)
        items["set"] = tuple(sorted(_mapping(recipe.get("set") or {}, f"{where} set").items()))
        train = tuple(sorted(items.items()))
    acting = data.get("acting")
    if acting is not None and acting not in ACTING:
        raise UserError(f"{where} acting must be one of {', '.join(ACTING)}, got {acting!r}")
    tracks = data.get("tracks")
    if tracks is not None and (
        not isinstance(tracks, list) or not all(isinstance(t, str) for t in tracks)
    ):
        raise UserError(f"{where} tracks must be a list of track names")
    if data.get("set") and not data.get("builtin"):
        raise UserError(f"{where}: set applies to a built-in agent (train has its own set)")
    return Entry(
        name=name,
        checkpoint=str(data["checkpoint"]) if data.get("checkpoint") is not None else None,
        builtin=data.get("builtin"),
        train=train,
        overrides=tuple(sorted(_mapping(data.get("set") or {}, f"{where} set").items())),
        tracks=tuple(tracks) if tracks is not None else None,
        acting=acting,
        device=str(data.get("device", "auto")),
    )


def _env_kwargs(values: dict[str, Any], folder: Path | None) -> tuple[tuple[str, Any], ...]:
    """The track's env settings; a relative ``*_file`` path is read from the spec's folder
    when the file is there (shipped specs name the maps beside them)."""
    out = {}
    for key, value in values.items():
        if key.endswith("_file") and isinstance(value, str) and folder is not None:
            near = folder / value
            if not Path(value).is_absolute() and near.is_file():
                value = str(near.resolve())
        out[key] = value
    return tuple(sorted(out.items()))


def _track(data: Any, i: int, default_max_steps: int | None, folder: Path | None) -> Track:
    data = _mapping(data, f"tracks[{i}]")
    _check_keys(data, TRACK_KEYS, f"tracks[{i}]")
    name = _name(data.get("name"), f"tracks[{i}]")
    if not isinstance(data.get("env"), str):
        raise UserError(f"track '{name}' needs an env id (see `pilot list`)")
    max_steps = data.get("max_steps", default_max_steps)
    return Track(
        name=name,
        env=data["env"],
        protocol=data.get("protocol"),
        max_steps=None if max_steps is None else _count(max_steps, f"track '{name}' max_steps"),
        episodes=None
        if data.get("episodes") is None
        else _count(data["episodes"], f"track '{name}' episodes"),
        env_kwargs=_env_kwargs(_mapping(data.get("set") or {}, f"track '{name}' set"), folder),
    )


def parse_spec(data: Any, source: str = "") -> Spec:
    """A checked :class:`Spec` from a YAML mapping (names, seeds, counts, keys)."""
    data = _mapping(data, "a leaderboard spec")
    _check_keys(data, SPEC_KEYS, "the spec")
    name = _name(data.get("name") or Path(source).stem or "leaderboard", "the spec")
    default_max = data.get("max_steps")
    if default_max is not None:
        _count(default_max, "max_steps")
    for key in ("entries", "tracks"):
        if not isinstance(data.get(key), list) or not data[key]:
            raise UserError(f"the spec needs a non-empty list of {key}")
    entries = tuple(_entry(e, i) for i, e in enumerate(data["entries"]))
    folder = Path(source).parent if source else None
    tracks = tuple(_track(t, i, default_max, folder) for i, t in enumerate(data["tracks"]))
    for what, items in (("entry", entries), ("track", tracks)):
        names = [x.name for x in items]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise UserError(f"the spec names the {what} '{twice[0]}' more than once")
    track_names = [t.name for t in tracks]
    for e in entries:
        for t in e.tracks or ():
            if t not in track_names:
                raise UserError(
                    f"entry '{e.name}' names an unknown track '{t}'{close_matches(t, track_names)}"
                )
    return Spec(
        name=name,
        seeds=parse_seeds(data.get("seeds", [0])),
        episodes=_count(data.get("episodes", 1), "episodes"),
        entries=entries,
        tracks=tracks,
        description=str(data.get("description") or ""),
        source=source,
    )


def load_spec(path: str | Path) -> Spec:
    """Read and check a spec file; shipped specs can be named without their folder
    (``driving`` is ``eval/leaderboards/driving.yaml``)."""
    path = Path(path)
    if not path.exists() and path.suffix == "" and path.parent == Path("."):
        shipped = Path(__file__).parent / f"{path.name}.yaml"
        if shipped.is_file():
            path = shipped
    if not path.is_file():
        names = sorted(p.stem for p in Path(__file__).parent.glob("*.yaml"))
        raise UserError(f"no such spec file: {path} (shipped specs: {', '.join(names)})")
    return parse_spec(load_yaml(path, empty_ok=False), source=str(path))
