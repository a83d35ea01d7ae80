"""Connectivity motifs: weights against preferred-direction difference (papers.md §1.6).

Weights are ``W[target, source]``. For a target unit i and a source unit j the preferred-direction
difference is ``Δ_ij = wrap(PD_i − PD_j)`` in (−π, π]: a positive Δ means the source excites
targets whose PD lies counter-clockwise (CCW) of its own, i.e. it pushes the bump CCW.

The headline reading of a (target type, source type) pathway is a **fit**
(:func:`fit_pathway`): ``W_ij ≈ c + A cos(Δ_ij − offset)`` by least squares over the single
weights, with a bootstrap interval over source units and a p-value against shuffled source PDs.
The **profile** of a pathway (the mean weight in Δ bins centred on multiples of 2π / n_bins, one
bin centred on 0, self-weights excluded) is kept for plots and for the profile-correlation
benchmark; the argmax of a binned profile is a secondary reading only: in a trained CTRNN with
13–24 pairs per 10° bin it moves by more than 100° between bootstrap resamples of the source
units (issue 17), while the fitted offset keeps its sign.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hdbench.errors import HdbenchError

TWO_PI = 2.0 * np.pi
RING_TYPES = ("compass", "shifter_cw", "shifter_ccw")


def wrap(angle):
    """Angles wrapped to (−π, π]."""
    out = np.mod(np.asarray(angle, dtype=np.float64) + np.pi, TWO_PI) - np.pi
    return np.where(out == -np.pi, np.pi, out)


def delta_centers(n_bins: int) -> np.ndarray:
    """Sorted Δ bin centres (rad): multiples of 2π / n_bins in (−π, π]."""
    return np.sort(wrap(np.arange(n_bins) * TWO_PI / n_bins))


def _inputs(W, preferred, cell_types):
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise HdbenchError(f"W must be a square [target, source] matrix; got shape {W.shape}")
    preferred = np.asarray(preferred, dtype=np.float64).reshape(-1)
    cell_types = np.asarray(cell_types, dtype=object).reshape(-1)
    if preferred.shape[0] != W.shape[0] or cell_types.shape[0] != W.shape[0]:
        raise HdbenchError(f"need one preferred direction and one cell type per unit "
                           f"({W.shape[0]}); got {preferred.shape[0]} and {cell_types.shape[0]}")
    if not np.all(np.isfinite(W)):
        raise HdbenchError("W contains NaN or inf")
    return W, preferred, cell_types


def _types_from(table_or_pd, cell_types):
    if isinstance(table_or_pd, pd.DataFrame):
        return table_or_pd["pd"].to_numpy(), table_or_pd["cell_type"].to_numpy()
    if cell_types is None:
        raise HdbenchError("pass a tuning table, or preferred directions and cell_types")
    return table_or_pd, cell_types


def sort_by_preferred(W, table_or_pd, cell_types=None, types=RING_TYPES):
    """W restricted to units of ``types``, grouped by type and sorted by PD within a type.

    Returns ``(W_sorted, order)``, ``order`` the original unit indices.
    """
    preferred, cell_types = _types_from(table_or_pd, cell_types)
    W, preferred, cell_types = _inputs(W, preferred, cell_types)
    order = np.concatenate([np.nonzero(cell_types == t)[0][np.argsort(
        preferred[cell_types == t], kind="stable")] for t in types]).astype(np.int64)
    return W[np.ix_(order, order)], order


def weight_profiles(W, table_or_pd, cell_types=None, *, n_bins: int = 36,
                    types=RING_TYPES) -> pd.DataFrame:
    """Mean weight against Δ = wrap(PD_target − PD_source) for every (target, source) type pair.

    Parameters
    ----------
    W : [units, units]
        Recurrent weights ``W[target, source]``.
    table_or_pd : DataFrame or array
        A tuning table (columns ``pd``, ``cell_type``) or the preferred directions (rad).
    cell_types : array, optional
        One label per unit when preferred directions are passed.
    n_bins : int
        Δ bins (default 36 of 10°).
    types : sequence of str
        Cell types to include.

    Returns
    -------
    DataFrame with columns ``target``, ``source``, ``delta`` (bin centre, rad), ``weight``
    (mean, NaN for empty bins), ``n`` (pairs in the bin).
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 4:
        raise HdbenchError(f"n_bins must be an integer >= 4; got {n_bins!r}")
    preferred, cell_types = _types_from(table_or_pd, cell_types)
    W, preferred, cell_types = _inputs(W, preferred, cell_types)
    width = TWO_PI / n_bins
    delta = wrap(preferred[:, None] - preferred[None, :])
    k = np.mod(np.round(delta / width).astype(np.int64), n_bins)
    centers = wrap(np.arange(n_bins) * width)
    order = np.argsort(centers)
    offdiag = ~np.eye(W.shape[0], dtype=bool)
    rows = []
    for target in types:
        ti = cell_types == target
        for source in types:
            sj = cell_types == source
            sel = ti[:, None] & sj[None, :] & offdiag
            if not sel.any():
                continue
            n = np.bincount(k[sel], minlength=n_bins)
            s = np.bincount(k[sel], weights=W[sel], minlength=n_bins)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.where(n > 0, s / np.maximum(n, 1), np.nan)
            for b in order:
                rows.append((target, source, centers[b], mean[b], int(n[b])))
    return pd.DataFrame(rows, columns=["target", "source", "delta", "weight", "n"])


