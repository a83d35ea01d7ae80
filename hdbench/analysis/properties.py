"""Single-cell and population properties measured as the papers measured them, in their units.

Each function takes what any system provides (its simulated activity on task trials, its
weights, its tuning table) and returns a property in the unit of the paper that reported it:
degrees, milliseconds, degrees per second, or a fraction. These are the measurements of the
property benchmarks (:mod:`hdbench.scoring.property_benchmarks`), which compare them with
published values.

Populations come from the analysis's cell types (:func:`hdbench.analysis.classify_units`),
ground-truth labels unused, so a reference circuit is measured exactly as a model is:

- ``compass`` units stand for rodent ADN / PoS head-direction cells and fly E-PG neurons;
- ``shifter_cw`` and ``shifter_ccw`` units stand for rodent LMN / DTN conjunctive HD × AHV cells
  and fly P-EN neurons (a CCW shifter is excited by CCW turns, AV > 0);
- every active unit is a candidate "upstream" cell for the fraction of AHV-modulated cells (a
  model has no anatomical DTN).

Angles are radians internally and AV > 0 is a counter-clockwise (CCW) turn; only the returned
properties are in paper units. Rates are normalised per unit by their largest value before
population averages (bump profile, population vectors), as a correlation or a ΔF/F would be
insensitive to each cell's gain.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hdbench.analysis.tuning import (
    binned_sums,
    circular_stats,
    hd_bin_centers,
    tuning_curves,
    tuning_data,
)
from hdbench.errors import HdbenchError

TWO_PI = 2.0 * np.pi
SHIFTER_TYPES = ("shifter_cw", "shifter_ccw")
#: Turning-speed bins (°/s) of the P-EN lead (Turner-Evans et al. 2017, Fig. 9G): slow turns
#: and the fastest bin reported.
LEAD_BINS_DEG_S = {"slow": (0.0, 30.0), "fast": (150.0, 180.0)}
#: AV bin width (°/s) of the P-EN rotational-velocity tuning curves (Turner-Evans et al. 2017).
AV_BIN_DEG_S = 12.0
#: Fewest samples in an AV bin for it to enter a sigmoid fit.
MIN_BIN_SAMPLES = 20
#: Range of the sigmoid's 10–90 % rise the fit may return (°/s): wider rises are beyond what
#: any task's AV range can show.
BANDWIDTH_RANGE_DEG_S = (5.0, 2000.0)
#: AV modulation contrast (max − min) / (max + min) of the heading-pooled AV tuning curve above
#: which a unit counts as AHV-modulated (a rate ratio of 1.22 across the turns of the task).
AHV_CONTRAST = 0.1
#: Fraction of a projection's largest weight that its centre is computed from.
LOBE_FRACTION = 0.75
#: Samples used by the costlier population measurements (packet, ATI): whole trials, strided.
MAX_SAMPLES = 65_536
#: Fewest units of a population for its population vector (packet, lead) to be measured.
MIN_POPULATION = 6
#: Split-half correlation of the HD tuning curve a compass or shifter unit needs (stability).
MIN_STABILITY = 0.5
_LN81 = 2.0 * math.log(9.0)  # 10–90 % rise of a logistic = ln(81) / slope


def _wrap(angle):
    """Angle(s) wrapped to [−π, π)."""
    return np.mod(np.asarray(angle) + np.pi, TWO_PI) - np.pi


def _indices(units, n_units: int) -> np.ndarray:
    idx = np.asarray(units, dtype=np.int64).reshape(-1)
    if idx.size and (idx.min() < 0 or idx.max() >= n_units):
        raise HdbenchError(f"unit indices must lie in [0, {n_units}); got {idx.min()}…{idx.max()}")
    return idx


def _trial_stride(data, max_samples: int) -> slice:
    """Every k-th trial, k the smallest keeping at most ``max_samples`` samples (at least one
    trial): a cheaper, still representative mix of the trials."""
    B, T = data.rates.shape[:2]
    return slice(None, None, max(1, math.ceil(B * T / max_samples)))


def _normalised(rates: np.ndarray) -> np.ndarray:
    """[samples, units] rates divided by each unit's largest rate (silent units stay 0)."""
    peak = np.clip(rates, 0.0, None).max(0)
    return np.clip(rates, 0.0, None) / np.where(peak > 0, peak, 1.0)


# --------------------------------------------------------------------------------------------
# Populations


