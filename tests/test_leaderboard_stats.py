"""Leaderboard statistics: hand-computed numbers, agreement with rliable, the model's shape."""

import json
import math

import numpy as np
import pytest
from rliable import library, metrics

from pilot.eval.driving import COUNTED, driving_score
from pilot.eval.leaderboards import atari_stats
from pilot.eval.leaderboards.aggregate import aggregate
from pilot.eval.leaderboards.model import merge_provenance, stratified_ci
from pilot.eval.leaderboards.task_stats import infractions_per_km, spl
from pilot.eval.stats import ATARI_RANDOM_HUMAN, human_normalized

REPS = 200


def record(entry, track, seed, rets, kind="atari", game=None, **per_episode):
    """A leaderboard record as run.py writes it; ``per_episode`` gives lists of per-episode
    fields (success, driving, navigation) aligned with ``rets``."""
    episodes = []
    for i, ret in enumerate(rets):
        ep = {
            "seed": seed,
            "episode": i,
            "ret": float(ret),
            "length": 100,
            "terminated": True,
            "success": None,
            "end": "terminated",
            "driving": None,
            "navigation": None,
        }
        ep.update({k: v[i] for k, v in per_episode.items()})
        episodes.append(ep)
    env_id = f"pilot/Atari-{game}-v0" if kind == "atari" else f"pilot/{track}"
    return {
        "schema": "pilot.leaderboard/1",
        "entry": entry,
        "track": track,
        "seed": seed,
        "env_id": env_id,
        "kind": kind,
        "game": game,
        "protocol": "deepmind" if kind == "atari" else None,
        "episodes": episodes,
        "provenance": {
            "entry_kind": "checkpoint",
            "algo": "dqn",
            "checkpoint": f"/ck/{entry}.pt",
            "checkpoint_sha256": f"sha-{entry}",
            "run_dir": None,
            "config": {"lr": 1e-4},
            "git_commit": "abc123",
            "versions": {"torch": "2.5"},
            "protocol": "deepmind",
            "seeds": [seed],
            "episodes": len(rets),
            "acting": "greedy",
            "wall_s": 2.0,
            "created": f"2026-01-0{seed + 1}T00:00:00",
        },
    }


HUMAN = {"Breakout": 31.8, "Pong": 9.3, "Seaquest": 20181.8}


def atari_records(entries=(("a", 1.0, 3), ("b", 0.5, 4)), games=HUMAN, skip=()):
    """Per entry (name, fraction of human, seeds) one record per game and seed."""
    rng = np.random.default_rng(7)
    out = []
    for name, frac, n_seeds in entries:
        for game, human in games.items():
            if (name, game) in skip:
                continue
            rand = ATARI_RANDOM_HUMAN["mnih2015"][game][0]
            for s in range(n_seeds):
                mean = rand + frac * (human - rand) * rng.uniform(0.5, 1.5)
                out.append(record(name, game.lower(), s, [mean - 1, mean, mean + 1], game=game))
    return out


def section(model, sid):
    return next(s for s in model["sections"] if s["id"] == sid)


def find(sec, tid, where="tables"):
    """A table (or with ``where="plots"`` a plot): ids are unique among each."""
    return next(t for t in sec[where] if t["id"] == tid)


# ------------------------------------------------------------------------- hand numbers
def test_hns_on_published_numbers_with_both_tables():
    # Nature DQN's Breakout 401.2 (REFERENCE.md)
    assert human_normalized(401.2, "Breakout") == pytest.approx((401.2 - 1.7) / (31.8 - 1.7))
    assert human_normalized(401.2, "Breakout", table="mnih2015") == pytest.approx(13.2724, 1e-4)
    assert human_normalized(401.2, "Breakout", table="deepmind57") == pytest.approx(
        (401.2 - 1.7) / (30.5 - 1.7)
    )
    assert human_normalized(5286, "Seaquest", table="deepmind57") == pytest.approx(
        (5286 - 68.4) / (42054.7 - 68.4)
    )
    with pytest.raises(KeyError):
        human_normalized(1.0, "Breakout", table="nope")


