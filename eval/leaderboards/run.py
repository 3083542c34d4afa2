"""Play a spec's grid: one record per (entry, track, seed), written once, atomically.

The grid is planned in the calling process (every check, no torch): each cell's record is
*done* when it exists and its fingerprint (the spec's words for that cell plus the
checkpoint's SHA-256) matches; a record whose checkpoint changed, whose cell the spec now
words differently, or that cannot be read is moved aside to ``records/.superseded/`` and
played again, so old and new results never mix and nothing saved is lost. A cell runs in
:func:`run_job`, which writes its own record: a grid killed at any point loses only the
cells in flight, and the next run plays exactly those.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pilot.errors import UserError
from pilot.files import atomic_write

from .spec import Entry, Spec, Track

SCHEMA = "pilot.leaderboard/1"
#: how episodes start: each from its own seed, the same for every entry (evaluate.episode_seed)
EPISODE_RESETS = "reset(seed=SeedSequence([seed, episode]))"
RECORDS = "records"


@dataclass(frozen=True)
class Job:
    """One cell of the grid, with everything a worker needs (picklable)."""

    entry: Entry
    track: Track
    seed: int
    episodes: int
    results: str  # the results folder
    checkpoint_sha256: str | None = None  # checkpoint entries: the file as planned

    @property
    def label(self) -> str:
        return f"{self.entry.name} / {self.track.name} / seed {self.seed}"

    @property
    def path(self) -> Path:
        return record_path(self.results, self.entry.name, self.track.name, self.seed)

    def fingerprint(self) -> str:
        words = {
            "schema": SCHEMA,
            "entry": {k: v for k, v in asdict(self.entry).items() if k != "device"},
            "track": asdict(self.track),
            "seed": self.seed,
            "episodes": self.episodes,
            "checkpoint_sha256": self.checkpoint_sha256,
            "episodes_reset": EPISODE_RESETS,
        }
        text = json.dumps(words, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()


def record_path(results: str | Path, entry: str, track: str, seed: int) -> Path:
    return Path(results) / RECORDS / entry / track / f"seed-{seed}.json"


def file_sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


# ------------------------------------------------------------------------------ planning
@dataclass
class Plan:
    """The grid's cells and their state before anything runs."""

    todo: list[Job]
    done: list[Job]
    redo: list[tuple[Job, str]]  # (job, why its record is played again)
    not_played: list[tuple[str, str, str]]  # (entry, track, why)

    @property
    def total(self) -> int:
        return len(self.todo) + len(self.done)


def _plays(entry: Entry, track: Track) -> str | None:
    """Why ``entry`` cannot play ``track`` (None: it can). Torch-free."""
    from pilot.playing import read_target

    if entry.checkpoint is not None:
        env_id = read_target(entry.checkpoint)["env_id"]
        return None if env_id == track.env else f"its checkpoint plays {env_id}"
    if entry.builtin is not None:
        meta = read_target(entry.builtin, track.env, [f"{k}={v}" for k, v in entry.overrides])
        cls, config = meta["_builtin"]
        try:
            cls(track.env, config)
        except UserError as exc:
            return str(exc)
        return None
    check_recipe(entry, track)
    return None


def train_overrides(entry: Entry, track: Track) -> list[str]:
    """The ``KEY=VALUE`` settings a training entry trains with on ``track``: its recipe's,
    then the track's env settings (trained in the world it is scored in)."""
    sets = [f"{k}={v}" for k, v in entry.recipe.get("set", {}).items()]
    return sets + [f"env.{k}={v}" for k, v in track.env_kwargs]


def check_recipe(entry: Entry, track: Track) -> None:
    """Build a training entry's config and world for ``track`` as `pilot train` will, before
    anything trains: an unknown algorithm, key or env setting is the spec's one-line
    error, not a cell that fails an hour into the grid."""
    from pilot.agents import algorithm_name, build_config
    from pilot.config import parse_overrides
    from pilot.envs import make_env

    algo = algorithm_name(entry.recipe["algo"])
    try:
        config = build_config(algo, track.env, None, parse_overrides(train_overrides(entry, track)))
        make_env(track.env, **getattr(config, "env", {})).close()
    except UserError as exc:
        raise UserError(f"entry '{entry.name}' on track '{track.name}': {exc}") from None


def _check_tracks(spec: Spec) -> None:
    from pilot.envs import check_id, is_atari

    for t in spec.tracks:
        check_id(t.env)
        if t.protocol is not None:
            if not is_atari(t.env):
                raise UserError(f"track '{t.name}': protocol applies to Atari envs, not {t.env}")
            if t.protocol not in ("deepmind", "machado"):
                raise UserError(
                    f"track '{t.name}': protocol must be deepmind or machado, got {t.protocol!r}"
                )


