import numpy as np
import pytest

from pilot.eval.stats import bootstrap_ci, human_normalized, iqm, summarize


def test_iqm_hand_computed():
    assert iqm([1, 2, 3, 4]) == pytest.approx(2.5)  # middle two
    assert iqm([0, 0, 10, 10, 10, 100, 100, 1000]) == pytest.approx(np.mean([10, 10, 10, 100]))
    # n = 5: quartiles at 1.25 and 3.75 → weights 0.75, 1, 0.75 on the middle three
    assert iqm([1, 2, 3, 4, 5]) == pytest.approx((0.75 * 2 + 3 + 0.75 * 4) / 2.5)
    assert iqm([5, 1, 100, -50]) == pytest.approx(3.0)  # order does not matter


def test_bootstrap_ci_covers_the_mean_and_shrinks_with_n():
    rng = np.random.default_rng(1)
    small = rng.normal(10, 2, 20)
    large = rng.normal(10, 2, 2000)
    lo_s, hi_s = bootstrap_ci(small)
    lo_l, hi_l = bootstrap_ci(large)
    assert lo_s < small.mean() < hi_s
    assert lo_l < 10 < hi_l
    assert (hi_l - lo_l) < (hi_s - lo_s) / 5
    # for the mean of n normal draws the 95% interval is about ±1.96 σ/√n
    assert (hi_l - lo_l) == pytest.approx(2 * 1.96 * 2 / np.sqrt(2000), rel=0.15)


def test_human_normalized_uses_mnih_table():
    assert human_normalized(31.8, "Breakout") == pytest.approx(1.0)
    assert human_normalized(1.7, "Breakout") == pytest.approx(0.0)
    assert human_normalized(18.9, "Pong") == pytest.approx((18.9 + 20.7) / 30.0)


def test_summary_fields():
    s = summarize([1.0, 2.0, 3.0, 4.0])
    assert s.n == 4 and s.mean == 2.5 and s.min == 1.0 and s.max == 4.0
    assert s.std == pytest.approx(np.std([1, 2, 3, 4], ddof=1))
    assert s.ci_low <= s.mean <= s.ci_high
    assert "95% CI" in s.line()