def _fill_circular(p: np.ndarray) -> np.ndarray:
    """Fill NaN bins by circular linear interpolation."""
    ok = np.isfinite(p)
    if ok.all() or not ok.any():
        return np.nan_to_num(p)
    n = p.shape[0]
    x = np.arange(n)
    xp = np.concatenate([x[ok] - n, x[ok], x[ok] + n])
    return np.interp(x, xp, np.tile(p[ok], 3))


def _smooth(p: np.ndarray, bins: int) -> np.ndarray:
    """Circular triangular smoothing with half-width ``bins`` (0: none)."""
    if bins <= 0:
        return p
    kernel = np.concatenate([np.arange(1, bins + 2), np.arange(bins, 0, -1)]).astype(float)
    kernel /= kernel.sum()
    padded = np.concatenate([p[-bins:], p, p[:bins]])
    return np.convolve(padded, kernel, mode="valid")


def _peak_location(p: np.ndarray, centers: np.ndarray, near: int | None = None,
                   reach: int = 0) -> float:
    """Circular arg-max with parabolic refinement (rad), optionally only within ``reach``
    bins of bin ``near``."""
    n = p.shape[0]
    if near is None:
        i = int(np.argmax(p))
    else:
        cand = np.arange(near - reach, near + reach + 1) % n
        i = int(cand[np.argmax(p[cand])])
    y0, y1, y2 = p[(i - 1) % n], p[i], p[(i + 1) % n]
    denom = y0 - 2 * y1 + y2
    shift = 0.5 * (y0 - y2) / denom if denom < 0 else 0.0
    return float(wrap(centers[i] + shift * TWO_PI / n))


