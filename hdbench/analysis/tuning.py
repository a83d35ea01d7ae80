"""HD and AV tuning of single units and their classification into cell types.

Definitions follow papers.md §1.5 and circuits.md §5. All angles are in radians, AV > 0 is a
counter-clockwise (CCW) turn, rates are in the system's own units. Tuning is computed on
noise-free trials after the cue; forced-zero-AV steps count for HD tuning but not for the AV
measures.

Classification (:func:`classify_units`), per unit:

1. ``inactive`` if its largest rate is below ``inactive_rate``;
2. ``other`` if active but not HD-tuned (resultant length ``r < min_r``);
3. otherwise by the AV asymmetry ``A`` near the preferred direction: ``shifter_ccw`` if
   ``A >= kappa``, ``shifter_cw`` if ``A <= -kappa``, else ``compass``.

``A = (r₊ − r₋) / (r₊ + r₋)`` compares the mean rate during CCW (r₊) and CW (r₋) turns within
±45° of the unit's preferred direction (papers.md §1.5), with headings taken from the system's
*decoded* heading, i.e. at a fixed bump position. Binned by the true heading instead, the lag of
the bump behind the head and its pinning in an imperfect attractor make even pure compass cells
look AV-asymmetric (|A| up to 0.06 in the jittered rodent reference, against 0.002 decoded).

The default ``kappa = 0.03`` (not the 0.2 proposed in papers.md §1.5 [B]) is set by the
references at their own AV statistics: their shifters have |A| = 0.044 (rodent) and 0.15 (fly),
their compass cells |A| < 0.01, so 0.2 would call every reference shifter a compass cell.
Trained CTRNNs show a continuum of A rather than clusters (unimodal by Silverman's test, see
:mod:`hdbench.analysis.continuum`), so their class counts depend on ``kappa``: the classes are
thresholded labels, not types (:func:`threshold_sensitivity`,
:func:`hdbench.analysis.continuum.kappa_table`). A 3-component Gaussian mixture on (r, A) of the
HD-tuned units is reported beside the rule as a check free of ``kappa`` (``cell_type_gmm``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse

from hdbench.errors import HdbenchError

TWO_PI = 2.0 * np.pi
CLASSES = ("inactive", "compass", "shifter_cw", "shifter_ccw", "other")
#: Default classification thresholds (papers.md §1.5 [B]; kappa set by the references, see above).
DEFAULT_THRESHOLDS = {"inactive_rate": 1e-3, "min_r": 0.3, "kappa": 0.03}
_CHUNK = 1 << 16  # samples per sparse product (bounds the float64 copy of the rates)


# --------------------------------------------------------------------------------------------
# Inputs


@dataclass
class TuningData:
    """Post-cue samples of one batch of trials, flattened and checked.

    Attributes
    ----------
    rates : float32 [trials, steps, units]
    heading, decoded, av : float64 [trials, steps]
        True heading (rad), the system's decoded heading (rad) and AV (rad/step).
    dt : float
        Seconds per task step.
    """

    rates: np.ndarray
    heading: np.ndarray
    decoded: np.ndarray
    av: np.ndarray
    dt: float

    @property
    def n_units(self) -> int:
        return self.rates.shape[-1]

    def flat(self, name: str) -> np.ndarray:
        arr = getattr(self, name)
        return arr.reshape(-1, arr.shape[-1]) if arr.ndim == 3 else arr.reshape(-1)


def _with_heading(data: TuningData, heading: np.ndarray) -> TuningData:
    return TuningData(rates=data.rates, heading=heading, decoded=data.decoded, av=data.av,
                      dt=data.dt)


def tuning_data(activity, trials=None, *, skip_steps: int | None = None,
                dt: float | None = None) -> TuningData:
    """Collect rates, true heading, decoded heading and AV after the cue.

    Parameters
    ----------
    activity : hdbench.system.Activity
        From ``system.simulate(trials)`` on noise-free trials.
    trials : hdbench.task.Trials, optional
        Supplies heading, AV, the cue length and ``dt`` when the activity lacks them.
    skip_steps : int, optional
        Leading steps to drop (default: the cue length of ``trials``, else 10).
    dt : float, optional
        Seconds per step (default: ``trials.spec.dt``, else 0.025).
    """
    rates = np.asarray(getattr(activity, "rates", None) if activity is not None else None)
    if rates.ndim != 3:
        raise HdbenchError(f"activity.rates must be [batch, time, units]; got shape {rates.shape}")
    heading = activity.heading if activity.heading is not None else \
        (trials.heading if trials is not None else None)
    av = activity.av if activity.av is not None else (trials.av if trials is not None else None)
    if heading is None or av is None:
        raise HdbenchError("tuning needs the true heading and AV: simulate from a Trials "
                           "object or pass trials=")
    heading, av = np.asarray(heading, dtype=np.float64), np.asarray(av, dtype=np.float64)
    if heading.shape != rates.shape[:2] or av.shape != rates.shape[:2]:
        raise HdbenchError(f"heading/AV shape {heading.shape} does not match rates "
                           f"[batch, time] = {rates.shape[:2]}")
    if skip_steps is None:
        skip_steps = trials.spec.cue_steps if trials is not None else 10
    if dt is None:
        dt = trials.spec.dt if trials is not None else 0.025
    if not 0 <= skip_steps < rates.shape[1]:
        raise HdbenchError(f"skip_steps must lie in [0, {rates.shape[1]}); got {skip_steps}")
    if not np.all(np.isfinite(rates)):
        raise HdbenchError("activity.rates contain NaN or inf")
    # A system with an all-zero readout (e.g. untrained) has no decoded heading: use the true one.
    decoded = activity.decoded_heading() if np.any(activity.outputs) else heading
    sl = slice(skip_steps, None)
    return TuningData(rates=np.ascontiguousarray(rates[:, sl], dtype=np.float32),
                      heading=np.mod(heading[:, sl], TWO_PI), decoded=decoded[:, sl],
                      av=av[:, sl], dt=float(dt))


# --------------------------------------------------------------------------------------------
# Binning


def _check_bins(n_bins: int, name: str = "n_hd_bins") -> int:
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 4:
        raise HdbenchError(f"{name} must be an integer >= 4; got {n_bins!r}")
    return int(n_bins)


def hd_bin_centers(n_bins: int) -> np.ndarray:
    """Centres (rad) of ``n_bins`` equal heading bins on [0, 2π)."""
    return (np.arange(n_bins) + 0.5) * TWO_PI / n_bins


def _hd_index(theta: np.ndarray, n_bins: int) -> np.ndarray:
    return np.minimum((np.mod(theta, TWO_PI) * (n_bins / TWO_PI)).astype(np.int64), n_bins - 1)


def binned_sums(labels: np.ndarray, n_bins: int, values: np.ndarray) -> np.ndarray:
    """Sum the rows of ``values`` [samples, k] per label in ``0..n_bins-1``.

    Labels outside that range are ignored. Chunks are summed in the values' precision (float32
    for rates) and accumulated in float64.
    """
    labels = np.asarray(labels).reshape(-1)
    values = np.asarray(values).reshape(labels.shape[0], -1)
    if values.dtype not in (np.float32, np.float64):
        values = values.astype(np.float64)
    out = np.zeros((n_bins, values.shape[1]))
    for start in range(0, labels.shape[0], _CHUNK):
        lab = labels[start:start + _CHUNK]
        cols = np.arange(lab.shape[0])
        ok = (lab >= 0) & (lab < n_bins)
        onehot = scipy.sparse.csr_matrix(
            (np.ones(int(ok.sum()), dtype=values.dtype), (lab[ok], cols[ok])),
            shape=(n_bins, lab.shape[0]))
        out += onehot @ values[start:start + _CHUNK]
    return out


def _mean(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """sums [..., units] / counts [...], NaN where a bin is empty."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts[..., None] > 0, sums / np.maximum(counts, 1)[..., None], np.nan)