def test_iqm_and_optimality_gap_hand_computed():
    m = np.array([[0.0, 1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0]])  # 8 values, middle four 2..5
    points = atari_stats.aggregate_metrics(m)
    assert points[0] == pytest.approx(3.5)  # IQM
    assert points[1] == pytest.approx(np.median([2, 3, 4, 5]))  # median of game means
    assert points[2] == pytest.approx(3.5)  # mean of game means
    assert points[3] == pytest.approx(1 - (0.0 + 7 * 1.0) / 8)  # only the 0 is below 1
    assert atari_stats.aggregate_metrics(np.array([[0.5, 2.0]]))[3] == pytest.approx(0.25)


def test_spl_on_three_hand_made_episodes():
    eps = [
        {"success": True, "navigation": {"path_length": 10.0, "optimal_length": 8.0}},
        {"success": True, "navigation": {"path_length": 5.0, "optimal_length": 5.0}},
        {"success": False, "navigation": {"path_length": 3.0, "optimal_length": 6.0}},
    ]
    assert spl(eps) == pytest.approx((0.8 + 1.0 + 0.0) / 3)


def test_infractions_per_km_over_all_routes():
    a = driving_score(1.0, {"collision_vehicle": 2}, route_length=500.0)  # 0.5 km
    b = driving_score(0.5, {"red_light": 1, "collision_vehicle": 1}, route_length=3000.0)  # 1.5
    per_km = infractions_per_km([a, b])
    assert per_km["collision_vehicle"] == pytest.approx(3 / 2.0)
    assert per_km["red_light"] == pytest.approx(1 / 2.0)
    assert per_km["stop_sign"] == 0.0
    assert set(per_km) == set(COUNTED)


def test_stratified_ci_resamples_within_each_stratum():
    # stratum "a" is constant 0, "b" constant 10: every resample keeps 2 of each → mean 5
    mean, lo, hi = stratified_ci(
        [0, 0, 10, 10], ["a", "a", "b", "b"], REPS, np.random.default_rng(0)
    )
    assert (mean, lo, hi) == (5.0, 5.0, 5.0)
    _, lo, hi = stratified_ci([0, 0, 10, 10], [1, 2, 3, 4], REPS, np.random.default_rng(0))
    assert (lo, hi) == (5.0, 5.0)  # one value per stratum: nothing to vary
    _, lo, hi = stratified_ci([0, 10, 0, 10], ["a", "a", "b", "b"], REPS, np.random.default_rng(0))
    assert lo < 5.0 < hi


# ----------------------------------------------------------------------- rliable agreement
def test_wrapper_equals_rliable_called_directly():
    rng = np.random.default_rng(3)
    scores = rng.normal(1.0, 0.5, size=(5, 4))

    def direct(m):
        return np.array(
            [
                metrics.aggregate_iqm(m),
                metrics.aggregate_median(m),
                metrics.aggregate_mean(m),
                metrics.aggregate_optimality_gap(m),
            ]
        )

    points, cis = atari_stats.interval_estimates(scores, REPS, seed=11)
    np.random.seed(11)
    ref_points, ref_cis = library.get_interval_estimates({"k": scores}, direct, reps=REPS)
    np.testing.assert_allclose(points, ref_points["k"])
    np.testing.assert_allclose(cis, ref_cis["k"])

    taus = np.linspace(0, 2, 9)
    profile, pcis = atari_stats.performance_profile(scores, taus, REPS, seed=11)
    np.random.seed(11)
    ref_profile, ref_pcis = library.create_performance_profile({"k": scores}, taus, reps=REPS)
    np.testing.assert_allclose(profile, ref_profile["k"])
    np.testing.assert_allclose(pcis, ref_pcis["k"])


def test_probability_of_improvement_equals_rliable():
    rng = np.random.default_rng(5)
    x = rng.integers(0, 4, size=(4, 3)).astype(float)  # small integers: ties happen
    y = rng.integers(0, 4, size=(6, 3)).astype(float)
    assert atari_stats.probability_of_improvement(x, y) == pytest.approx(
        metrics.probability_of_improvement(x, y)
    )
    assert atari_stats.probability_of_improvement(x, x) == pytest.approx(0.5)
    p, lo, hi = atari_stats.improvement_probability(x, y, REPS, seed=2)
    np.random.seed(2)
    ref_p, ref_ci = library.get_interval_estimates(
        {"k": [x, y]}, metrics.probability_of_improvement, reps=REPS
    )
    assert p == pytest.approx(float(ref_p["k"]))
    np.testing.assert_allclose([lo, hi], np.ravel(ref_ci["k"]))