def _hd_curves(rates: np.ndarray, heading: np.ndarray, n_bins: int) -> np.ndarray:
    """[units, n_bins] mean rate per heading bin of rates [trials, steps, units]."""
    idx = np.minimum((np.mod(heading, TWO_PI) * (n_bins / TWO_PI)).astype(np.int64),
                     n_bins - 1).reshape(-1)
    sums = binned_sums(idx, n_bins, rates.reshape(idx.size, -1))
    counts = np.bincount(idx, minlength=n_bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], np.nan)).T


def split_half_stability(data, n_bins: int = 36) -> np.ndarray:
    """Correlation of each unit's HD tuning curve between even and odd trials (NaN if flat).

    The stability criterion of HD-cell studies (circuits.md §5): a unit whose "tuning" comes
    from a few sparse events at random headings, as in an untrained network, is not stable.
    """
    if data.rates.shape[0] < 2:
        return np.full(data.n_units, np.nan)
    halves = [_hd_curves(data.rates[k::2], data.heading[k::2], n_bins) for k in (0, 1)]
    a, b = (np.nan_to_num(h - np.nanmean(h, axis=1, keepdims=True)) for h in halves)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a * b).sum(1) / np.sqrt((a**2).sum(1) * (b**2).sum(1))


@dataclass(frozen=True)
class Populations:
    """Which units stand for which cells, with their preferred directions.

    Attributes
    ----------
    compass, shifters, active : int arrays of unit indices
    shifter_sign : +1 for CCW shifters, −1 for CW shifters (aligned with ``shifters``)
    preferred : [units] preferred direction (rad) of every unit, from its HD tuning curve
    """

    compass: np.ndarray
    shifters: np.ndarray
    shifter_sign: np.ndarray
    active: np.ndarray
    preferred: np.ndarray

    @classmethod
    def from_table(cls, table: pd.DataFrame, stability=None,
                   min_stability: float = MIN_STABILITY) -> Populations:
        """From a :func:`~hdbench.analysis.classify_units` table (``cell_type``, ``pd``).

        ``stability`` (one value per unit, :func:`split_half_stability`) keeps only units at or
        above ``min_stability`` in the compass and shifter populations.
        """
        missing = {"cell_type", "pd"} - set(table.columns)
        if missing:
            raise HdbenchError(f"tuning table lacks columns {sorted(missing)}")
        types = table["cell_type"].to_numpy()
        stable = np.ones(len(types), dtype=bool) if stability is None else \
            np.asarray(stability, dtype=np.float64) >= min_stability
        shifters = np.nonzero(np.isin(types, SHIFTER_TYPES) & stable)[0]
        return cls(compass=np.nonzero((types == "compass") & stable)[0], shifters=shifters,
                   shifter_sign=np.where(types[shifters] == "shifter_ccw", 1.0, -1.0),
                   active=np.nonzero(types != "inactive")[0],
                   preferred=table["pd"].to_numpy(dtype=np.float64))


# --------------------------------------------------------------------------------------------
# Bump (activity packet) width


def bump_profile(data, units, preferred, n_bins: int = 72):
    """Mean normalised rate of ``units`` against the distance of their preferred direction from
    the population vector of the population, at every sample (of at most
    :data:`MAX_SAMPLES`, whole trials).

    This is the activity packet seen from its own centre: the E-PG bump in the ellipsoid body
    (Turner-Evans et al. 2017; Kim et al. 2017) or the ADN / PoS packet (Peyrache et al. 2015).

    Parameters
    ----------
    data : :class:`hdbench.analysis.tuning.TuningData`
    units : indices of the population
    preferred : [all units] preferred directions (rad)
    n_bins : bins of the offset on [−π, π)

    Returns
    -------
    profile : [n_bins] mean normalised rate (NaN where no sample fell)
    centers : [n_bins] offset bin centres (rad, from −π; offset 0 is bin n_bins // 2)
    """
    units = _indices(units, data.n_units)
    centers = np.arange(n_bins) * (TWO_PI / n_bins) - np.pi  # offset 0 is bin n_bins // 2
    if units.size < MIN_POPULATION:
        return np.full(n_bins, np.nan), centers
    rates = data.rates[_trial_stride(data, MAX_SAMPLES)][..., units]
    rates = _normalised(rates.reshape(-1, units.size).astype(np.float64))
    pd_ = np.asarray(preferred, dtype=np.float64)[units]
    unit_vec = np.exp(1j * pd_)
    # Each unit is placed relative to the population vector of the *other half* of the units
    # (alternate units in order of preferred direction): its own activity would pull the centre
    # onto its preferred direction (a narrower packet), and leaving only itself out would push
    # the centre away (a wider one).
    half = np.zeros(units.size, dtype=bool)
    half[np.argsort(np.mod(pd_, TWO_PI))[::2]] = True
    centre = np.empty((rates.shape[0], units.size), dtype=np.complex128)
    for mine in (half, ~half):
        centre[:, mine] = (rates[:, ~mine] @ unit_vec[~mine])[:, None]
    seen = np.abs(centre) > 0
    offset = np.angle(unit_vec[None, :] * np.conj(centre))
    idx = np.mod(np.rint((offset + np.pi) * (n_bins / TWO_PI)).astype(np.int64), n_bins)
    idx = np.where(seen, idx, n_bins)  # no centre: dropped below
    sums = np.bincount(idx.ravel(), weights=rates.ravel(), minlength=n_bins + 1)[:n_bins]
    counts = np.bincount(idx.ravel(), minlength=n_bins + 1)[:n_bins].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        profile = np.where(counts > 0, sums / counts, np.nan)
    return profile, centers