def tuning_curves(activity, trials=None, *, n_bins: int = 36, against: str = "true",
                  data: TuningData | None = None):
    """Mean rate of every unit per heading bin.

    Parameters
    ----------
    activity, trials
        As in :func:`tuning_data` (ignored when ``data`` is given).
    n_bins : int
        Equal heading bins on [0, 2π) (papers.md uses 36 for classification, 99 for plots).
    against : {"true", "decoded"}
        Bin by the true heading or by the system's own decoded heading.

    Returns
    -------
    curves : [units, n_bins] mean rate (NaN in unvisited bins)
    centers : [n_bins] bin centres in rad
    occupancy : [n_bins] samples per bin
    """
    n_bins = _check_bins(n_bins, "n_bins")
    if against not in ("true", "decoded"):
        raise HdbenchError(f"against must be 'true' or 'decoded'; got {against!r}")
    data = data if data is not None else tuning_data(activity, trials)
    theta = data.flat("heading" if against == "true" else "decoded")
    idx = _hd_index(theta, n_bins)
    sums = binned_sums(idx, n_bins, data.flat("rates"))
    counts = np.bincount(idx, minlength=n_bins).astype(np.float64)
    return _mean(sums, counts).T, hd_bin_centers(n_bins), counts


def _av_edges(av: np.ndarray, n_av_bins: int, central: float = 0.98):
    """Quantile edges for the negative and positive AV halves (no bin straddles zero)."""
    if n_av_bins < 2 or n_av_bins % 2:
        raise HdbenchError(f"n_av_bins must be an even integer >= 2; got {n_av_bins}")
    half = n_av_bins // 2
    lo, hi = np.quantile(av, [(1 - central) / 2, 1 - (1 - central) / 2])
    probs = np.linspace(0.0, 1.0, half + 1)
    neg, pos = av[(av < 0) & (av >= lo)], av[(av > 0) & (av <= hi)]
    neg_edges = np.quantile(neg, probs) if neg.size else np.full(half + 1, np.nan)
    pos_edges = np.quantile(pos, probs) if pos.size else np.full(half + 1, np.nan)
    return neg_edges, pos_edges