def test_seeded_bootstrap_restores_the_global_generator():
    np.random.seed(123)
    expected = np.random.random()
    np.random.seed(123)
    atari_stats.interval_estimates(np.ones((3, 2)), 20, seed=0)
    assert np.random.random() == expected


# ---------------------------------------------------------------------------- the model
def test_atari_model_matches_hand_matrix_and_has_every_table():
    records = atari_records()
    model = aggregate(records, {"title": "t"}, reps=REPS)
    sec = section(model, "atari")
    agg = find(sec, "atari-aggregate")
    row = next(r for r in agg["rows"] if r["entry"] == "a")
    scores = np.array(
        [
            [
                human_normalized(np.mean([e["ret"] for e in r["episodes"]]), r["game"])
                for r in records
                if r["entry"] == "a" and r["seed"] == s
            ]
            for s in range(3)
        ]
    )
    assert (row["runs"], row["games"]) == (3, 3)
    assert row["iqm"]["value"] == pytest.approx(metrics.aggregate_iqm(scores))
    assert row["iqm"]["low"] <= row["iqm"]["value"] <= row["iqm"]["high"]
    assert row["_provenance"]["seeds"] == [0, 1, 2]
    games = find(sec, "atari-games")["rows"]
    g = next(r for r in games if r["entry"] == "b" and r["game"] == "Pong")
    assert g["seeds"] == 4
    assert g["hns_deepmind57"] == pytest.approx(
        human_normalized(g["score"]["value"], "Pong", "deepmind57")
    )
    assert g["_provenance"]["wall_s"] == pytest.approx(8.0)
    assert g["_provenance"]["checkpoint_sha256"] == ["sha-b"]
    poi = find(sec, "atari-poi")["rows"]
    assert [(r["x"], r["y"]) for r in poi] == [("a", "b"), ("b", "a")]
    assert poi[0]["poi"]["value"] + poi[1]["poi"]["value"] == pytest.approx(1.0)
    bars = find(sec, "atari-aggregate", "plots")
    assert bars["kind"] == "bars_ci" and bars["categories"][0] == "IQM"
    assert bars["series"][0]["y"][0] == pytest.approx(row["iqm"]["value"])
    prof = find(sec, "atari-profile", "plots")
    assert all(len(s["x"]) == len(s["y"]) == len(s["low"]) for s in prof["series"])
    assert any("Mnih et al. 2015" in n for n in sec["notes"])
    assert any("DeepMind 57-game table" in n for n in sec["notes"])


def test_missing_game_leaves_the_entry_out_with_a_note():
    model = aggregate(atari_records(skip={("b", "Seaquest")}), reps=REPS)
    sec = section(model, "atari")
    assert [r["entry"] for r in find(sec, "atari-aggregate")["rows"]] == ["a"]
    assert find(sec, "atari-poi")["rows"] == []
    assert any(n.startswith("b is left out") and "seaquest" in n for n in sec["notes"])
    games = find(sec, "atari-games")["rows"]
    assert sum(r["entry"] == "b" for r in games) == 2  # its games still listed


def test_deterministic_and_json_without_nan():
    records = atari_records() + [
        record("a", "CartPole", s, [10, 20, 30], kind="control") for s in range(2)
    ]
    one = aggregate(records, reps=REPS, seed=4)
    two = aggregate(records, reps=REPS, seed=4)
    one.pop("created"), two.pop("created")
    assert one == two
    other = aggregate(records, reps=REPS, seed=5)
    other.pop("created")
    assert other != one
    json.loads(json.dumps(one, allow_nan=False))


def test_sections_only_for_kinds_present_in_order():
    nav = dict(
        success=[True, False],
        navigation=[
            {"path_length": 12.0, "optimal_length": 10.0},
            {"path_length": 4.0, "optimal_length": 8.0},
        ],
    )
    records = [
        record("x", "CartPole", 0, [1, 2], kind="control"),
        record("x", "Nav-Maze-v0", 0, [0, 0], kind="navigation", **nav),
    ]
    model = aggregate(records, reps=REPS)
    assert [s["id"] for s in model["sections"]] == ["navigation", "control"]
    row = find(section(model, "navigation"), "navigation-tracks")["rows"][0]
    assert row["spl"]["value"] == pytest.approx((10 / 12 + 0) / 2)
    assert row["success"]["value"] == pytest.approx(0.5)
    assert row["path_ratio"]["value"] == pytest.approx(1.2)
    assert row["episodes"] == 2
    for where in ("tables", "plots"):
        ids = [t["id"] for s in model["sections"] for t in s[where]]
        assert len(ids) == len(set(ids))