def profile_summary(delta: np.ndarray, weight: np.ndarray, *, smooth_bins: int = 1) -> dict:
    """Summaries of one weight profile ``weight(delta)`` on sorted, evenly spaced bins.

    Returns
    -------
    dict with ``mean``, ``peak``, ``trough``, ``exc_lobe`` (peak − mean), ``inh_lobe``
    (mean − trough), ``offset`` (Δ of the smoothed maximum, rad, signed), ``offset_circmean``
    (angle of the positive part of the mean-removed profile), ``trough_offset`` (Δ of the
    smoothed minimum), ``symmetry`` (correlation of w(Δ) with w(−Δ)), ``odd_amplitude``
    (max |w(Δ) − w(−Δ)| / 2: the strength of the shift) and ``fourier1`` (share of the
    profile's variance in the first Fourier mode).
    """
    delta = np.asarray(delta, dtype=np.float64)
    p = _fill_circular(np.asarray(weight, dtype=np.float64))
    n = p.shape[0]
    sm = _smooth(p, smooth_bins)
    mean = float(p.mean())
    positive = np.clip(p - mean, 0.0, None)
    vec = (positive * np.exp(1j * delta)).sum()
    mirror = np.interp(wrap(-delta), delta, p, period=TWO_PI)
    centred, mcentred = p - mean, mirror - mirror.mean()
    denom = np.sqrt((centred**2).sum() * (mcentred**2).sum())
    spectrum = np.abs(np.fft.rfft(p)) ** 2
    total = spectrum[1:].sum() if n > 2 else 0.0
    flat = not p.max() > p.min()  # e.g. a pair without connections: no peak to locate
    nan = float("nan")
    return {
        "mean": mean, "peak": float(p.max()), "trough": float(p.min()),
        "exc_lobe": float(p.max() - mean), "inh_lobe": float(mean - p.min()),
        # Peaks: located on the smoothed profile, refined on the raw one nearby (smoothing
        # shifts the peak of a lopsided profile such as the fly's two-lobed P-EN kernel).
        "offset": nan if flat else _peak_location(p, delta, int(np.argmax(sm)), smooth_bins),
        "offset_circmean": float(np.angle(vec)) if abs(vec) > 0 else nan,
        "trough_offset": nan if flat else _peak_location(-p, delta, int(np.argmin(sm)),
                                                         smooth_bins),
        "symmetry": float((centred * mcentred).sum() / denom) if denom > 0 else nan,
        "odd_amplitude": float(np.abs(p - mirror).max() / 2),
        "fourier1": float(spectrum[1] / total) if total > 0 else nan,
    }


def ring_score(W, preferred, units=None) -> float:
    """Share of the variance of W (off-diagonal, among ``units``) explained by the first
    Fourier mode in Δ: the R² of ``W_ij ≈ c + a cos Δ_ij + b sin Δ_ij``.

    1 for a cosine ring (any offset), about 0 for weights unrelated to preferred direction.
    """
    W = np.asarray(W, dtype=np.float64)
    preferred = np.asarray(preferred, dtype=np.float64)
    if units is not None:
        units = np.asarray(units)
        W, preferred = W[np.ix_(units, units)], preferred[units]
    n = W.shape[0]
    if n < 3:
        return float("nan")
    off = ~np.eye(n, dtype=bool)
    d = (preferred[:, None] - preferred[None, :])[off]
    y = W[off]
    X = np.column_stack([np.ones_like(d), np.cos(d), np.sin(d)])
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    sst = ((y - y.mean()) ** 2).sum()
    return float(1.0 - ((y - X @ coef) ** 2).sum() / sst) if sst > 0 else float("nan")


# --------------------------------------------------------------------------------------------
# First-harmonic fits of single weights


def _design(delta: np.ndarray) -> np.ndarray:
    """Regressors [1, cos Δ, sin Δ] along a new last axis."""
    return np.stack([np.ones_like(delta), np.cos(delta), np.sin(delta)], axis=-1)


def _solve(xtx: np.ndarray, xty: np.ndarray, yty: np.ndarray, sy: np.ndarray, n: np.ndarray):
    """Least-squares fits from normal equations [..., 3, 3], [..., 3] and the sums of y² and y.

    Returns ``(coef [..., 3], r2 [...])``; NaN where the design is singular or W is constant.
    """
    det = np.linalg.det(xtx)
    ok = np.abs(det) > 1e-12 * np.maximum(np.abs(xtx[..., 0, 0]), 1.0) ** 3
    eye = np.broadcast_to(np.eye(3), xtx.shape)
    coef = np.linalg.solve(np.where(ok[..., None, None], xtx, eye), xty[..., None])[..., 0]
    sst = yty - sy * sy / np.maximum(n, 1)
    sse = yty - (coef * xty).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = np.where(sst > 1e-12 * np.maximum(yty, 1e-300), 1.0 - sse / sst, np.nan)
    coef = np.where(ok[..., None], coef, np.nan)
    return coef, np.where(ok, r2, np.nan)