def _av_index(av: np.ndarray, neg_edges: np.ndarray, pos_edges: np.ndarray) -> np.ndarray:
    """Bin index: negatives 0..h-1, exact zero h, positives h+1..2h (outliers clipped)."""
    half = neg_edges.shape[0] - 1
    idx = np.full(av.shape, half, dtype=np.int64)
    neg, pos = av < 0, av > 0
    if np.isfinite(neg_edges).all():
        idx[neg] = np.clip(np.searchsorted(neg_edges[1:-1], av[neg], side="right"), 0, half - 1)
    if np.isfinite(pos_edges).all():
        idx[pos] = half + 1 + np.clip(np.searchsorted(pos_edges[1:-1], av[pos], side="right"),
                                      0, half - 1)
    return idx


@dataclass
class JointMap:
    """Mean rate per (heading bin, AV bin).

    Attributes
    ----------
    rates : [units, n_hd, n_av + 1]  (NaN where empty); AV bin ``n_av // 2`` holds AV == 0
    counts : [n_hd, n_av + 1] samples per bin
    hd_centers : [n_hd] rad
    av_centers : [n_av + 1] mean AV of the samples in each AV bin (rad/step), pooled over HD
    sums, av_sums : raw per-bin sums of rates [n_hd, n_av + 1, units] and of AV
    """

    rates: np.ndarray
    counts: np.ndarray
    hd_centers: np.ndarray
    av_centers: np.ndarray
    sums: np.ndarray
    av_sums: np.ndarray


def hd_av_map(activity, trials=None, *, n_hd_bins: int = 36, n_av_bins: int = 20,
              against: str = "true", data: TuningData | None = None) -> JointMap:
    """Joint HD × AV tuning maps of every unit.

    AV bins are quantile bins of the negative and positive AV halves separately, over the
    central 98 % of AV (outliers go to the outermost bins); the forced-zero steps form their
    own middle bin. ``against="decoded"`` bins by the system's decoded heading.
    """
    n_hd = _check_bins(n_hd_bins)
    if against not in ("true", "decoded"):
        raise HdbenchError(f"against must be 'true' or 'decoded'; got {against!r}")
    data = data if data is not None else tuning_data(activity, trials)
    if against == "decoded":
        data = _with_heading(data, data.decoded)
    av = data.flat("av")
    neg_edges, pos_edges = _av_edges(av, int(n_av_bins))
    n_av = int(n_av_bins) + 1
    label = _hd_index(data.flat("heading"), n_hd) * n_av + _av_index(av, neg_edges, pos_edges)
    n_lab = n_hd * n_av
    sums = binned_sums(label, n_lab, data.flat("rates")).reshape(n_hd, n_av, -1)
    counts = np.bincount(label, minlength=n_lab).astype(np.float64).reshape(n_hd, n_av)
    av_sums = np.bincount(label, weights=av, minlength=n_lab).reshape(n_hd, n_av)
    with np.errstate(invalid="ignore", divide="ignore"):
        av_centers = av_sums.sum(0) / counts.sum(0)
    return JointMap(rates=np.moveaxis(_mean(sums, counts), -1, 0), counts=counts,
                    hd_centers=hd_bin_centers(n_hd), av_centers=av_centers, sums=sums,
                    av_sums=av_sums)