def plan_grid(spec: Spec, results: str | Path) -> Plan:
    """Check every cell and sort it into to do / done; raises UserError on a bad spec."""
    from pilot.agents import BUILTIN
    from pilot.agents.common import checkpoint

    _check_tracks(spec)
    for e in spec.entries:
        if e.builtin is not None and e.builtin not in BUILTIN:
            raise UserError(f"entry '{e.name}': unknown built-in agent '{e.builtin}'")
    plan = Plan([], [], [], [])
    for entry in spec.entries:
        sha = None
        if entry.checkpoint:  # whole and unchanged since saved, before anything plays
            pt, _ = checkpoint.verify(entry.checkpoint)
            sha = file_sha256(pt)
        for track in spec.tracks:
            if entry.tracks is not None and track.name not in entry.tracks:
                continue
            why = _plays(entry, track)
            if why is not None:
                if entry.tracks is not None:
                    raise UserError(f"entry '{entry.name}' cannot play track '{track.name}': {why}")
                plan.not_played.append((entry.name, track.name, why))
                continue
            for seed in spec.seeds:
                job = Job(entry, track, seed, track.episodes or spec.episodes, str(results), sha)
                state = _record_state(job)
                if state is None:
                    plan.done.append(job)
                    continue
                plan.todo.append(job)
                if state != "new":
                    plan.redo.append((job, state))
    return plan


def _record_state(job: Job) -> str | None:
    """None when the job's record is done and valid, else why it must be played."""
    if not job.path.exists():
        return "new"
    try:
        record = json.loads(job.path.read_text())
        if not isinstance(record, dict) or record.get("schema") != SCHEMA:
            return "its record is not a leaderboard record"
    except (OSError, ValueError):
        return "its record cannot be read"
    if record.get("fingerprint") == job.fingerprint():
        return None
    old = (record.get("provenance") or {}).get("checkpoint_sha256")
    if job.checkpoint_sha256 is not None and old != job.checkpoint_sha256:
        return "its checkpoint changed since it was played"
    return "the spec words it differently now"


def supersede(job: Job) -> Path | None:
    """Move the job's old record aside (kept, never mixed with new results)."""
    if not job.path.exists():
        return None
    rel = job.path.relative_to(Path(job.results) / RECORDS)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    dest = Path(job.results) / RECORDS / ".superseded" / rel.with_name(f"{rel.stem}-{stamp}.json")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(job.path), dest)
    return dest