def test_driving_section_numbers_and_infinite_rates_become_none():
    good = driving_score(1.0, {"collision_vehicle": 1}, route_length=1000.0)
    idle = driving_score(0.0, {"agent_blocked": 1}, route_length=1000.0)  # 0 km: inf per km
    recs = [
        record("m", "Driving-Town-v0", 0, [1, 1], kind="driving", driving=[vars(good), vars(good)]),
        record("m", "Driving-Town-v0", 1, [1], kind="driving", driving=[vars(idle)]),
        record("n", "Driving-Idle-v0", 0, [1], kind="driving", driving=[vars(idle)]),
    ]
    model = aggregate(recs, reps=REPS)
    json.dumps(model, allow_nan=False)
    sec = section(model, "driving")
    rows = find(sec, "driving-tracks")["rows"]
    m = rows[0]
    assert m["driving_score"]["value"] == pytest.approx((60 + 60 + 0) / 3)
    assert (m["routes"], m["km"]) == (3, pytest.approx(2.0))
    assert m["infractions_per_km"] == pytest.approx(3 / 2.0)
    assert rows[1]["infractions_per_km"] is None  # blocked at the start: no km driven
    per_type = find(sec, "driving-infractions")["rows"][0]
    assert per_type["collision_vehicle"] == pytest.approx(1.0)
    assert per_type["agent_blocked"] == pytest.approx(0.5)
    bars = find(sec, "driving-score", "plots")
    assert bars["categories"] == ["Driving-Town-v0", "Driving-Idle-v0"]
    assert bars["series"][0]["y"][1] is None  # m did not drive the second track


