"""The leaderboard report's files: Markdown, CSV, JSON and the self-contained HTML page."""

from __future__ import annotations

import csv
import json
import re

import pytest

from pilot.errors import UserError
from pilot.eval.leaderboards.html import fmt_ci, fmt_number, render_html
from pilot.eval.leaderboards.report import load_model, write_report

SHA_A = "a3f1c2d4e5b6978812345678deadbeefcafef00d0123456789abcdef01234567"
SHA_B = "0b9e8d7c6b5a49382716afedcba9876543210fedcba9876543210fedcba98765"


def _prov(algo: str, sha: str, wall: float) -> dict:
    return {
        "entry_kind": "checkpoint",
        "algo": algo,
        "checkpoint": f"runs/{algo}/checkpoints/last.pt",
        "checkpoint_sha256": sha,
        "git_commit": "89da7120f00dfeedbeef0123456789abcdef0123",
        "versions": {"pilot": "0.1.0", "torch": "2.13.0", "gymnasium": "1.1.1"},
        "protocol": "carla-2.0",
        "seeds": [0, 1, 2],
        "episodes": 10,
        "acting": "cpu",
        "wall_s": wall,
        "created": "2025-11-26T09:00:00+00:00",
    }


def ci(value: float | None, low: float | None, high: float | None) -> dict:
    return {"value": value, "low": low, "high": high}


