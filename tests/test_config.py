import dataclasses
from typing import Literal

import pytest

from pilot.config import (
    describe,
    field,
    from_dict,
    load_yaml,
    merge,
    parse_overrides,
    to_dict,
)
from pilot.errors import UserError


@dataclasses.dataclass(frozen=True)
class Toy:
    lr: float = field(3e-4, "learning rate")
    n_steps: int = field(128, "rollout length")
    hidden: tuple[int, ...] = field((64, 64), "layer sizes")
    anneal: bool = field(True, "anneal lr")
    kind: Literal["a", "b"] = field("a", "variant")
    target: float | None = field(None, "optional")


def test_unknown_key_names_close_match():
    with pytest.raises(UserError, match=r"unknown config key 'n_step'.*did you mean: n_steps"):
        from_dict(Toy, {"n_step": 3})


@pytest.mark.parametrize(
    "values, message",
    [
        ({"n_steps": 1.5}, "must be an integer"),
        ({"n_steps": True}, "must be an integer"),
        ({"lr": "fast"}, "must be a number"),
        ({"anneal": "yes"}, "true or false"),
        ({"kind": "c"}, "must be one of"),
        ({"hidden": 64}, "must be a list"),
        ({"lr": float("nan")}, "must be a finite number"),
        ({"lr": float("-inf")}, "must be a finite number"),
        ({"lr": "1e999"}, "must be a finite number"),
        ({"target": float("inf")}, "must be a finite number"),
        ({3: 1}, "is not a name"),
    ],
)
def test_wrong_types_are_user_errors(values, message):
    with pytest.raises(UserError, match=message):
        from_dict(Toy, values)


def test_coercion_and_roundtrip():
    assert from_dict(Toy, {"lr": "3e-4"}).lr == 3e-4  # YAML 1.1 leaves this a string
    cfg = from_dict(Toy, {"lr": 1, "hidden": [32, 16], "target": 0.5})
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float)
    assert cfg.hidden == (32, 16)
    assert from_dict(Toy, to_dict(cfg)) == cfg
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr = 2.0  # type: ignore[misc]


def test_overrides_parse_yaml_scalars_and_nesting():
    assert parse_overrides(
        ["lr=3e-4", "hidden=[8, 8]", "env.protocol=machado", "anneal=false"]
    ) == {
        "lr": 3e-4,
        "hidden": [8, 8],
        "env": {"protocol": "machado"},
        "anneal": False,
    }
    with pytest.raises(UserError, match="key=value"):
        parse_overrides(["lr"])
    assert merge({"env": {"a": 1, "b": 2}}, {"env": {"b": 3}}) == {"env": {"a": 1, "b": 3}}


def test_yaml_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("lr: 3\n  n_steps: [1, 2\n")
    with pytest.raises(UserError, match="malformed YAML .* line"):
        load_yaml(bad)
    twice = tmp_path / "twice.yaml"  # PyYAML alone keeps the second silently
    twice.write_text("name: a\ntracks: [x]\nseeds: 0-2\ntracks: [y]\n")
    with pytest.raises(UserError, match="line 4: key 'tracks' given twice .first on line 2"):
        load_yaml(twice)
    nested = tmp_path / "nested.yaml"
    nested.write_text("env:\n  id: a\n  id: b\nother:\n  id: c\n")
    with pytest.raises(UserError, match="line 3: key 'id' given twice"):
        load_yaml(nested)
    merged = tmp_path / "merged.yaml"  # a merge key may repeat what it merges
    merged.write_text("base: &b {lr: 1, n: 2}\nrun:\n  <<: *b\n  lr: 3\n")
    assert load_yaml(merged)["run"] == {"lr": 3, "n": 2}
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(UserError, match="mapping"):
        load_yaml(listy)


def test_config_files_that_are_not_yaml_text(tmp_path):
    binary = tmp_path / "weights.yaml"
    binary.write_bytes(b"PK\x03\x04\x00\xff\xfe\x80")
    with pytest.raises(UserError, match="not UTF-8 text"):
        load_yaml(binary)
    with pytest.raises(UserError, match="is a directory"):
        load_yaml(tmp_path)
    empty = tmp_path / "empty.yaml"
    empty.write_text("# only a comment\n")
    assert load_yaml(empty) == {}  # presets may be empty
    with pytest.raises(UserError, match="is empty"):
        load_yaml(empty, empty_ok=False)


def test_overrides_that_contradict_each_other_or_lack_a_key():
    with pytest.raises(UserError, match="'lr' was set to a value, not a mapping"):
        parse_overrides(["lr=1", "lr.x=2"])
    with pytest.raises(UserError, match="with a key name"):
        parse_overrides(["net..x=1"])


@dataclasses.dataclass(frozen=True)
class Outer:
    toy: Toy = field(Toy(), "nested")
    seed: int = field(0, "seed")


def test_describe_lists_nested_fields_as_set_spells_them():
    names = [row[0] for row in describe(Outer)]
    assert names[:2] == ["toy.lr", "toy.n_steps"] and names[-1] == "seed"
    assert from_dict(Outer, parse_overrides(["toy.lr=0.5"])).toy.lr == 0.5