def bump_fwhm(data, units, preferred, n_bins: int = 72) -> float:
    """Full width at half maximum (rad) of :func:`bump_profile` around its centre (offset 0).

    Half maximum lies halfway between the profile's minimum and maximum; the width is the
    contiguous arc around offset 0 above it, interpolated linearly at the crossings (2π if the
    profile never falls below it). NaN when there is no packet: fewer than
    :data:`MIN_POPULATION` units, or the profile at its own centre below half maximum
    (scattered, incoherent activity).
    """
    profile, _ = bump_profile(data, units, preferred, n_bins)
    if not np.isfinite(profile).any():
        return math.nan
    c = np.where(np.isfinite(profile), profile, np.nanmin(profile))
    lo, hi = c.min(), c.max()
    half = lo + 0.5 * (hi - lo)
    k0 = n_bins // 2
    if not (hi > lo and c[k0] >= half):
        return math.nan
    step = TWO_PI / n_bins
    width = 0.0
    for direction in (1, -1):
        k = 0
        while k < n_bins and c[(k0 + direction * (k + 1)) % n_bins] >= half:
            k += 1
        if k >= n_bins - 1:
            return TWO_PI
        inside, outside = c[(k0 + direction * k) % n_bins], c[(k0 + direction * (k + 1)) % n_bins]
        width += (k + (inside - half) / (inside - outside)) * step
    return float(min(width, TWO_PI))


# --------------------------------------------------------------------------------------------
# Triangular tuning base width (Taube, Muller & Ranck 1990)


def _triangle_grid(y: np.ndarray, phi: np.ndarray, theta0: np.ndarray, half: np.ndarray):
    """Best (r, theta0, half) of y ≈ b + a·max(0, 1 − |φ − θ0| / h) over the grid (a > 0)."""
    d = np.abs(_wrap(phi[None, None, :] - theta0[:, None, None]))
    x = np.clip(1.0 - d / half[None, :, None], 0.0, None)  # [theta0, half, bins]
    xc = x - x.mean(-1, keepdims=True)
    yc = y - y.mean()
    cov = (xc * yc).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(cov > 0, cov / np.sqrt((xc**2).sum(-1) * (yc**2).sum()), -np.inf)
    i, j = np.unravel_index(int(np.argmax(r)), r.shape)
    return r[i, j], theta0[i], half[j]