def sample_model() -> dict:
    """Two entries over Atari, driving and control: every table and plot kind once."""
    atari_games = {
        "id": "atari-games",
        "title": "Per game (human-normalised score)",
        "columns": [
            {"key": "entry", "label": "Entry", "kind": "text"},
            {"key": "game", "label": "Game", "kind": "text"},
            {"key": "episodes", "label": "Episodes", "kind": "int"},
            {"key": "hns", "label": "HNS", "kind": "ci"},
            {"key": "score", "label": "Score", "kind": "number"},
        ],
        "rows": [
            {
                "entry": "dqn",
                "game": "Pong",
                "episodes": 30,
                "hns": ci(0.8713, 0.80, 0.93),
                "score": 5.44,
            },
            {
                "entry": "ppo",
                "game": "Pong",
                "episodes": 28,
                "hns": ci(1.0231, 0.99, 1.05),
                "score": 10.0,
            },
            {
                "entry": "dqn",
                "game": "Breakout",
                "episodes": 31,
                "hns": ci(12.345, 10.1, 14.02),
                "score": 373.2,
            },
            {
                "entry": "ppo",
                "game": "Breakout",
                "episodes": 25,
                "hns": ci(-0.02, -0.05, None),
                "score": None,
            },
        ],
    }
    atari_plots = [
        {
            "id": "atari-aggregates",
            "title": "Aggregate HNS with 95% CIs",
            "kind": "bars_ci",
            "x_label": "",
            "y_label": "human-normalised score",
            "categories": ["Median", "IQM", "Mean", "Optimality gap"],
            "series": [
                {
                    "name": "dqn",
                    "x": [0, 1, 2, 3],
                    "y": [0.9, 1.1, 6.6, 0.2],
                    "low": [0.7, 0.9, 5.0, 0.1],
                    "high": [1.2, 1.4, 8.0, 0.3],
                },
                {
                    "name": "ppo",
                    "x": [0, 1, 2, 3],
                    "y": [0.5, 0.6, 0.5, 0.5],
                    "low": [0.4, 0.5, 0.4, 0.4],
                    "high": [0.6, 0.7, 0.6, 0.6],
                },
            ],
        },
        {
            "id": "atari-profile",
            "title": "Performance profile",
            "kind": "profile",
            "x_label": "human-normalised score τ",
            "y_label": "fraction of runs with score > τ",
            "categories": [],
            "series": [
                {
                    "name": name,
                    "x": [0, 0.25, 0.5, 1.0, 1.5, 2.0],
                    "y": ys,
                    "low": [max(0, y - 0.1) for y in ys],
                    "high": [min(1, y + 0.1) for y in ys],
                }
                for name, ys in (
                    ("dqn", [1, 0.9, 0.8, 0.5, 0.4, 0.3]),
                    ("ppo", [1, 0.7, 0.6, 0.3, 0.1, 0.0]),
                )
            ],
        },
    ]
    driving_table = {
        "id": "driving-entries",
        "title": "Driving Score per entry",
        "columns": [
            {"key": "entry", "label": "Entry", "kind": "text"},
            {"key": "routes", "label": "Routes", "kind": "int"},
            {"key": "ds", "label": "Driving Score", "kind": "ci"},
            {"key": "rc", "label": "Route Completion (%)", "kind": "ci"},
            {"key": "ipk", "label": "Infractions / km", "kind": "number"},
        ],
        "rows": [
            {
                "entry": "modular-stack",
                "routes": 12,
                "ds": ci(61.234, 55.0, 67.9),
                "rc": ci(88.0, 84.2, 91.5),
                "ipk": 0.4123,
                "_provenance": _prov("stack", SHA_A, 431.5),
            },
            {
                "entry": "ppo-camera",
                "routes": 12,
                "ds": ci(23.4, 18.15, 29.0),
                "rc": ci(47.5, 40.0, 55.1),
                "ipk": 2.75,
                "_provenance": _prov("ppo", SHA_B, 7388.0),
            },
        ],
    }
    infractions = {
        "id": "driving-infractions",
        "title": "Infractions per km by type",
        "kind": "grouped_bars",
        "x_label": "infraction",
        "y_label": "per km",
        "categories": [
            "vehicle collision",
            "static collision",
            "red light",
            "outside lanes",
            "route deviation",
        ],
        "series": [
            {
                "name": "modular-stack",
                "x": [0, 1, 2, 3, 4],
                "y": [0.1, 0.05, 0.2, 0.06, 0.0],
                "low": None,
                "high": None,
            },
            {
                "name": "ppo-camera",
                "x": [0, 1, 2, 3, 4],
                "y": [0.9, 0.7, 0.3, 0.6, 0.25],
                "low": None,
                "high": None,
            },
        ],
    }
    steps = [0, 50_000, 100_000, 200_000, 400_000, 800_000, 1_000_000]
    curves = {
        "id": "control-curves",
        "title": "Learning curves (CartPole-v1)",
        "kind": "curves",
        "x_label": "env steps",
        "y_label": "return",
        "categories": [],
        "series": [
            {
                "name": "dqn",
                "x": steps,
                "y": [20, 60, 140, 300, 480, 500, 500],
                "low": [15, 40, 100, 250, 450, 490, 495],
                "high": [25, 80, 180, 350, 500, 500, 500],
            },
            {
                "name": "ppo",
                "x": steps,
                "y": [22, 90, 250, 420, 500, 500, 500],
                "low": None,
                "high": None,
            },
        ],
    }
    return {
        "title": "pilot leaderboard — sample",
        "created": "2025-11-26T09:30:00+00:00",
        "meta": {
            "spec": "leaderboards/sample.yaml",
            "git_commit": "89da7120f00dfeedbeef0123456789abcdef0123",
            "versions": {"pilot": "0.1.0", "torch": "2.13.0"},
        },
        "sections": [
            {
                "id": "atari",
                "title": "Atari",
                "notes": ["Machado et al. 2018 protocol, 3 seeds."],
                "tables": [atari_games],
                "plots": atari_plots,
            },
            {
                "id": "driving",
                "title": "Driving",
                "notes": [
                    "Driving Score = RC × Π penalties (CARLA Leaderboard 2.0 coefficients).",
                    "<script>alert('not markup')</script> & friends",
                ],
                "tables": [driving_table],
                "plots": [infractions],
            },
            {"id": "control", "title": "Control", "notes": [], "tables": [], "plots": [curves]},
        ],
    }