def av_tuning_curves(activity, trials=None, *, n_av_bins: int = 20,
                     data: TuningData | None = None):
    """Mean rate of every unit per AV bin, pooled over headings.

    Returns
    -------
    curves : [units, n_av + 1]; centers : [n_av + 1] mean AV per bin in rad/step
    """
    jm = hd_av_map(activity, trials, n_hd_bins=4, n_av_bins=n_av_bins, data=data)
    counts = jm.counts.sum(0)
    return _mean(jm.sums.sum(0), counts).T, jm.av_centers


# --------------------------------------------------------------------------------------------
# Per-curve statistics


def circular_stats(curves: np.ndarray, centers: np.ndarray):
    """Preferred direction (circular mean) and resultant length of tuning curves [units, bins].

    Empty (NaN) bins are ignored; negative rates are clipped to 0 (a resultant length needs
    non-negative weights).
    """
    c = np.nan_to_num(np.clip(curves, 0.0, None))
    vec = c @ np.exp(1j * centers)
    total = c.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(total > 0, np.abs(vec) / np.where(total > 0, total, 1.0), 0.0)
    return np.mod(np.angle(vec), TWO_PI), r


def fwhm(curves: np.ndarray) -> np.ndarray:
    """Full width at half maximum (rad) of circular tuning curves [units, bins].

    Half maximum is halfway between the curve's minimum and maximum; the width is the
    contiguous arc around the peak above it, with linear interpolation at the crossings.
    Flat curves give NaN; curves above half maximum everywhere give 2π.
    """
    curves = np.atleast_2d(curves)
    n = curves.shape[-1]
    step = TWO_PI / n
    out = np.full(curves.shape[0], np.nan)
    for i, raw in enumerate(curves):
        c = np.where(np.isnan(raw), np.nanmin(raw) if np.isfinite(raw).any() else 0.0, raw)
        lo, hi = c.min(), c.max()
        if not hi > lo:
            continue
        half = lo + 0.5 * (hi - lo)
        peak = int(np.argmax(c))
        width = 0.0
        for direction in (1, -1):
            k = 0
            while k < n and c[(peak + direction * (k + 1)) % n] >= half:
                k += 1
            if k >= n - 1:
                width = TWO_PI
                break
            inside, outside = c[(peak + direction * k) % n], c[(peak + direction * (k + 1)) % n]
            width += (k + (inside - half) / (inside - outside)) * step
        out[i] = min(width, TWO_PI)
    return out


def skaggs_information(curves: np.ndarray, occupancy: np.ndarray) -> np.ndarray:
    """Skaggs information Σ p_k (r_k / r̄) log2(r_k / r̄) in bits per unit of rate (per spike)."""
    curves = np.clip(np.nan_to_num(np.atleast_2d(curves)), 0.0, None)
    p = np.asarray(occupancy, dtype=np.float64)
    p = p / p.sum()
    mean = curves @ p
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = curves / np.where(mean > 0, mean, 1.0)[:, None]
        terms = np.where(ratio > 0, ratio * np.log2(np.where(ratio > 0, ratio, 1.0)), 0.0)
    return np.where(mean > 0, terms @ p, 0.0)


def population_vector(rates: np.ndarray, preferred: np.ndarray, units=None):
    """Population-vector heading and strength of rates [..., units].

    Returns ``(angle in [0, 2π), |Σ r_i e^{iPD_i}|)`` over ``units`` (default: all).
    """
    rates = np.asarray(rates)
    preferred = np.asarray(preferred, dtype=np.float64)
    if units is not None:
        rates, preferred = rates[..., units], preferred[units]
    vec = np.clip(rates, 0.0, None) @ np.exp(1j * preferred)
    return np.mod(np.angle(vec), TWO_PI), np.abs(vec)


def _circ_window(centers: np.ndarray, preferred: np.ndarray, half_width: float) -> np.ndarray:
    """[units, bins] fraction of each heading bin inside PD ± ``half_width``.

    Fractional edge bins keep the window symmetric about the PD wherever the PD falls relative
    to the bin grid (a lopsided window turns the lag of a bump into a spurious AV asymmetry).
    """
    step = TWO_PI / centers.shape[0]
    d = np.abs(np.angle(np.exp(1j * (centers[None, :] - preferred[:, None]))))
    return np.clip((half_width + step / 2 - d) / step, 0.0, 1.0)