def triangular_fit(curves: np.ndarray, centers: np.ndarray) -> pd.DataFrame:
    """Least-squares fit of a triangle on a baseline to each tuning curve.

    ``rate(θ) = b + a·max(0, 1 − |θ − θ₀| / h)``, a > 0: the "directional firing range" of
    Taube, Muller & Ranck (1990) is the triangle's base, 2h. Fitted by a grid over θ₀ (±10°
    around the curve's circular mean, 2° steps) and h (1–180°, 2° steps), then refined at
    0.5° / 0.25°; a and b are the closed-form least-squares values for each (θ₀, h).

    Returns
    -------
    DataFrame with ``base_width`` (rad), ``peak_direction`` (rad), ``r2`` per curve; NaN rows
    for flat or empty curves.
    """
    curves = np.atleast_2d(np.asarray(curves, dtype=np.float64))
    centers = np.asarray(centers, dtype=np.float64)
    pd_, _ = circular_stats(curves, centers)
    rows = []
    for y, mean_dir in zip(curves, pd_, strict=True):
        ok = np.isfinite(y)
        if ok.sum() < 4 or not np.ptp(y[ok]) > 0:
            rows.append((math.nan, math.nan, math.nan))
            continue
        yy, phi = y[ok], centers[ok]
        r, t0, h = _triangle_grid(yy, phi, mean_dir + np.radians(np.arange(-10.0, 10.1, 2.0)),
                                  np.radians(np.arange(1.0, 180.1, 2.0)))
        r, t0, h = _triangle_grid(yy, phi, t0 + np.radians(np.arange(-2.0, 2.01, 0.5)),
                                  np.clip(h + np.radians(np.arange(-2.0, 2.01, 0.25)),
                                          np.radians(0.5), np.pi))
        rows.append((2.0 * h, float(np.mod(t0, TWO_PI)), float(r**2)))
    return pd.DataFrame(rows, columns=["base_width", "peak_direction", "r2"])


# --------------------------------------------------------------------------------------------
# Anticipatory time interval (Blair & Sharp 1995; Blair, Lipscomb & Sharp 1997)


def _turn_pds(rates, hd, velocity, n_bins: int):
    """Preferred directions (rad) of rates [samples, units] over CCW-turn and CW-turn samples
    (``velocity`` > 0 and < 0); NaN for a unit silent in one of them."""
    pds = []
    for mask in (velocity > 0, velocity < 0):
        labels = np.where(mask, hd, -1)
        sums = binned_sums(labels, n_bins, rates)
        counts = np.bincount(labels[labels >= 0], minlength=n_bins).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            curves = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], np.nan)
        pd_, r = circular_stats(curves.T, hd_bin_centers(n_bins))
        pds.append(np.where(r > 0, pd_, np.nan))
    return pds


def anticipatory_times(data, n_bins: int = 72, max_shift_s: float = 0.3) -> np.ndarray:
    """Anticipatory time interval (s) of every unit: the time shift that aligns its CW- and
    CCW-turn tuning curves.

    A unit that fires ``ATI`` seconds ahead of the head reaches its apparent preferred direction
    early: during CCW turns (heading increasing) its CCW-turn tuning curve peaks before, its
    CW-turn curve after its true preferred direction (Blair & Sharp 1995). Pairing the rate at
    step t with the heading at t + s, the separation PD_CW − PD_CCW vanishes at s = ATI
    (Blair, Lipscomb & Sharp 1997). It is computed at every whole step within
    ±``max_shift_s`` (turn direction = sign of the heading's central-difference velocity at
    t + s; forced-zero-AV samples left out) and interpolated linearly at the sign change from
    positive to negative nearest to s = 0. Positive: anticipates; negative: lags. NaN when the
    separation does not change sign in the range. Uses at most :data:`MAX_SAMPLES` samples
    (whole trials).
    """
    pick = _trial_stride(data, MAX_SAMPLES)
    all_rates, heading, av = data.rates[pick], data.heading[pick], data.av[pick]
    B, T, N = all_rates.shape
    S = int(round(max_shift_s / data.dt))
    if S < 1 or T <= 2 * S + 1:
        return np.full(N, np.nan)
    hd = np.minimum((np.mod(heading, TWO_PI) * (n_bins / TWO_PI)).astype(np.int64), n_bins - 1)
    velocity = av.copy()
    velocity[:, :-1] = 0.5 * (av[:, :-1] + av[:, 1:])
    velocity[av == 0] = 0.0
    shifts = np.arange(-S, S + 1)
    sep = np.empty((shifts.size, N))
    for j, s in enumerate(shifts):
        lo, hi = max(0, -s), T - max(0, s)  # rate at t, heading at t + s
        rates = all_rates[:, lo:hi].reshape(-1, N)
        pd_ccw, pd_cw = _turn_pds(rates, hd[:, lo + s:hi + s].reshape(-1),
                                  velocity[:, lo + s:hi + s].reshape(-1), n_bins)
        sep[j] = _wrap(pd_cw - pd_ccw)
    ati = np.full(N, np.nan)
    for k in range(N):
        crossings = np.nonzero((sep[:-1, k] >= 0) & (sep[1:, k] < 0)
                               & (sep[:-1, k] - sep[1:, k] < np.pi))[0]  # not a wrap
        if crossings.size == 0:
            continue
        j = crossings[np.argmin(np.abs(shifts[crossings] + 0.5))]
        a, b = sep[j, k], sep[j + 1, k]
        ati[k] = (shifts[j] + a / (a - b)) * data.dt
    return ati