def _all_plots(model: dict) -> list[dict]:
    return [p for s in model["sections"] for p in s["plots"]]


@pytest.fixture
def written(tmp_path):
    model = sample_model()
    return model, write_report(model, tmp_path / "report")


def test_number_formatting():
    assert fmt_number(12.345) == "12.3"
    assert fmt_number(0.4123) == "0.412"
    assert fmt_number(373.2) == "373"
    assert fmt_number(None) == "—"
    assert fmt_ci(ci(12.345, 10.1, 14.02)) == ("12.3", "[10.1, 14.0]")
    assert fmt_ci(ci(0.8713, 0.80, 0.93)) == ("0.871", "[0.800, 0.930]")
    assert fmt_ci(ci(5.0, None, None)) == ("5.00", "")


def test_writes_every_file_atomically_named(written):
    model, paths = written
    names = {"report.md", "report.json", "report.html", "atari-games.csv", "driving-entries.csv"}
    assert set(paths) == names
    out = paths["report.md"].parent
    assert sorted(p.name for p in out.iterdir()) == sorted(names)  # no temporary files left


def test_markdown_rows_and_ci_cells(written):
    _, paths = written
    md = paths["report.md"].read_text()
    assert md.startswith("# pilot leaderboard — sample\n")
    assert "## Atari" in md and "## Driving" in md and "## Control" in md
    assert "| Entry | Game | Episodes | HNS | Score |" in md
    assert "|---|---|---:|---:|---:|" in md
    assert "| dqn | Breakout | 31 | 12.3 [10.1, 14.0] | 373 |" in md
    assert "| ppo | Breakout | 25 | -0.0200 [-0.0500, —] | — |" in md
    assert "&lt;script>alert('not markup')&lt;/script> &amp; friends" in md
    assert "\n\n\n" not in md
    assert "| modular-stack | 12 | 61.2 [55.0, 67.9] | 88.0 [84.2, 91.5] | 0.412 |" in md
    # provenance under the driving table: short SHA, seeds, commit, wall time
    line = next(x for x in md.splitlines() if x.startswith("- ppo-camera:"))
    assert SHA_B[:12] in line and SHA_B not in line
    assert "seeds 0, 1, 2" in line and "git commit 89da7120f0" in line and "2.1 h" in line


def test_csv_columns_and_rows(written):
    model, paths = written
    with paths["atari-games.csv"].open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["entry", "game", "episodes", "hns", "hns_low", "hns_high", "score"]
    assert len(rows) == 1 + 4
    assert rows[3] == ["dqn", "Breakout", "31", "12.345", "10.1", "14.02", "373.2"]
    assert rows[4] == ["ppo", "Breakout", "25", "-0.02", "-0.05", "", ""]
    with paths["driving-entries.csv"].open(newline="") as f:
        drows = list(csv.DictReader(f))
    assert [r["entry"] for r in drows] == ["modular-stack", "ppo-camera"]
    assert float(drows[1]["ds_low"]) == 18.15
    prov = json.loads(drows[0]["provenance"])
    assert prov["checkpoint_sha256"] == SHA_A and prov["seeds"] == [0, 1, 2]


def test_json_round_trips(written):
    model, paths = written
    assert load_model(paths["report.json"]) == model