def fit_pathway(W, pd_target, pd_source, *, exclude=None, n_boot: int = 1000,
                n_perm: int = 999, level: float = 0.9, seed=0) -> dict:
    """First-harmonic fit ``W_ij ≈ c + A cos(Δ_ij − offset)`` of one pathway's weights.

    Every (target i, source j) weight is one observation at Δ_ij = wrap(PD_i − PD_j) (no
    binning, so unevenly spread preferred directions do not bias the fit). ``offset`` is where
    the pathway's first harmonic peaks: > 0 means the source excites targets CCW of its own PD
    (it pushes the bump CCW).

    Parameters
    ----------
    W : [n_target, n_source]
        The pathway's block of ``W[target, source]``.
    pd_target, pd_source : [n_target], [n_source]
        Preferred directions (rad).
    exclude : bool [n_target, n_source], optional
        Pairs to leave out (self-weights of a pathway onto its own type).
    n_boot : int
        Bootstrap resamples of the *source* units (with replacement): the interval says how
        much the offset depends on which units happen to project.
    n_perm : int
        Shuffles of the source units' PDs; the p-value is the fraction of shuffles (counting
        the data) whose variance explained reaches the data's.
    level : float
        Confidence level of the intervals.
    seed : int or Generator

    Returns
    -------
    dict with ``offset`` (rad), ``offset_lo``, ``offset_hi`` (circular percentile interval;
    may pass ±π), ``amplitude`` A and its interval, ``baseline`` c, ``r2`` (variance of the
    weights explained by the ring structure), ``p_shuffle``, ``n_pairs``, ``n_sources``.
    All NaN when the pathway has fewer than 3 sources or constant weights.
    """
    from hdbench.analysis.stats import bootstrap_counts, circular_interval, percentile_interval

    W = np.asarray(W, dtype=np.float64)
    pt = np.asarray(pd_target, dtype=np.float64).reshape(-1)
    ps = np.asarray(pd_source, dtype=np.float64).reshape(-1)
    if W.shape != (pt.size, ps.size):
        raise HdbenchError(f"W block of shape {W.shape} does not match {pt.size} target and "
                           f"{ps.size} source preferred directions")
    keep = np.ones(W.shape, dtype=bool) if exclude is None else ~np.asarray(exclude, bool)
    nan = float("nan")
    out = {"offset": nan, "offset_lo": nan, "offset_hi": nan, "amplitude": nan,
           "amplitude_lo": nan, "amplitude_hi": nan, "baseline": nan, "r2": nan,
           "p_shuffle": nan, "n_pairs": int(keep.sum()), "n_sources": int(ps.size)}
    finite = np.isfinite(pt)[:, None] & np.isfinite(ps)[None, :]
    keep = keep & finite
    if ps.size < 3 or keep.sum() < 4:
        return out
    rng = np.random.default_rng(seed)
    y = np.where(keep, W, 0.0)
    X = _design(wrap(pt[:, None] - ps[None, :])) * keep[..., None]  # [t, s, 3]
    # Per-source sufficient statistics: a bootstrap over sources is then a weighted sum.
    xtx_j = np.einsum("tsa,tsb->sab", X, X)
    xty_j = np.einsum("tsa,ts->sa", X, y)
    yty_j, sy_j, n_j = (y * y).sum(0), y.sum(0), keep.sum(0).astype(np.float64)
    coef, r2 = _solve(xtx_j.sum(0), xty_j.sum(0), yty_j.sum(), sy_j.sum(), n_j.sum())
    if not np.isfinite(r2):
        return out
    c, a, b = coef
    offset, amplitude = float(np.arctan2(b, a)), float(np.hypot(a, b))
    out.update(offset=offset, amplitude=amplitude, baseline=float(c), r2=float(r2))
    if n_boot > 0:
        w = bootstrap_counts(ps.size, int(n_boot), rng)  # [B, s]
        bc, _ = _solve(np.einsum("bs,sxy->bxy", w, xtx_j), w @ xty_j, w @ yty_j, w @ sy_j,
                       w @ n_j)
        b_off, b_amp = np.arctan2(bc[:, 2], bc[:, 1]), np.hypot(bc[:, 1], bc[:, 2])
        lo, hi = circular_interval(offset, b_off[np.isfinite(b_off)], level)
        out.update(offset_lo=float(lo), offset_hi=float(hi))
        out["amplitude_lo"], out["amplitude_hi"] = percentile_interval(b_amp, level)
    if n_perm > 0:
        out["p_shuffle"] = _shuffle_p(y, keep, pt, ps, float(r2), int(n_perm), rng)
    return out