# --------------------------------------------------------------------------------------------
# AHV modulation (Bassett & Taube 2001)


def av_curves(data, units, labels: np.ndarray, n_labels: int, n_hd_bins: int = 36):
    """Mean rate of ``units`` per AV bin (``labels`` per sample, −1 = left out), corrected for
    the headings visited in each bin.

    Each bin's mean rate is divided by the mean of the unit's own HD tuning curve at the same
    samples' headings and multiplied by its overall mean rate: the AV tuning a long recording
    that visits every heading at every speed would show, exact for a rate that is a product of
    HD and AV tuning (a conjunctive cell). Without it, fast turns, which visit few headings,
    would make a pure HD cell look AV-tuned. Returns [units, n_labels] (NaN for empty bins).
    """
    units = _indices(units, data.n_units)
    rates = data.flat("rates")[:, units]
    hd = np.minimum((np.mod(data.flat("heading"), TWO_PI) * (n_hd_bins / TWO_PI)).astype(
        np.int64), n_hd_bins - 1)
    hd_sums = binned_sums(hd, n_hd_bins, rates)
    hd_counts = np.bincount(hd, minlength=n_hd_bins).astype(np.float64)
    tuning = hd_sums / np.maximum(hd_counts, 1)[:, None]  # [hd bins, units]
    predicted = binned_sums(labels, n_labels, tuning[hd])  # Σ tuning(θ_t) per AV bin
    observed = binned_sums(labels, n_labels, rates)
    mean = rates.mean(0, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(predicted > 0, observed / predicted * mean, np.nan).T


def ahv_contrast(data, n_av_bins: int = 10) -> np.ndarray:
    """AV modulation contrast ``(max − min) / (max + min)`` of each unit's AV tuning curve.

    The curve (:func:`av_curves`) has quantile bins of each turn direction over the central
    98 % of AV (``n_av_bins`` in all) plus a bin of the zero-AV samples: a pure HD cell has
    contrast ≈ 0, a symmetric or asymmetric AHV cell (Bassett & Taube 2001) a positive one. NaN
    for a silent unit.
    """
    if n_av_bins < 2 or n_av_bins % 2:
        raise HdbenchError(f"n_av_bins must be an even integer >= 2; got {n_av_bins}")
    av = data.flat("av")
    lo, hi = np.quantile(av, [0.01, 0.99])
    half = n_av_bins // 2
    labels = np.full(av.shape, half, dtype=np.int64)  # zero AV: the middle bin
    for sign, part in ((-1, (av < 0) & (av >= lo)), (1, (av > 0) & (av <= hi))):
        if part.sum() > half:
            edges = np.quantile(av[part], np.linspace(0, 1, half + 1))[1:-1]
            k = np.searchsorted(edges, av[part], side="right")
            labels[part] = half + 1 + k if sign > 0 else k
    labels[((av < 0) & (av < lo)) | ((av > 0) & (av > hi))] = -1  # the extreme 2 %: left out
    curves = av_curves(data, np.arange(data.n_units), labels, n_av_bins + 1)
    finite = np.isfinite(curves)
    hi_ = np.where(finite, curves, -np.inf).max(1)
    lo_ = np.where(finite, curves, np.inf).min(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(finite.any(1) & (hi_ + lo_ > 0), (hi_ - lo_) / (hi_ + lo_), np.nan)


# --------------------------------------------------------------------------------------------
# Shifted projections (Turner-Evans et al. 2017; Pisokas et al. 2020)


def projection_centres(weights: np.ndarray, sources, targets, preferred) -> np.ndarray:
    """Where each source unit's excitatory output onto ``targets`` lands (rad).

    The circular mean of the target preferred directions weighted by the source's positive
    weights that reach :data:`LOBE_FRACTION` of their largest value: the centre of the
    projection's peak, i.e. the ellipsoid-body tile a P-EN neuron projects to. A weaker
    unshifted component (as the half-weight one of Turner-Evans et al.'s model) hardly pulls
    it: with von Mises lobes (κ = 12) 34° apart it is found within 1°, where a plain weighted
    mean would give 25°. NaN for a source with no positive weight.
    """
    weights = np.asarray(weights, dtype=np.float64)
    n = weights.shape[0]
    if weights.ndim != 2 or weights.shape[1] != n:
        raise HdbenchError(f"weights must be a square W[target, source]; got {weights.shape}")
    sources, targets = _indices(sources, n), _indices(targets, n)
    pd_t = np.asarray(preferred, dtype=np.float64)[targets]
    w = np.clip(weights[np.ix_(targets, sources)], 0.0, None)  # [targets, sources]
    top = w.max(0) if targets.size else np.zeros(sources.size)
    lobe = np.where(w >= LOBE_FRACTION * top[None, :], w, 0.0) * (top[None, :] > 0)
    vec = lobe.T @ np.exp(1j * pd_t)
    return np.where(np.abs(vec) > 0, np.mod(np.angle(vec), TWO_PI), np.nan)


def projection_shifts(weights, populations: Populations) -> np.ndarray:
    """Signed shift (rad) of each shifter's projection onto the compass units relative to its
    own preferred direction, positive in its turn direction (a CCW shifter projecting CCW, a
    CW shifter projecting CW); one value per shifter."""
    centres = projection_centres(weights, populations.shifters, populations.compass,
                                 populations.preferred)
    own = populations.preferred[populations.shifters]
    return populations.shifter_sign * _wrap(centres - own)


def shifter_lead(data, populations: Populations, positions: np.ndarray,
                 bins=LEAD_BINS_DEG_S) -> dict:
    """Lead (rad) of the shifter population vector over the compass one, in the turn direction.

    Both populations are placed where they act in the ring: compass units at their preferred
    direction, shifters at their projection centre ``positions`` (the ellipsoid-body tile of a
    P-EN). Within each turning-speed bin (°/s, from ``bins``), the normalised activity of both
    populations is aligned on the compass population vector and mirrored for CW turns, averaged
    over the bin's samples, and the lead is the angle from the compass population vector of the
    mean to the shifter one: the "PVA offset of the mean traces" of Turner-Evans et al. (2017,
    Fig. 9G). Samples without a turn (AV = 0) carry no direction and are left out. NaN for an
    empty bin or population.

    Returns
    -------
    ``{bin name: (lead in rad, samples)}``
    """
    comp, shift = populations.compass, populations.shifters
    positions = np.asarray(positions, dtype=np.float64)
    keep = np.isfinite(positions)
    out = {name: (math.nan, 0) for name in bins}
    if comp.size < MIN_POPULATION or not keep.any():
        return out
    av = data.flat("av")
    speed = np.degrees(np.abs(av)) / data.dt
    direction = np.sign(av)
    rates = data.flat("rates")
    comp_peak = np.clip(rates[:, comp], 0.0, None).max(0).astype(np.float64)
    shift_peak = np.clip(rates[:, shift[keep]], 0.0, None).max(0).astype(np.float64)
    comp_w = np.exp(1j * populations.preferred[comp]) / np.where(comp_peak > 0, comp_peak, 1.0)
    shift_w = np.exp(1j * positions[keep]) / np.where(shift_peak > 0, shift_peak, 1.0)
    for name, (lo, hi) in bins.items():
        sel = np.nonzero((direction != 0) & (speed >= lo) & (speed < hi))[0]
        comp_vec = np.clip(rates[sel][:, comp], 0.0, None) @ comp_w
        sel, comp_vec = sel[np.abs(comp_vec) > 0], comp_vec[np.abs(comp_vec) > 0]
        if sel.size == 0:
            continue
        shift_vec = np.clip(rates[sel][:, shift[keep]], 0.0, None) @ shift_w
        rot = np.exp(-1j * np.angle(comp_vec))
        c, s = comp_vec * rot, shift_vec * rot
        mirror = direction[sel] < 0  # CW turns: reflect so that the turn runs CCW
        c, s = np.where(mirror, np.conj(c), c), np.where(mirror, np.conj(s), s)
        lead = float(_wrap(np.angle(s.mean()) - np.angle(c.mean())))
        out[name] = (lead, int(sel.size))
    return out


# --------------------------------------------------------------------------------------------
# Rotational-velocity tuning of shifters (Turner-Evans et al. 2017, Fig. 4)


def _sigmoid_grid(x, y, w, slopes, centres):
    """Best weighted least-squares fit of y ≈ a + b·σ(s (x − c)) over the (s, c) grid.

    a and b (any sign) are the closed-form weighted least-squares values for each (s, c).
    Returns (explained sum of squares, s, c, b).
    """
    z = np.clip(slopes[:, None, None] * (x[None, None, :] - centres[None, :, None]), -60, 60)
    basis = 1.0 / (1.0 + np.exp(-z))  # [slopes, centres, bins]
    sw = w.sum()
    xm = (basis * w).sum(-1, keepdims=True) / sw
    ym = (w * y).sum() / sw
    xc = basis - xm
    sxy = (w * xc * (y - ym)).sum(-1)
    sxx = (w * xc**2).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        explained = np.where(sxx > 0, sxy**2 / sxx, -np.inf)
    i, j = np.unravel_index(int(np.argmax(explained)), explained.shape)
    return explained[i, j], slopes[i], centres[j], sxy[i, j] / sxx[i, j]


def av_sigmoid_fits(data, units, bin_deg_s: float = AV_BIN_DEG_S) -> pd.DataFrame:
    """Weighted sigmoid fit of each unit's rate against AV (°/s).

    As Turner-Evans et al. (2017): AV in 12°/s bins, the mean rate per bin (corrected for the
    headings visited, :func:`av_curves`) fitted with a sigmoid ``a + b / (1 + exp(−s (v − c)))``
    (s > 0) weighted by the bin counts. Fitted by a
    grid over s (rises of :data:`BANDWIDTH_RANGE_DEG_S`, 49 log-spaced) and c (±600°/s, 10°/s
    steps), refined once, with a and b in closed form. Reported: ``bandwidth`` = the AV range
    of the sigmoid's 10–90 % rise, ln(81)/s (°/s; the paper defines its "P-EN bandwidth" on
    the fitted curve, the 10–90 % convention is ours, matching its behavioural bandwidth),
    ``inflexion`` = c (°/s, half-maximal activation), ``preferred`` = +1 if the rate rises
    with CCW AV (b > 0), −1 with CW, and ``r2``. Samples without a turn (AV = 0) and bins with
    fewer than :data:`MIN_BIN_SAMPLES` samples are left out. NaN rows for flat units or too few
    bins.
    """
    units = _indices(units, data.n_units)
    columns = ["bandwidth", "inflexion", "preferred", "r2"]
    av = np.degrees(data.flat("av")) / data.dt
    moving = av != 0
    v = av[moving]
    if v.size == 0 or units.size == 0:
        return pd.DataFrame(np.full((units.size, 4), np.nan), columns=columns)
    idx = np.floor(v / bin_deg_s).astype(np.int64)
    idx -= idx.min()
    n_bins = int(idx.max()) + 1
    labels = np.full(av.shape, -1, dtype=np.int64)
    labels[moving] = idx
    counts = np.bincount(idx, minlength=n_bins).astype(np.float64)
    centre = np.bincount(idx, weights=v, minlength=n_bins) / np.maximum(counts, 1)
    curves = av_curves(data, units, labels, n_bins)  # [units, AV bins]
    good = counts >= MIN_BIN_SAMPLES
    x, w = centre[good], counts[good]
    slopes = _LN81 / np.geomspace(BANDWIDTH_RANGE_DEG_S[1], BANDWIDTH_RANGE_DEG_S[0], 49)
    centres = np.arange(-600.0, 600.1, 10.0)
    rows = []
    for k in range(units.size):
        y = curves[k, good]
        if not np.isfinite(y).all():
            rows.append((math.nan,) * 4)
            continue
        sst = float((w * (y - np.average(y, weights=w)) ** 2).sum()) if x.size else 0.0
        if x.size < 5 or not sst > 1e-18 * max(float((w * y**2).sum()), 1e-300):
            rows.append((math.nan,) * 4)
            continue
        _, s, c, _ = _sigmoid_grid(x, y, w, slopes, centres)
        fine_s = np.clip(s * np.geomspace(0.88, 1.12, 25), slopes.min(), slopes.max())
        explained, s, c, b = _sigmoid_grid(x, y, w, fine_s, c + np.arange(-10.0, 10.1, 0.5))
        rows.append((_LN81 / s, c, float(np.sign(b)), explained / sst))
    return pd.DataFrame(rows, columns=columns)


# --------------------------------------------------------------------------------------------
# Everything at once


#: name -> (unit, what it measures); the keys of :func:`measure_properties`.
PROPERTIES = {
    "packet_width": ("°", "FWHM of the compass units' activity packet"),
    "base_width": ("°", "mean triangular base width of the compass units' HD tuning"),
    "ati_compass": ("ms", "mean anticipatory time interval of the compass units"),
    "ati_shifter": ("ms", "mean anticipatory time interval of the shifter units"),
    "ahv_fraction": ("", "fraction of active units whose rate is AHV-modulated"),
    "shift": ("°", "mean signed shift of the shifters' projection onto the compass units"),
    "lead_slow": ("°", "shifter lead over the compass units at turns below 30°/s"),
    "lead_fast": ("°", "shifter lead over the compass units at turns of 150–180°/s"),
    "bandwidth": ("°/s", "per-shifter 10–90 % rise of the sigmoid AV tuning"),
    "inflexion": ("°/s", "median inflexion point of the shifters' sigmoid AV tuning"),
}


def _mean_or_nan(values) -> float:
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else math.nan


def measure_properties(activity, trials=None, weights=None, table=None, *,
                       n_bins: int = 72) -> dict:
    """Every property of :data:`PROPERTIES` of one system, in paper units.

    Parameters
    ----------
    activity : hdbench.system.Activity
        Noise-free simulation of ``trials``.
    trials : hdbench.task.Trials, optional
        As in :func:`~hdbench.analysis.tuning.tuning_data`.
    weights : [units, units] array or callable, optional
        ``W[target, source]`` (or a function returning it, called only when needed). Without
        weights, ``shift``, ``lead_slow`` and ``lead_fast`` are NaN.
    table : DataFrame, optional
        :func:`~hdbench.analysis.classify_units` table of the same activity (computed with the
        default thresholds when omitted).
    n_bins : heading bins of tuning curves and packet profile (5° by default)

    Returns
    -------
    dict: scalar properties as floats (°, ms, fraction); ``bandwidth`` as an array over
    shifters (°/s); ``n_compass`` and ``n_shifters``.
    """
    from hdbench.analysis.tuning import classify_units

    data = tuning_data(activity, trials)
    if table is None:
        table = classify_units(activity, trials, gmm=False, max_shift_s=0.0)
    if len(table) != data.n_units:
        raise HdbenchError(f"tuning table has {len(table)} rows for {data.n_units} units")
    pops = Populations.from_table(table, split_half_stability(data))
    out = {"n_compass": int(pops.compass.size), "n_shifters": int(pops.shifters.size)}
    out["packet_width"] = math.degrees(bump_fwhm(data, pops.compass, pops.preferred, n_bins))
    curves, centers, _ = tuning_curves(None, n_bins=n_bins, data=data)
    if pops.compass.size:
        fits = triangular_fit(curves[pops.compass], centers)
        out["base_width"] = math.degrees(_mean_or_nan(fits["base_width"]))
    else:
        out["base_width"] = math.nan
    ati = anticipatory_times(data, n_bins) * 1e3
    out["ati_compass"] = _mean_or_nan(ati[pops.compass])
    out["ati_shifter"] = _mean_or_nan(ati[pops.shifters])
    contrast = ahv_contrast(data)[pops.active]
    out["ahv_fraction"] = float(np.mean(contrast >= AHV_CONTRAST)) if contrast.size \
        else math.nan
    if callable(weights):
        weights = weights()
    if weights is not None and pops.shifters.size and pops.compass.size:
        weights = np.asarray(weights, dtype=np.float64)
        out["shift"] = math.degrees(_mean_or_nan(projection_shifts(weights, pops)))
        positions = projection_centres(weights, pops.shifters, pops.compass, pops.preferred)
        leads = shifter_lead(data, pops, positions)
        out["lead_slow"], out["lead_fast"] = (math.degrees(leads[k][0]) for k in ("slow", "fast"))
    else:
        out["shift"] = out["lead_slow"] = out["lead_fast"] = math.nan
    fits = av_sigmoid_fits(data, pops.shifters)
    out["bandwidth"] = fits["bandwidth"].to_numpy(dtype=np.float64)
    inflexion = fits["inflexion"].to_numpy(dtype=np.float64)
    out["inflexion"] = float(np.nanmedian(inflexion)) if np.isfinite(inflexion).any() \
        else math.nan
    return out