def test_nan_is_refused_before_anything_is_written(tmp_path):
    model = sample_model()
    model["sections"][0]["tables"][0]["rows"][0]["score"] = float("nan")
    with pytest.raises(ValueError):
        write_report(model, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_html_is_self_contained_with_one_svg_per_plot(written):
    model, paths = written
    page = paths["report.html"].read_text()
    assert "http://" not in page and "https://" not in page
    for attr in re.findall(r'(?:src|href)\s*=\s*["\']?([^"\'\s>]*)', page, flags=re.I):
        assert attr.startswith(("#", "data:")), attr
    assert '<link rel="stylesheet"' not in page and "@import" not in page
    assert page.count("<svg") == len(_all_plots(model)) == 4
    assert "<?xml" not in page and "<!DOCTYPE svg" not in page
    for plot in _all_plots(model):
        block = re.search(
            rf'<figure[^>]*data-plot-id="{plot["id"]}"[^>]*>(.*?)</figure>', page, re.S
        )
        assert block and block.group(1).count("<svg") == 1
    for table_id in ("atari-games", "driving-entries"):
        assert f'data-table-id="{table_id}"' in page
    ids = re.findall(r'(?<![\w-])id="([^"]+)"', page)
    assert len(ids) == len(set(ids))  # the SVGs' ids are namespaced per plot


def test_html_escapes_model_text(written):
    _, paths = written
    page = paths["report.html"].read_text()
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#x27;not markup&#x27;)&lt;/script&gt; &amp; friends" in page
    assert page.count("<script>") == 1  # the page's own sorting script only


def test_html_shows_meta_and_provenance(written):
    _, paths = written
    page = paths["report.html"].read_text()
    assert "leaderboards/sample.yaml" in page and "torch 2.13.0" in page
    assert page.count('class="prov" hidden') == 2
    assert SHA_A[:12] in page and SHA_A not in page
    assert '<a href="#sec-driving">Driving</a>' in page


def test_url_in_model_text_is_not_a_link():
    model = sample_model()
    model["sections"][0]["notes"].append("scores from https://example.org/table")
    page = render_html(model)
    assert "scores from https://example.org/table" in page
    assert not re.search(r'(?:src|href)\s*=\s*["\']?https?:', page)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\x89PNG\r\n", "cannot read"),
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"title": "x", "created": "t", "meta": {}}', "'sections'"),
        (b'{"title": "x", "created": "t", "meta": {}, "sections": [{"id": "chess"}]}', "section"),
    ],
)
def test_bad_report_json_is_a_user_error(tmp_path, content, message):
    path = tmp_path / "report.json"
    path.write_bytes(content)
    with pytest.raises(UserError, match=message) as info:
        load_model(path)
    assert "\n" not in str(info.value)
    with pytest.raises(UserError, match="no report file"):
        load_model(tmp_path / "missing.json")


def test_ids_are_unique_per_kind(tmp_path):
    model = sample_model()
    model["sections"][0]["plots"][0]["id"] = "atari-games"  # a plot may share a table's id
    page = write_report(model, tmp_path / "a")["report.html"].read_text()
    ids = re.findall(r'(?<![\w-])id="([^"]+)"', page)
    assert len(ids) == len(set(ids))
    model["sections"][1]["tables"][0]["id"] = "atari-games"  # two tables may not
    with pytest.raises(ValueError, match="atari-games"):
        write_report(model, tmp_path / "b")
    model["sections"][1]["tables"][0]["id"] = "../escape"
    with pytest.raises(ValueError, match="not a plain file name"):
        write_report(model, tmp_path / "c")


def test_provenance_of_configs_that_differ_shows_what_differs():
    """An entry over several tracks played a config per track: its row says which keys
    differ (values in turn) and which are shared, instead of every config in a row."""
    from pilot.eval.leaderboards.html import provenance_items

    prov = {
        "entry_kind": "builtin",
        "checkpoint_step": None,  # built-in: not trained, nothing to show
        "config": [
            {"tracker": "pure_pursuit", "target_speed": 25.0, "headway": 1.5},
            {"tracker": "pure_pursuit", "target_speed": 10.0, "headway": 1.2},
        ],
    }
    items = dict(provenance_items(prov))
    assert items["config"] == (
        "differing: target_speed 25.0 | 10.0; headway 1.5 | 1.2; shared: tracker pure_pursuit"
    )
    assert "checkpoint step" not in items
    one = dict(provenance_items({"config": [{"seed": 3}]}))
    assert one["config"] == "seed 3"
