import dataclasses
from typing import Literal

import pytest

from pilot.config import field, from_dict, load_yaml, merge, parse_overrides, to_dict
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
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(UserError, match="mapping"):
        load_yaml(listy)
