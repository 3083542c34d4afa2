"""Statistics for reporting results: bootstrap confidence intervals, IQM, normalised scores.

Following Agarwal et al. (2021, "Deep RL at the Edge of the Statistical Precipice", the
rliable library's method): report the interquartile mean and percentile-bootstrap 95%
confidence intervals rather than a bare mean.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

#: Random-agent Atari scores, shared by both human tables (REFERENCE.md).
ATARI_RANDOM: dict[str, float] = {
    "Breakout": 1.7,
    "Pong": -20.7,
    "SpaceInvaders": 148.0,
    "Seaquest": 68.4,
    "BeamRider": 363.9,
    "Qbert": 163.9,
    "Enduro": 0.0,
}

#: Human Atari scores per published table. They differ (e.g. Seaquest 20181.8 vs 42054.7),
#: so a normalised score must say which table it used.
ATARI_HUMAN: dict[str, dict[str, float]] = {
    "mnih2015": {
        "Breakout": 31.8,
        "Pong": 9.3,
        "SpaceInvaders": 1652.3,
        "Seaquest": 20181.8,
        "BeamRider": 5774.7,
        "Qbert": 13455.0,
        "Enduro": 309.6,
    },
    "deepmind57": {
        "Breakout": 30.5,
        "Pong": 14.6,
        "SpaceInvaders": 1668.7,
        "Seaquest": 42054.7,
        "BeamRider": 16926.5,
        "Qbert": 13455.0,
        "Enduro": 860.5,
    },
}

#: How each human table is named in reports.
ATARI_HUMAN_TABLE_NAMES: dict[str, str] = {
    "mnih2015": "Mnih et al. 2015",
    "deepmind57": "DeepMind 57-game table",
}

#: (random, human) per game for each table.
ATARI_RANDOM_HUMAN: dict[str, dict[str, tuple[float, float]]] = {
    table: {game: (ATARI_RANDOM[game], human) for game, human in scores.items()}
    for table, scores in ATARI_HUMAN.items()
}

#: (random, human) Atari scores. Mnih et al. (2015) Nature DQN table, as in REFERENCE.md.
ATARI_RANDOM_HUMAN_MNIH2015: dict[str, tuple[float, float]] = ATARI_RANDOM_HUMAN["mnih2015"]


def iqm(values: Sequence[float] | np.ndarray) -> float:
    """Interquartile mean: the mean of the middle 50% of values (25% trimmed each side).

    With fractional quartile boundaries the edge values get fractional weight, so the
    statistic is continuous in the data (as in scipy's trim_mean generalised).
    """
    x = np.sort(np.asarray(values, dtype=np.float64).ravel())
    n = len(x)
    if n == 0:
        return float("nan")
    lo, hi = 0.25 * n, 0.75 * n
    weights = np.clip(np.minimum(np.arange(1, n + 1), hi) - np.maximum(np.arange(n), lo), 0, 1)
    return float((weights * x).sum() / weights.sum())


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    statistic: Callable[[np.ndarray], float] = np.mean,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    rng: np.random.Generator | None = None,
) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of ``statistic`` over ``values``."""
    x = np.asarray(values, dtype=np.float64).ravel()
    if len(x) == 0:
        return (float("nan"), float("nan"))
    rng = rng if rng is not None else np.random.default_rng(0)
    idx = rng.integers(0, len(x), size=(n_resamples, len(x)))
    samples = x[idx]
    if statistic is np.mean:
        stats = samples.mean(axis=1)
    else:
        stats = np.array([statistic(s) for s in samples])
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(stats, [alpha, 1 - alpha])
    return float(lo), float(hi)


def human_normalized(score: float, game: str, table: str = "mnih2015") -> float:
    """HNS = (score − random) / (human − random) with the human scores of ``table``
    (a key of :data:`ATARI_HUMAN`; Mnih et al. 2015 unless told)."""
    if table not in ATARI_RANDOM_HUMAN:
        raise KeyError(f"unknown human table {table!r}; known: {', '.join(ATARI_RANDOM_HUMAN)}")
    random, human = ATARI_RANDOM_HUMAN[table][game]
    return (score - random) / (human - random)


@dataclass(frozen=True)
class Summary:
    """Summary of per-episode returns as `pilot eval` prints and saves it."""

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float
    iqm: float
    iqm_ci_low: float
    iqm_ci_high: float
    min: float
    max: float

    def line(self) -> str:
        return (
            f"return {self.mean:.2f} ± {self.std:.2f} (mean ± std, n={self.n}), "
            f"95% CI [{self.ci_low:.2f}, {self.ci_high:.2f}], "
            f"IQM {self.iqm:.2f} [{self.iqm_ci_low:.2f}, {self.iqm_ci_high:.2f}]"
        )


def summarize(returns: Sequence[float], rng: np.random.Generator | None = None) -> Summary:
    x = np.asarray(returns, dtype=np.float64)
    rng = rng if rng is not None else np.random.default_rng(0)
    lo, hi = bootstrap_ci(x, rng=rng)
    ilo, ihi = bootstrap_ci(x, statistic=iqm, n_resamples=2_000, rng=rng)
    return Summary(
        n=len(x),
        mean=float(x.mean()),
        std=float(x.std(ddof=1)) if len(x) > 1 else 0.0,
        ci_low=lo,
        ci_high=hi,
        iqm=iqm(x),
        iqm_ci_low=ilo,
        iqm_ci_high=ihi,
        min=float(x.min()),
        max=float(x.max()),
    )
