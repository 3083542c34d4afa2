"""Typed configs: frozen dataclasses built from YAML/dicts with strict key and type checks.

Every config is a frozen dataclass whose fields carry a docstring-like ``help`` in their
metadata. Unknown keys are an error naming the close matches, and values are checked
against the annotated type, so a typo in a YAML preset never silently does nothing.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import yaml

from pilot.errors import UserError, close_matches

C = TypeVar("C")
_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def field(default: Any, help: str) -> Any:  # noqa: A002 - mirrors argparse naming
    """A dataclass field with its documentation attached (shown by ``pilot train --help-config``)."""
    if isinstance(default, list | dict):
        raise TypeError("use tuples for sequence defaults so configs stay immutable")
    return dataclasses.field(default=default, metadata={"help": help})


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    origin = get_origin(annotation)
    if origin is Literal:
        allowed = get_args(annotation)
        if value not in allowed:
            raise UserError(f"config key '{key}' must be one of {list(allowed)}, got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = get_args(annotation)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except UserError as exc:
                errors.append(str(exc))
        raise UserError(errors[0] if errors else f"config key '{key}' has a bad value {value!r}")
    if origin is tuple:
        args = get_args(annotation)
        if not isinstance(value, list | tuple):
            raise UserError(f"config key '{key}' must be a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], key) for v in value)
        if len(args) != len(value):
            raise UserError(f"config key '{key}' must have {len(args)} items, got {len(value)}")
        return tuple(_coerce(v, a, key) for v, a in zip(value, args, strict=True))
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise UserError(f"config key '{key}' must be true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
            raise UserError(f"config key '{key}' must be an integer, got {value!r}")
        return int(value)
    if annotation is float:
        if isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
            value = float(value)  # YAML 1.1 reads "3e-4" as a string
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise UserError(f"config key '{key}' must be a number, got {value!r}")
        if not math.isfinite(value):  # .nan, .inf or 1e999: a run that can only diverge
            raise UserError(f"config key '{key}' must be a finite number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise UserError(f"config key '{key}' must be a string, got {value!r}")
        return value
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise UserError(f"config key '{key}' must be a mapping, got {value!r}")
        return from_dict(annotation, value, prefix=f"{key}.")
    if annotation is dict or origin is dict:
        if not isinstance(value, dict):
            raise UserError(f"config key '{key}' must be a mapping, got {value!r}")
        return dict(value)
    return value


def from_dict(cls: type[C], data: dict[str, Any], prefix: str = "") -> C:
    """Build config ``cls`` from ``data``; unknown keys and wrong types raise :class:`UserError`."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    kwargs = {}
    for key, value in data.items():
        if not isinstance(key, str):
            raise UserError(f"config key {prefix}{key!r} is not a name (keys are words)")
        if key not in names:
            raise UserError(
                f"unknown config key '{prefix}{key}' for {cls.__name__}{close_matches(key, names)}"
            )
        kwargs[key] = _coerce(value, hints[key], prefix + key)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise UserError(f"bad {cls.__name__}: {exc}") from None


def to_dict(config: Any) -> dict[str, Any]:
    """Plain (YAML/JSON-safe) dict of a config; tuples become lists."""

    def plain(v: Any) -> Any:
        if isinstance(v, tuple | list):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return {k: plain(v) for k, v in dataclasses.asdict(config).items()}


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``['lr=3e-4', 'net.hidden=[64,64]']`` → nested dict, values parsed as YAML scalars."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise UserError(f"--set expects key=value, got '{pair}'")
        key, raw = pair.split("=", 1)
        if not all(part.strip() for part in key.split(".")):
            raise UserError(f"--set expects key=value with a key name, got '{pair}'")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        if isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
            value = float(value)  # YAML 1.1 reads "3e-4" as a string
        node = out
        parts = key.strip().split(".")
        for i, part in enumerate(parts[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UserError(
                    f"--set {pair}: '{'.'.join(parts[: i + 1])}' was set to a value, not a mapping"
                )
        node[parts[-1]] = value
    return out


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key given twice in one mapping is an error:
    PyYAML keeps the last one silently (a leaderboard spec with two ``tracks:`` lists would
    play only the second)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` may repeat keys
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    line = first.get(key)
                except TypeError:  # an unhashable key: PyYAML's own error follows
                    continue
                if line is not None:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key!r} given twice (first on line {line})",
                        key_node.start_mark,
                    )  # fmt: skip
                first[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


def load_yaml(path: str | Path, empty_ok: bool = True) -> dict[str, Any]:
    """Read a YAML mapping, with a clear error for a missing, binary or malformed file
    (a key given twice in one mapping included) and, unless ``empty_ok``, for one that
    holds nothing."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"config file {path} is a directory, not a YAML file")
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)
    except UnicodeDecodeError:
        raise UserError(f"config file {path} is not UTF-8 text (a binary file?)") from None
    except OSError as exc:
        raise UserError(f"cannot read config file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise UserError(
            f"malformed YAML in {path}{where}: {getattr(exc, 'problem', exc)}"
        ) from None
    if data is None:
        if not empty_ok:
            raise UserError(f"config file {path} is empty: it holds no key: value pairs")
        return {}
    if not isinstance(data, dict):
        raise UserError(f"config file {path} must hold a mapping of key: value")
    return data


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; ``override`` wins."""
    out = dict(base)
    for k, v in override.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def describe(cls: type, prefix: str = "") -> list[tuple[str, str, Any, str]]:
    """(name, type, default, help) per field, for ``--help-config`` and the README.

    A nested config is listed field by field under dotted names (``search.discount``),
    as ``--set`` spells them.
    """
    hints = typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        t = hints[f.name]
        if dataclasses.is_dataclass(t):
            rows.extend(describe(t, prefix=f"{prefix}{f.name}."))
            continue
        tname = getattr(t, "__name__", None) or str(t).replace("typing.", "")
        rows.append((prefix + f.name, tname, f.default, f.metadata.get("help", "")))
    return rows