# ------------------------------------------------------------------------------ playing
def run_job(job: Job, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Play one cell and write its record; returns ``{"label", "mean_return", "wall_s"}``,
    or ``{"label", "busy": True}`` when another process is playing the cell now. A cell
    that another process finished since the grid was planned is not played again."""
    with _cell_lock(job) as held:
        if not held:
            return {"label": job.label, "busy": True}
        if _record_state(job) is None:
            return _summary(job, json.loads(job.path.read_text()))
        start = time.perf_counter()
        target = job.entry.checkpoint or job.entry.builtin
        if job.entry.train is not None:
            from .trained import trained_run

            target = str(trained_run(job, progress))
        record = _play(job, target, progress)
        record["provenance"]["wall_s"] = round(time.perf_counter() - start, 2)
        job.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(job.path, json.dumps(record, indent=1).encode())
        return _summary(job, record)


def _summary(job: Job, record: dict[str, Any]) -> dict[str, Any]:
    rets = [e["ret"] for e in record["episodes"]]
    return {
        "label": job.label,
        "mean_return": sum(rets) / len(rets),
        "wall_s": record["provenance"]["wall_s"],
    }


@contextlib.contextmanager
def _cell_lock(job: Job) -> Iterator[bool]:
    """Whether this process holds the cell: an exclusive, non-blocking ``flock`` on
    ``RESULTS/locks/<entry>/<track>/seed-<n>.lock``, so two runs on one results folder never
    play one cell at once. The kernel drops the lock with its process, even a killed one."""
    import fcntl

    path = Path(job.results) / "locks" / job.entry.name / job.track.name / f"seed-{job.seed}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _play(job: Job, target: str, progress: Callable[[str], None] | None) -> dict[str, Any]:
    from pilot.agents.common.checkpoint import versions
    from pilot.envs import is_atari, make_env
    from pilot.eval.evaluate import run_episodes
    from pilot.playing import load_for_playing, play_env, policy, read_target, training_step
    from pilot.runs import git_commit, run_of_checkpoint

    entry, track = job.entry, job.track
    overrides = [f"{k}={v}" for k, v in entry.overrides]
    if entry.builtin is not None and "seed" in _fields(entry.builtin, track.env):
        overrides = [f"seed={job.seed}"] + overrides  # the spec's own value wins
    meta = read_target(
        target, track.env if entry.builtin else None, overrides if entry.builtin else None
    )
    env_kwargs, protocol, mapping = play_env(meta, track.protocol)
    env_kwargs.update(dict(track.env_kwargs))
    agent, loaded = load_for_playing(target, entry.device, meta)
    table = None
    if mapping != "none":
        probe = make_env(track.env, **env_kwargs)
        table = probe.unwrapped.minimal_action_indices
        probe.close()
    acting = _acting(entry, track.env, protocol)

    def moved(done: int, steps: int) -> None:
        if progress is not None:
            progress(f"{job.label}: {steps:,} steps")

    results = run_episodes(
        policy(agent, acting.sample, table),
        track.env,
        [job.seed],
        job.episodes,
        env_kwargs,
        track.max_steps,
        progress=moved,
        epsilon=acting.epsilon,
        fixed_episodes=True,
    )
    pt = Path(str(loaded.path))
    run = run_of_checkpoint(pt) if pt.is_file() else None
    return {
        "schema": SCHEMA,
        "fingerprint": job.fingerprint(),
        "entry": entry.name,
        "track": track.name,
        "seed": job.seed,
        "env_id": track.env,
        "kind": _kind(track.env),
        "game": track.env.removeprefix("pilot/Atari-").removesuffix("-v0")
        if is_atari(track.env)
        else None,
        "protocol": protocol,
        "episodes": [_episode(r) for r in results],
        "provenance": {
            "entry_kind": entry.kind,
            "algo": meta["algo"],
            "checkpoint": str(pt) if pt.is_file() else None,
            "checkpoint_sha256": file_sha256(pt) if pt.is_file() else None,
            "checkpoint_step": training_step(meta),
            "run_dir": str(run.path) if run is not None else None,
            "config": _jsonable(_config_of(meta)),
            "env_kwargs": _jsonable(env_kwargs),
            "git_commit": git_commit(),
            "versions": versions(),
            "protocol": protocol,
            "acting": acting.describe(),
            "seeds": [job.seed],
            "episode_resets": EPISODE_RESETS,
            "episodes": job.episodes,
            "max_steps": track.max_steps,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
    }


def _config_of(meta: dict[str, Any]) -> Any:
    """The config the agent played with: a checkpoint's, or a built-in's (a dataclass or a
    plain mapping)."""
    if "_builtin" not in meta:
        return meta.get("config")
    config = meta["_builtin"][1]
    return dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)


def _fields(builtin: str, env_id: str) -> set[str]:
    from pilot.agents import get_builtin

    config = get_builtin(builtin).configure(env_id, {})
    return (
        {f.name for f in dataclasses.fields(config)}
        if dataclasses.is_dataclass(config)
        else set(config)
    )


def _acting(entry: Entry, env_id: str, protocol: str | None):
    from pilot.playing import Acting

    if entry.acting == "sample":
        return Acting(sample=True, epsilon=0.0)
    if entry.acting is None and protocol is not None:
        from pilot.envs.atari.env import EVAL_EPSILON

        return Acting(sample=False, epsilon=EVAL_EPSILON[protocol], source=f"{protocol} protocol")
    return Acting(sample=False, epsilon=0.0)


def _kind(env_id: str) -> str:
    for prefix, kind in (
        ("pilot/Atari-", "atari"),
        ("pilot/Driving-", "driving"),
        ("pilot/Nav-", "navigation"),
    ):
        if env_id.startswith(prefix):
            return kind
    return "control"


def _episode(r: Any) -> dict[str, Any]:
    d = asdict(r)
    return _jsonable(d)


def _jsonable(value: Any) -> Any:
    """``value`` with tuples as lists, non-finite floats as None (JSON has no NaN)."""
    import math

    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _jsonable(value.item())
    return value


# ------------------------------------------------------------------------------ reading
def load_records(results: str | Path) -> list[dict[str, Any]]:
    """Every record under ``results`` (not the superseded ones); one that is not a
    leaderboard record is a UserError naming it."""
    root = Path(results) / RECORDS
    if not root.is_dir():
        raise UserError(f"{results} holds no leaderboard records (no {RECORDS}/ folder)")
    records = []
    for path in sorted(root.glob("*/*/seed-*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise UserError(f"{path} is not a readable record: {exc}") from None
        if not isinstance(record, dict) or record.get("schema") != SCHEMA:
            raise UserError(f"{path} is not a leaderboard record (schema {SCHEMA})")
        missing = [
            k for k in ("entry", "track", "seed", "env_id", "kind", "episodes") if k not in record
        ]
        if missing or not record["episodes"]:
            raise UserError(
                f"{path} is not a complete record (missing {', '.join(missing) or 'episodes'})"
            )
        records.append(record)
    if not records:
        raise UserError(f"{results} holds no leaderboard records yet")
    return records