def _shuffle_p(y, keep, pt, ps, r2, n_perm, rng, chunk: int = 128) -> float:
    """Permutation p-value of the first-harmonic R² with the source PDs shuffled."""
    ct, st = np.cos(pt), np.sin(pt)
    keepf = keep.astype(np.float64)
    n, yty, sy = keepf.sum(), (y * y).sum(), y.sum()
    reached = 0
    for start in range(0, n_perm, chunk):
        m = min(chunk, n_perm - start)
        perm = rng.permuted(np.broadcast_to(np.arange(ps.size), (m, ps.size)), axis=1)
        cs, ss = np.cos(ps)[perm], np.sin(ps)[perm]  # [m, s]
        cos_d = ct[None, :, None] * cs[:, None, :] + st[None, :, None] * ss[:, None, :]
        sin_d = st[None, :, None] * cs[:, None, :] - ct[None, :, None] * ss[:, None, :]
        cos_d, sin_d = cos_d * keepf, sin_d * keepf
        sc, ss_ = cos_d.sum((1, 2)), sin_d.sum((1, 2))
        scc, sss = (cos_d * cos_d).sum((1, 2)), (sin_d * sin_d).sum((1, 2))
        scs = (cos_d * sin_d).sum((1, 2))
        xtx = np.stack([np.stack([np.full(m, n), sc, ss_], -1), np.stack([sc, scc, scs], -1),
                        np.stack([ss_, scs, sss], -1)], -2)
        xty = np.stack([np.full(m, sy), (cos_d * y).sum((1, 2)), (sin_d * y).sum((1, 2))], -1)
        _, r2_null = _solve(xtx, xty, np.full(m, yty), np.full(m, sy), np.full(m, n))
        reached += int((r2_null >= r2 - 1e-12).sum())
    return (1 + reached) / (1 + n_perm)


def pathway_fits(W, table_or_pd, cell_types=None, *, types=RING_TYPES, n_boot: int = 1000,
                 n_perm: int = 999, level: float = 0.9, seed: int = 0) -> pd.DataFrame:
    """:func:`fit_pathway` for every (target type, source type) pair of ``types``.

    Returns one row per pair present: ``target``, ``source`` and the fit's columns.
    """
    preferred, cell_types = _types_from(table_or_pd, cell_types)
    W, preferred, cell_types = _inputs(W, preferred, cell_types)
    rows = []
    for k, target in enumerate(types):
        ti = np.nonzero(cell_types == target)[0]
        for m, source in enumerate(types):
            sj = np.nonzero(cell_types == source)[0]
            if not ti.size or not sj.size:
                continue
            fit = fit_pathway(W[np.ix_(ti, sj)], preferred[ti], preferred[sj],
                              exclude=ti[:, None] == sj[None, :], n_boot=n_boot, n_perm=n_perm,
                              level=level, seed=[seed, k, m])
            rows.append({"target": target, "source": source, **fit})
    return pd.DataFrame(rows)