def _weighted_slope(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted least-squares slope of y on x along the last axis (NaN-safe)."""
    w = np.where(np.isfinite(y) & np.isfinite(x), w, 0.0)
    x, y = np.nan_to_num(x), np.nan_to_num(y)
    sw = w.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx, my = (w * x).sum(-1) / sw, (w * y).sum(-1) / sw
        cov = (w * (x - mx[..., None]) * (y - my[..., None])).sum(-1)
        var = (w * (x - mx[..., None]) ** 2).sum(-1)
        return np.where(var > 0, cov / np.where(var > 0, var, 1.0), np.nan)


def av_measures(jm: JointMap, preferred: np.ndarray, dt: float, window: float = np.pi / 4):
    """AV asymmetry and CW / CCW AV slopes near each unit's preferred direction.

    Within the heading bins whose centres lie within ``window`` of PD_i:

    - ``asymmetry`` A = (r₊ − r₋) / (r₊ + r₋), r± the mean over those bins of the rate during
      CCW (AV > 0) and CW (AV < 0) turns; zero-AV steps are excluded. A > 0: more active in
      CCW turns.
    - ``slope_ccw``: d rate / d AV over CCW turns; ``slope_cw``: d rate / d |AV| over CW turns,
      both in rate per (rad/s). A symmetric AHV cell has both > 0; a CCW shifter has
      ``slope_ccw > 0`` and ``slope_cw <= 0``.
    """
    n_av = jm.counts.shape[1]
    half = n_av // 2
    neg, pos = slice(0, half), slice(half + 1, n_av)
    win = _circ_window(jm.hd_centers, preferred, window)  # [units, hd] weights in [0, 1]
    # Per HD bin: mean rate over CW and over CCW samples.
    cnt_neg, cnt_pos = jm.counts[:, neg].sum(1), jm.counts[:, pos].sum(1)
    r_neg = _mean(jm.sums[:, neg].sum(1), cnt_neg)  # [hd, units]
    r_pos = _mean(jm.sums[:, pos].sum(1), cnt_pos)
    usable = (cnt_neg > 0) & (cnt_pos > 0)
    w = win * usable[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        rp = (w * np.nan_to_num(r_pos.T)).sum(1) / w.sum(1)
        rn = (w * np.nan_to_num(r_neg.T)).sum(1) / w.sum(1)
        tot = rp + rn
        asym = np.where(tot > 0, (rp - rn) / np.where(tot > 0, tot, 1.0), 0.0)
    asym = np.where(w.sum(1) > 0, asym, np.nan)
    # Pool the window bins per AV bin, then regress rate on AV.
    s = np.einsum("ik,kbi->ib", win, jm.sums)  # [units, av bins]
    c = win @ jm.counts
    a = win @ jm.av_sums
    with np.errstate(invalid="ignore", divide="ignore"):
        rate, av = s / c, a / c
    slope_ccw = _weighted_slope(av[:, pos], rate[:, pos], c[:, pos]) * dt
    slope_cw = _weighted_slope(-av[:, neg], rate[:, neg], c[:, neg]) * dt
    return asym, slope_cw, slope_ccw


def anticipatory_time(data: TuningData, *, n_bins: int = 36, max_shift_s: float = 0.2,
                      max_samples: int = 200_000) -> np.ndarray:
    """Anticipatory time interval (s) per unit by the time-shift method (circuits.md §5).

    Rates at step t are paired with the heading at t + s for shifts s within ±``max_shift_s``;
    the ATI is the shift that maximises the Skaggs information of the shifted tuning curve
    (parabolic refinement between steps). Positive: the unit fires before the head reaches
    its preferred direction. NaN when the maximum lies on the edge of the search range (no
    interior optimum) or the unit is untuned. Uses at most ``max_samples`` samples (whole
    trials).
    """
    B, T, N = data.rates.shape
    S = int(round(max_shift_s / data.dt))
    if S < 1 or T <= 2 * S + 1:
        return np.full(N, np.nan)
    n_trials = max(1, min(B, max_samples // T))
    rates = data.rates[:n_trials].reshape(-1, N)
    hd = _hd_index(data.heading[:n_trials], n_bins)  # [trials, T]
    shifts = np.arange(-S, S + 1)
    info = np.empty((shifts.size, N))
    for j, s in enumerate(shifts):
        labels = np.full((n_trials, T), -1, dtype=np.int64)  # -1: no partner, ignored
        lo, hi = max(0, -s), T - max(0, s)  # rate at t is paired with heading at t + s
        labels[:, lo:hi] = hd[:, lo + s:hi + s]
        labels = labels.reshape(-1)
        sums = binned_sums(labels, n_bins, rates)
        counts = np.bincount(labels[labels >= 0], minlength=n_bins).astype(np.float64)
        info[j] = skaggs_information(_mean(sums, counts).T, counts)
    best = np.argmax(info, axis=0)
    ati = shifts[best].astype(np.float64)
    inner = (best > 0) & (best < shifts.size - 1)
    i = np.nonzero(inner)[0]
    y0, y1, y2 = info[best[i] - 1, i], info[best[i], i], info[best[i] + 1, i]
    denom = y0 - 2 * y1 + y2
    with np.errstate(invalid="ignore", divide="ignore"):
        ati[i] += np.where(denom < 0, 0.5 * (y0 - y2) / np.where(denom < 0, denom, -1.0), 0.0)
    flat = info.max(0) - info.min(0) <= 1e-12
    return np.where(flat | ~inner, np.nan, ati * data.dt)


# --------------------------------------------------------------------------------------------
# Classification


def _thresholds(**thresholds) -> dict:
    unknown = set(thresholds) - set(DEFAULT_THRESHOLDS)
    if unknown:
        raise HdbenchError(f"unknown thresholds {sorted(unknown)}; known: "
                           f"{', '.join(DEFAULT_THRESHOLDS)}")
    out = {**DEFAULT_THRESHOLDS, **{k: v for k, v in thresholds.items() if v is not None}}
    for name, value in out.items():
        if not (np.isfinite(value) and value >= 0):
            raise HdbenchError(f"threshold {name} must be a finite number >= 0; got {value!r}")
    return out


def assign_cell_types(table: pd.DataFrame, **thresholds) -> pd.Series:
    """Cell types from a tuning table (columns ``max_rate``, ``r``, ``av_asymmetry``).

    Thresholds: ``inactive_rate`` (max rate below it: inactive), ``min_r`` (resultant length
    for HD tuning), ``kappa`` (|AV asymmetry| for a shifter). See the module docstring.
    """
    th = _thresholds(**thresholds)
    missing = {"max_rate", "r", "av_asymmetry"} - set(table.columns)
    if missing:
        raise HdbenchError(f"tuning table lacks columns {sorted(missing)}")
    a = table["av_asymmetry"].to_numpy(dtype=np.float64)
    labels = np.where(a >= th["kappa"], "shifter_ccw",
                      np.where(a <= -th["kappa"], "shifter_cw", "compass")).astype(object)
    labels[~(table["r"].to_numpy() >= th["min_r"])] = "other"
    labels[~(table["max_rate"].to_numpy() >= th["inactive_rate"])] = "inactive"
    return pd.Series(labels, index=table.index, name="cell_type")


def gmm_cell_types(table: pd.DataFrame, *, inactive_rate: float = 1e-3, min_r: float = 0.3,
                   n_components: int = 3, seed: int = 0) -> pd.Series:
    """Check of the ``kappa`` split: a Gaussian mixture on (r, A) of the HD-tuned units.

    It is fitted to the active, HD-tuned units (``r >= min_r``) and needs no AV threshold.
    Components are named by their mean A: lowest ``shifter_cw``, highest ``shifter_ccw``, the
    rest ``compass``; units outside the fit keep ``inactive`` / ``other``. The mixture always
    finds ``n_components`` groups, so it confirms the threshold rule, it does not replace it.
    """
    from sklearn.mixture import GaussianMixture
    from threadpoolctl import threadpool_limits

    labels = np.where(table["max_rate"].to_numpy() >= inactive_rate, "other",
                      "inactive").astype(object)
    tuned = (labels == "other") & (table["r"].to_numpy() >= min_r) & \
        np.isfinite(table["av_asymmetry"].to_numpy())
    X = table.loc[tuned, ["r", "av_asymmetry"]].to_numpy(dtype=np.float64)
    if X.shape[0] < 3 * n_components:
        labels[tuned] = "unclustered"
        return pd.Series(labels, index=table.index, name="cell_type_gmm")
    with threadpool_limits(1):  # tiny problem: BLAS threads only add overhead
        gmm = GaussianMixture(n_components=n_components, covariance_type="full", n_init=4,
                              reg_covar=1e-5, random_state=seed).fit(X)
    order = np.argsort(gmm.means_[:, 1])
    names = np.full(n_components, "compass", dtype=object)
    names[order[0]], names[order[-1]] = "shifter_cw", "shifter_ccw"
    labels[tuned] = names[gmm.predict(X)]
    return pd.Series(labels, index=table.index, name="cell_type_gmm")


def unit_tuning_table(activity, trials=None, *, n_hd_bins: int = 36, n_av_bins: int = 20,
                      window: float = np.pi / 4, max_shift_s: float = 0.2,
                      skip_steps: int | None = None, dt: float | None = None) -> pd.DataFrame:
    """Per-unit tuning statistics, one row per unit (no classification).

    Columns: ``max_rate``, ``mean_rate``, ``peak_rate`` (max of the HD tuning curve),
    ``pd`` (rad, circular mean), ``r`` (resultant length), ``fwhm`` (rad), ``info`` (Skaggs,
    bits/spike), ``pd_decoded`` and ``r_decoded`` (against the decoded heading),
    ``av_slope_cw`` and ``av_slope_ccw`` (rate per rad/s, see :func:`av_measures`),
    ``av_asymmetry``, ``av_slope_norm`` (speed-normalised signed AV slope, see
    :func:`normalised_av_slope`), ``ati`` (s). ``table.attrs["av_sd"]`` holds the SD (rad/s)
    of the trials' non-zero AV after the cue.
    """
    data = tuning_data(activity, trials, skip_steps=skip_steps, dt=dt)
    curves, _, counts = tuning_curves(None, n_bins=n_hd_bins, data=data)
    pd_, r = circular_stats(curves, hd_bin_centers(n_hd_bins))
    # AV measures at a fixed bump position: binned by the decoded heading, so that the bump's
    # lag behind the true heading (and its pinning in an imperfect attractor) cannot pass for
    # an AV asymmetry (see the module docstring).
    jm = hd_av_map(None, data=data, against="decoded", n_hd_bins=n_hd_bins,
                   n_av_bins=n_av_bins)
    pd_dec, r_dec = circular_stats(_mean(jm.sums.sum(1), jm.counts.sum(1)).T, jm.hd_centers)
    asym, slope_cw, slope_ccw = av_measures(jm, pd_dec, data.dt, window)
    rates = data.flat("rates")
    table = pd.DataFrame({
        "max_rate": rates.max(0).astype(np.float64),
        "mean_rate": rates.mean(0, dtype=np.float64),
        "peak_rate": np.nanmax(np.where(np.isnan(curves), -np.inf, curves), axis=1),
        "pd": pd_, "r": r, "fwhm": fwhm(curves),
        "info": skaggs_information(curves, counts),
        "pd_decoded": pd_dec, "r_decoded": r_dec,
        "av_slope_cw": slope_cw, "av_slope_ccw": slope_ccw, "av_asymmetry": asym,
        "ati": anticipatory_time(data, n_bins=n_hd_bins, max_shift_s=max_shift_s),
    })
    av = data.flat("av")
    moving = av[av != 0]
    av_sd = float(moving.std() / data.dt) if moving.size > 1 else float("nan")
    peak = table["peak_rate"].to_numpy()
    table["av_slope_norm"] = normalised_av_slope(slope_cw, slope_ccw, peak, av_sd)
    table.index.name = "unit"
    table.attrs["av_sd"] = av_sd
    return table


def normalised_av_slope(slope_cw, slope_ccw, peak_rate, av_sd: float) -> np.ndarray:
    """Signed AV slope per unit of the trials' AV SD, relative to the peak rate.

    ``½ (slope_ccw − slope_cw) × av_sd / peak_rate``: the fractional change of a unit's rate
    near its preferred direction for a CCW turn of one SD (> 0: more active in CCW turns).
    Unlike the asymmetry A, which grows with the AV range the trials cover, it compares units
    of systems tested at different speeds. NaN for units without a peak.
    """
    peak = np.asarray(peak_rate, dtype=np.float64)
    slope = 0.5 * (np.asarray(slope_ccw, dtype=np.float64) - np.asarray(slope_cw, np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(peak > 0, slope * float(av_sd) / np.where(peak > 0, peak, 1.0), np.nan)


def classify_units(activity, trials=None, *, inactive_rate: float | None = None,
                   min_r: float | None = None, kappa: float | None = None,
                   n_hd_bins: int = 36, n_av_bins: int = 20, window: float = np.pi / 4,
                   max_shift_s: float = 0.2, gmm: bool = True, seed: int = 0) -> pd.DataFrame:
    """Tuning statistics and a cell type for every unit.

    Parameters
    ----------
    activity : hdbench.system.Activity
        Noise-free simulation of ``trials`` (heading and AV must be known).
    trials : hdbench.task.Trials, optional
        The trials simulated (cue length and ``dt``); needed if the activity lacks heading/AV.
    inactive_rate, min_r, kappa : float, optional
        Classification thresholds (defaults in :data:`DEFAULT_THRESHOLDS`: 1e-3, 0.3, 0.03).
    n_hd_bins, n_av_bins : int
        Heading bins on [0, 2π) and AV quantile bins (half CW, half CCW).
    window : float
        Half-width (rad) of the heading window around PD used for the AV measures.
    max_shift_s : float
        Range of the time-shift search for the anticipatory time interval.
    gmm : bool
        Add the Gaussian-mixture labels free of ``kappa`` (``cell_type_gmm``).
    seed : int
        Seed of the mixture fit.

    Returns
    -------
    pandas.DataFrame
        One row per unit (index ``unit``): the columns of :func:`unit_tuning_table`,
        ``cell_type`` in ``inactive, compass, shifter_cw, shifter_ccw, other``, optionally
        ``cell_type_gmm``, and ``true_type`` when the activity carries ground-truth labels.
        ``table.attrs["thresholds"]`` holds the thresholds used.
    """
    th = _thresholds(inactive_rate=inactive_rate, min_r=min_r, kappa=kappa)
    table = unit_tuning_table(activity, trials, n_hd_bins=n_hd_bins, n_av_bins=n_av_bins,
                              window=window, max_shift_s=max_shift_s)
    table["cell_type"] = assign_cell_types(table, **th)
    if gmm:
        table["cell_type_gmm"] = gmm_cell_types(table, inactive_rate=th["inactive_rate"],
                                                min_r=th["min_r"], seed=seed)
    truth = getattr(activity, "cell_types", None)
    if truth is not None:
        if len(truth) != len(table):
            raise HdbenchError(f"activity.cell_types has {len(truth)} labels for "
                               f"{len(table)} units")
        table["true_type"] = list(truth)
    table.attrs["thresholds"] = th
    return table


def class_counts(table_or_labels) -> dict:
    """Units per class, in the order of :data:`CLASSES` (zeros included)."""
    labels = table_or_labels["cell_type"] if isinstance(table_or_labels, pd.DataFrame) \
        else pd.Series(table_or_labels)
    counts = labels.value_counts()
    return {c: int(counts.get(c, 0)) for c in CLASSES}


def gmm_agreement(table: pd.DataFrame) -> float:
    """Fraction of HD-tuned units (threshold rule) whose mixture label is the same."""
    tuned = table["cell_type"].isin(["compass", "shifter_cw", "shifter_ccw"])
    if "cell_type_gmm" not in table or not tuned.any():
        return float("nan")
    return float((table.loc[tuned, "cell_type"] == table.loc[tuned, "cell_type_gmm"]).mean())


def threshold_sensitivity(table: pd.DataFrame, factors=(0.5, 0.75, 1.0, 1.25, 1.5),
                          **thresholds) -> pd.DataFrame:
    """Class fractions as each threshold is scaled by ``factors`` (others at their values).

    Returns a DataFrame with columns ``threshold``, ``factor``, ``value`` and one fraction
    column per class.
    """
    base = _thresholds(**{**table.attrs.get("thresholds", {}), **thresholds})
    rows = []
    for name in DEFAULT_THRESHOLDS:
        for f in factors:
            th = {**base, name: base[name] * float(f)}
            counts = class_counts(assign_cell_types(table, **th))
            n = max(sum(counts.values()), 1)
            rows.append({"threshold": name, "factor": float(f), "value": th[name],
                         **{c: counts[c] / n for c in CLASSES}})
    return pd.DataFrame(rows)


def compare_cell_types(predicted, truth, *, exclude=("inhibitory",)) -> dict:
    """Agreement of predicted cell types with ground-truth labels.

    Units whose true label is in ``exclude`` are left out of the accuracy: ``inhibitory`` is an
    anatomical (sign-of-output) label that tuning cannot see; how they were classified is
    reported under ``excluded``.

    Returns
    -------
    dict with ``accuracy`` (fraction of compared units with the same label), ``n_compared``,
    ``confusion`` (DataFrame: rows true, columns predicted) and ``excluded`` (predicted
    counts of the excluded units).
    """
    predicted = np.asarray(predicted, dtype=object)
    truth = np.asarray(truth, dtype=object)
    if predicted.shape != truth.shape:
        raise HdbenchError(f"{predicted.shape[0]} predicted labels for {truth.shape[0]} true ones")
    keep = ~np.isin(truth, list(exclude))
    confusion = pd.crosstab(pd.Series(truth[keep], name="true"),
                            pd.Series(predicted[keep], name="predicted"))
    excluded = pd.Series(predicted[~keep]).value_counts().to_dict()
    n = int(keep.sum())
    acc = float((predicted[keep] == truth[keep]).mean()) if n else float("nan")
    return {"accuracy": acc, "n_compared": n, "confusion": confusion,
            "excluded": {str(k): int(v) for k, v in excluded.items()}}