def test_learning_curves_from_run_dirs(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    lines = ["step,time,return,length,success"]
    lines += [f"{100 * i},0.0,{i},10," for i in range(1, 501)]
    (run / "episodes.csv").write_text("\n".join(lines) + "\n")
    recs = [record("a", "CartPole", s, [1.0], kind="control") for s in range(2)]
    for r in recs:
        r["provenance"]["run_dir"] = str(run)
    recs.append(record("b", "CartPole", 0, [1.0], kind="control"))
    recs[-1]["provenance"]["run_dir"] = str(tmp_path / "missing")
    curves = find(section(aggregate(recs, reps=REPS), "control"), "curves-cartpole", "plots")
    assert curves["kind"] == "curves" and len(curves["series"]) == 1  # one run, drawn once
    s = curves["series"][0]
    assert len(s["x"]) == len(s["y"]) <= 200
    assert s["x"][-1] == 50000.0
    assert s["y"][-1] == pytest.approx(np.mean(np.arange(481, 501)))


def test_merge_provenance_over_seeds():
    recs = [record("a", "t", s, [1.0], kind="control") for s in (2, 0)]
    recs[1]["provenance"]["git_commit"] = "def456"
    p = merge_provenance(recs)
    assert p["seeds"] == [0, 2] and p["wall_s"] == 4.0 and p["episodes"] == 2
    assert p["git_commit"] == ["abc123", "def456"] and p["versions"] == {"torch": "2.5"}
    assert p["created"] == "2026-01-03T00:00:00"
    assert not math.isnan(p["wall_s"])


def test_one_route_per_seed_still_gets_an_interval():
    """Every seed draws new routes: with one route per seed the interval resamples the
    track's routes across seeds (resampling within a seed would collapse it to a point)."""
    full = driving_score(1.0, {}, route_length=500.0)
    half = driving_score(0.5, {}, route_length=500.0)
    recs = [
        record("m", "Driving-X-v0", s, [1], kind="driving", driving=[vars(d)])
        for s, d in enumerate([full, half, full, half])
    ]
    row = find(section(aggregate(recs, reps=REPS), "driving"), "driving-tracks")["rows"][0]
    ds = row["driving_score"]
    assert ds["value"] == pytest.approx(75.0)
    assert ds["low"] < 75.0 < ds["high"] and ds["low"] >= 50.0 and ds["high"] <= 100.0


def test_driving_tables_give_the_score_without_min_speed_beside_it():
    """A route that only waited (two slow stretches) scores 100 without the minimum-speed
    test; one that ran a red light keeps its 0.7 either way."""
    waited = driving_score(1.0, {}, route_length=200.0, min_speed_percentages=[50.0, 50.0])
    ran = driving_score(1.0, {"red_light": 1}, route_length=200.0)
    recs = [
        record("m", "Driving-X-v0", 0, [0, 1], kind="driving", driving=[vars(waited), vars(ran)])
    ]
    sec = section(aggregate(recs, reps=REPS), "driving")
    for table_id in ("driving-tracks", "driving-overall"):
        row = find(sec, table_id)["rows"][0]
        assert row["driving_score"]["value"] == pytest.approx((85.0**2 / 100 + 70.0) / 2)
        assert row["driving_score_without_min_speed"]["value"] == pytest.approx((100 + 70) / 2)
    assert any("Bench2Drive" in n for n in sec["notes"])


def _board(entry, scores_by_track):
    """Driving records of ``entry``: per track, per seed, the routes' (completion, counts)."""
    recs = []
    for track, seeds in scores_by_track.items():
        for s, routes in enumerate(seeds):
            ds = [vars(driving_score(rc, counts, route_length=200.0)) for rc, counts in routes]
            recs.append(record(entry, track, s, [0] * len(ds), kind="driving", driving=ds))
    return recs


def test_paired_differences_route_by_route_hand_computed():
    """Routes vary wildly (0 to 100) but b scores exactly 30 below a on every route of T1
    and 10 below on T2: paired, the interval is the mean difference itself; unpaired, each
    row's interval spans tens of points."""
    full, blocked, red = (1.0, {}), (0.4, {}), (1.0, {"red_light": 1})  # 100, 40, 70
    a = _board("a", {"T1": [[full, blocked]], "T2": [[full, full]]})
    b = _board("b", {"T1": [[red, (0.1, {})]], "T2": [[(0.9, {}), (0.9, {})]]})  # 70 10 | 90 90
    c = _board("c", {"T3": [[full]]})  # shares no route with a or b
    sec = section(aggregate(a + b + c, reps=REPS), "driving")
    rows = find(sec, "driving-paired")["rows"]
    assert [(r["entry"], r["versus"]) for r in rows] == [("a", "b")]  # c (100) shares none
    r = rows[0]
    assert (r["tracks"], r["routes"], r["higher"], r["lower"], r["equal"]) == (2, 4, 4, 0, 0)
    diff = r["difference"]
    assert diff["value"] == pytest.approx((30 + 30 + 10 + 10) / 4)
    # resampling within each track: T1's two routes both differ by 30, T2's by 10
    assert diff["low"] == pytest.approx(20.0) and diff["high"] == pytest.approx(20.0)
    overall = {o["entry"]: o["driving_score"] for o in find(sec, "driving-overall")["rows"]}
    assert overall["a"]["high"] - overall["a"]["low"] > 20  # unpaired: wide
    notes = " ".join(sec["notes"])
    assert "c and a share no route" in notes and "c and b share no route" in notes


def test_paired_difference_interval_and_order_follow_the_routes():
    """The higher entry comes first; ties on a route are counted; the interval covers the
    spread of the per-route differences within a track."""
    full, half = (1.0, {}), (0.5, {})
    a = _board("a", {"T": [[full, half, full], [half, full, full]]})
    b = _board("b", {"T": [[half, half, full], [full, half, full]]})  # diffs 50 0 0 | -50 50 0
    rows = find(section(aggregate(b + a, reps=REPS), "driving"), "driving-paired")["rows"]
    r = rows[0]
    assert (r["entry"], r["versus"]) == ("a", "b")
    assert (r["higher"], r["lower"], r["equal"]) == (2, 1, 3)
    d = r["difference"]
    assert d["value"] == pytest.approx(50 / 6)
    assert -50 <= d["low"] < d["value"] < d["high"] <= 50


def test_one_entry_gets_no_paired_table():
    a = _board("a", {"T": [[(1.0, {})]]})
    tables = [t["id"] for t in section(aggregate(a, reps=REPS), "driving")["tables"]]
    assert "driving-paired" not in tables