@dataclass
class ConnectivitySummary:
    """Result of :func:`connectivity_summary` (angles in rad).

    Attributes
    ----------
    profiles : long DataFrame from :func:`weight_profiles` (binned, for plots and the
        profile-correlation benchmark)
    pairs : one row per (target, source) pair: the first-harmonic fit of :func:`fit_pathway`
        (``offset``, ``offset_lo``, ``offset_hi``, ``amplitude`` …, ``r2``, ``p_shuffle``) and,
        labelled as secondary, summaries of the binned profile (``argmax_offset``: Δ of its
        smoothed maximum; ``exc_lobe``, ``inh_lobe``, ``symmetry``, ``odd_amplitude``,
        ``fourier1``, …)
    ring_score : first-Fourier-mode R² over all compass and shifter units
    compass_symmetry : symmetry of the binned compass ← compass profile (NaN without compass
        units)
    shifter_offsets : {"shifter_cw": Δ, "shifter_ccw": Δ}, the fitted offset of each shifter
        type's projection onto ``offset_target`` units (NaN if absent)
    shifter_intervals : {"shifter_cw": (lo, hi), …}, their confidence intervals
    offsets_opposite : fitted CW offset < 0 < fitted CCW offset (the expected signs)
    offsets_resolved : both intervals exclude 0, CW below and CCW above
    offset_target : the target type used for ``shifter_offsets`` (resolved from ``auto``)
    level : confidence level of the intervals
    """

    profiles: pd.DataFrame
    pairs: pd.DataFrame
    ring_score: float
    compass_symmetry: float
    shifter_offsets: dict = field(default_factory=dict)
    shifter_intervals: dict = field(default_factory=dict)
    offsets_opposite: bool = False
    offsets_resolved: bool = False
    offset_target: str = "compass"
    level: float = 0.9

    def to_dict(self) -> dict:
        """JSON-friendly summary (degrees for angles, as in printed tables)."""
        return {
            "ring_score": self.ring_score, "compass_symmetry": self.compass_symmetry,
            "offset_target": self.offset_target, "level": self.level,
            "shifter_offsets_deg": {k: float(np.degrees(v)) for k, v in
                                    self.shifter_offsets.items()},
            "shifter_intervals_deg": {k: [float(np.degrees(x)) for x in v] for k, v in
                                      self.shifter_intervals.items()},
            "offsets_opposite": bool(self.offsets_opposite),
            "offsets_resolved": bool(self.offsets_resolved),
            "pairs": [{**{k: (float(np.degrees(v)) if k in _ANGLES else v)
                          for k, v in row.items()}} for row in self.pairs.to_dict("records")],
        }


_ANGLES = {"offset", "offset_lo", "offset_hi", "argmax_offset", "trough_offset"}
# Columns of the binned-profile summaries kept in ``pairs`` (secondary to the fit).
_PROFILE_COLUMNS = ("mean", "peak", "trough", "exc_lobe", "inh_lobe", "argmax_offset",
                    "trough_offset", "symmetry", "odd_amplitude", "fourier1")


