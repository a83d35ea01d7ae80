"""Statistics shared by the analyses: intervals, a unimodality test, mixture model selection.

- :func:`percentile_interval` and :func:`circular_interval`: central intervals of bootstrap
  replicates (linear, and for angles around a point estimate);
- :func:`bootstrap_counts`: multinomial resampling weights, so that a bootstrap of a sum
  statistic is one matrix product;
- :func:`silverman_test`: Silverman's (1981) bandwidth test of unimodality with a smoothed
  bootstrap; :func:`critical_bandwidth`, :func:`count_modes`;
- :func:`bimodality_coefficient` (SAS / Pfister et al. 2013; > 5/9 suggests bimodality);
- :func:`gmm_bic`: BIC of 1–k-component Gaussian mixtures on one variable.

Everything takes explicit seeds and is vectorised over bootstrap replicates.
"""

from __future__ import annotations

import numpy as np

from hdbench.errors import HdbenchError


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _check_level(level: float) -> float:
    if not 0.0 < float(level) < 1.0:
        raise HdbenchError(f"confidence level must lie in (0, 1); got {level!r}")
    return float(level)


def percentile_interval(replicates, level: float = 0.9, axis: int = 0):
    """Central ``level`` percentile interval of bootstrap ``replicates`` along ``axis``.

    NaN replicates are ignored; the interval is NaN where none is finite. Returns two floats
    for 1-D input, else two arrays.
    """
    level = _check_level(level)
    reps = np.moveaxis(np.asarray(replicates, dtype=np.float64), axis, -1)
    q = [(1 - level) / 2, (1 + level) / 2]
    finite = np.isfinite(reps).any(-1)
    filled = np.where(finite[..., None], reps, 0.0)
    with np.errstate(invalid="ignore"):
        lo, hi = np.nanquantile(filled, q, axis=-1)
    lo, hi = np.where(finite, lo, np.nan), np.where(finite, hi, np.nan)
    if reps.ndim == 1:
        return float(lo), float(hi)
    return lo, hi


def circular_interval(estimate, replicates, level: float = 0.9, axis: int = 0):
    """Central interval of angular bootstrap ``replicates`` (rad) around ``estimate``.

    The replicates' deviations from the estimate are wrapped to (−π, π] and their percentiles
    added back, so the interval ``(lo, hi)`` satisfies ``lo <= hi`` and may extend beyond ±π
    when the estimate lies near ±π (it is not wrapped again). Its width is ``2π`` at most.
    """
    est = np.asarray(estimate, dtype=np.float64)
    reps = np.asarray(replicates, dtype=np.float64)
    dev = np.angle(np.exp(1j * (reps - np.expand_dims(est, axis))))
    lo, hi = percentile_interval(dev, level, axis=axis)
    return est + lo, est + hi


def bootstrap_counts(n: int, n_boot: int, seed) -> np.ndarray:
    """``[n_boot, n]`` multinomial counts: how often each of ``n`` items is drawn in each of
    ``n_boot`` resamples of size ``n`` with replacement."""
    rng = _rng(seed)
    if n < 1 or n_boot < 1:
        return np.zeros((max(n_boot, 0), max(n, 0)))
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(np.float64)


# --------------------------------------------------------------------------------------------
# Unimodality


def _kde(x: np.ndarray, grid: np.ndarray, h) -> np.ndarray:
    """Unnormalised Gaussian KDE of samples ``x`` [..., n] on ``grid`` [..., g]; ``h`` scalar or
    broadcastable to [..., 1, 1]."""
    z = (grid[..., :, None] - x[..., None, :]) / h
    return np.exp(-0.5 * z * z).sum(-1)


def count_modes(density: np.ndarray, rtol: float = 1e-9) -> np.ndarray:
    """Local maxima along the last axis of densities evaluated on a grid.

    Steps smaller than ``rtol`` × the largest value count as flat (they are rounding noise in
    the tails); a plateau counts once.
    """
    f = np.asarray(density, dtype=np.float64)
    d = np.diff(f, axis=-1)
    tol = rtol * np.abs(f).max(axis=-1, keepdims=True)
    s = np.where(d > tol, 1, np.where(d < -tol, -1, 0))
    # carry the last non-zero sign forward over flat steps, then count + -> - changes
    idx = np.where(s != 0, np.arange(s.shape[-1]), 0)
    np.maximum.accumulate(idx, axis=-1, out=idx)
    carried = np.take_along_axis(s, idx, axis=-1)
    return ((carried[..., :-1] == 1) & (carried[..., 1:] == -1)).sum(-1)


def _grid(x: np.ndarray, h: float, n_grid: int) -> np.ndarray:
    """At least ``n_grid`` points over the data ± 3h, no further apart than h/4 (so that no
    kernel-wide mode falls between two points)."""
    span = float(np.ptp(x)) + 6 * h
    return np.linspace(x.min() - 3 * h, x.max() + 3 * h, max(n_grid, int(np.ceil(4 * span / h))))