def excludes_zero(lo: float, hi: float) -> int:
    """+1 when the interval (lo, hi) lies above 0, −1 below, 0 when it contains 0 or is not
    finite (intervals of angles in rad, as from :func:`fit_pathway`, at most 2π wide)."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return 0
    if 0 < lo and hi < np.pi:
        return 1
    if -np.pi < lo and hi < 0:
        return -1
    return 0


def connectivity_summary(W, table: pd.DataFrame, *, n_bins: int = 36, smooth_bins: int = 1,
                         offset_target: str = "auto", n_boot: int = 1000, n_perm: int = 999,
                         level: float = 0.9, seed: int = 0) -> ConnectivitySummary:
    """Weight profiles, first-harmonic fits and their summaries for a classified system.

    Parameters
    ----------
    W : [units, units]
        ``W[target, source]``.
    table : DataFrame
        From :func:`hdbench.analysis.classify_units` (``pd`` and ``cell_type`` columns); a
        ground-truth labelling works too.
    n_bins, smooth_bins : int
        Δ bins of the (plotted) profiles, and the half-width in bins of the smoothing used to
        locate their argmax (a secondary column).
    offset_target : str
        Target type of the headline shifter offsets: ``compass`` (as in Cueva et al.),
        ``shifter_cw``, ``shifter_ccw``, or ``auto`` (default): the target type onto which the
        shifters' projections are most lopsided (largest mean |A sin offset| of the fits,
        the odd part of the first harmonic; compass on ties). That is compass for the Cueva
        network and the fly, and the shifter rings for the rodent double ring, whose shift is
        ring-to-ring and whose compass cells only read the rings out.
    n_boot, n_perm, level, seed
        Bootstrap resamples of source units, PD shuffles, confidence level and seed of the
        fits (:func:`fit_pathway`).
    """
    if offset_target not in (*RING_TYPES, "auto"):
        raise HdbenchError(f"offset_target must be 'auto' or one of {RING_TYPES}; "
                           f"got {offset_target!r}")
    profiles = weight_profiles(W, table, n_bins=n_bins)
    fits = pathway_fits(W, table, n_boot=n_boot, n_perm=n_perm, level=level, seed=seed)
    rows = []
    for (target, source), g in profiles.groupby(["target", "source"], sort=False):
        binned = profile_summary(g["delta"].to_numpy(), g["weight"].to_numpy(),
                                 smooth_bins=smooth_bins)
        binned["argmax_offset"] = binned.pop("offset")
        binned.pop("offset_circmean")
        fit = fits[(fits["target"] == target) & (fits["source"] == source)]
        rows.append({"target": target, "source": source,
                     **fit.drop(columns=["target", "source"]).iloc[0].to_dict(),
                     **{k: binned[k] for k in _PROFILE_COLUMNS}})
    pairs = pd.DataFrame(rows)
    tuned = np.nonzero(table["cell_type"].isin(RING_TYPES).to_numpy())[0]
    score = ring_score(W, table["pd"].to_numpy(), tuned)

    def pick(target, source, column):
        if pairs.empty:
            return float("nan")
        hit = pairs[(pairs["target"] == target) & (pairs["source"] == source)]
        return float(hit[column].iloc[0]) if len(hit) else float("nan")

    if offset_target == "auto":
        shift = {}
        for t in RING_TYPES:
            odd = [abs(pick(t, s, "amplitude") * np.sin(pick(t, s, "offset")))
                   for s in ("shifter_cw", "shifter_ccw")]
            odd = [a for a in odd if np.isfinite(a)]
            if odd:
                shift[t] = float(np.mean(odd))
        offset_target = max(shift, key=lambda t: (shift[t], t == "compass")) if shift \
            else "compass"
    offsets = {s: pick(offset_target, s, "offset") for s in ("shifter_cw", "shifter_ccw")}
    intervals = {s: (pick(offset_target, s, "offset_lo"), pick(offset_target, s, "offset_hi"))
                 for s in ("shifter_cw", "shifter_ccw")}
    opposite = bool(offsets["shifter_cw"] < 0 < offsets["shifter_ccw"])
    resolved = excludes_zero(*intervals["shifter_cw"]) == -1 and \
        excludes_zero(*intervals["shifter_ccw"]) == 1
    return ConnectivitySummary(profiles=profiles, pairs=pairs, ring_score=score,
                               compass_symmetry=pick("compass", "compass", "symmetry"),
                               shifter_offsets=offsets, shifter_intervals=intervals,
                               offsets_opposite=opposite, offsets_resolved=resolved,
                               offset_target=offset_target, level=level)