def critical_bandwidth(x, n_modes: int = 1, *, n_grid: int = 512, rtol: float = 1e-4) -> float:
    """Smallest Gaussian-kernel bandwidth at which the KDE of ``x`` has at most ``n_modes``
    modes (Silverman 1981; the mode count of a Gaussian KDE does not increase with the
    bandwidth). Found by bisection to a relative precision ``rtol``."""
    x = np.asarray(x, dtype=np.float64)
    spread = float(np.ptp(x))
    if spread == 0:
        return 0.0
    lo, hi = spread * 1e-3, spread
    while count_modes(_kde(x, _grid(x, hi, n_grid), hi)) > n_modes:
        hi *= 2
    if count_modes(_kde(x, _grid(x, lo, n_grid), lo)) <= n_modes:
        return lo
    while hi - lo > rtol * hi:
        mid = 0.5 * (lo + hi)
        if count_modes(_kde(x, _grid(x, mid, n_grid), mid)) > n_modes:
            lo = mid
        else:
            hi = mid
    return hi


def silverman_test(x, *, n_boot: int = 500, seed=0, n_grid: int = 256,
                   chunk: int = 100) -> dict:
    """Silverman's bandwidth test of the null hypothesis "the density of ``x`` is unimodal".

    The critical bandwidth h₁ is the smallest at which the Gaussian KDE has one mode. Under the
    null, samples drawn from that KDE (smoothed bootstrap, rescaled to the sample variance,
    Efron & Tibshirani 1993 §16.5) rarely need a larger bandwidth; the p-value is the fraction
    of ``n_boot`` such samples whose KDE at h₁ still has more than one mode. The test is known
    to be conservative (Hall & York 2001): a small p is good evidence of several modes, a
    large p is no proof of one.

    Returns
    -------
    dict with ``p_value``, ``h_crit`` (in the units of ``x``), ``n`` and ``n_boot``.
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    x = x[np.isfinite(x)]
    n = x.size
    if n < 4:
        raise HdbenchError(f"the unimodality test needs at least 4 finite values; got {n}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise HdbenchError(f"n_boot must be a positive integer; got {n_boot!r}")
    h = critical_bandwidth(x)
    if h == 0.0:  # all values equal: one mode, nothing to test
        return {"p_value": 1.0, "h_crit": 0.0, "n": int(n), "n_boot": int(n_boot)}
    rng = _rng(seed)
    mean, var = x.mean(), x.var()
    scale = 1.0 / np.sqrt(1.0 + h * h / var) if var > 0 else 1.0
    more = 0
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        pick = x[rng.integers(0, n, size=(b, n))]
        y = mean + (pick - mean + h * rng.standard_normal((b, n))) * scale
        span = float(np.ptp(y, axis=1).max()) + 6 * h
        size = min(max(n_grid, int(np.ceil(4 * span / h))), 4096)
        grids = np.linspace(y.min(1) - 3 * h, y.max(1) + 3 * h, size, axis=-1)
        more += int((count_modes(_kde(y, grids, h)) > 1).sum())
    return {"p_value": more / n_boot, "h_crit": float(h), "n": int(n), "n_boot": int(n_boot)}


def bimodality_coefficient(x) -> float:
    """Sample bimodality coefficient (g² + 1) / (k + 3(n−1)² / ((n−2)(n−3))), g the sample
    skewness and k the sample excess kurtosis (both bias-corrected). 5/9 for a uniform
    distribution; values above suggest bimodality (Pfister et al. 2013)."""
    from scipy.stats import kurtosis, skew

    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = x.size
    if n < 4 or not np.ptp(x) > 0:
        return float("nan")
    g = skew(x, bias=False)
    k = kurtosis(x, bias=False)
    return float((g * g + 1.0) / (k + 3.0 * (n - 1) ** 2 / ((n - 2) * (n - 3))))


def gmm_bic(x, max_components: int = 3, *, seed: int = 0, n_init: int = 3) -> dict:
    """BIC of Gaussian mixtures with 1 … ``max_components`` components on one variable.

    ``x`` is standardised first (mixtures are scale-free, and a tiny ``reg_covar`` keeps
    clusters of identical values finite). Lower BIC is better.

    Returns
    -------
    dict with ``bic`` (list, one per component count), ``best`` (the component count with the
    lowest BIC) and ``delta_bic_1`` (BIC of one component minus the best: > 10 is strong
    evidence against a single Gaussian, Kass & Raftery 1995).
    """
    from sklearn.mixture import GaussianMixture
    from threadpoolctl import threadpool_limits

    x = np.asarray(x, dtype=np.float64).reshape(-1)
    x = x[np.isfinite(x)]
    if x.size < 3 * max_components or not np.ptp(x) > 0:
        return {"bic": [float("nan")] * max_components, "best": 1, "delta_bic_1": float("nan")}
    z = ((x - x.mean()) / x.std())[:, None]
    bic = []
    with threadpool_limits(1):
        for k in range(1, max_components + 1):
            gmm = GaussianMixture(n_components=k, n_init=n_init, reg_covar=1e-4,
                                  random_state=seed).fit(z)
            bic.append(float(gmm.bic(z)))
    best = int(np.argmin(bic)) + 1
    return {"bic": bic, "best": best, "delta_bic_1": float(bic[0] - min(bic))}
