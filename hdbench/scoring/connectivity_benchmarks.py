"""Connectivity-family benchmarks: recurrent weights against preferred-direction difference.

Units of both systems are classified the same way (:func:`hdbench.scoring.measures.unit_table`)
and their weights ``W[target, source]`` averaged per (target type, source type) pair in bins of
Δ = PD_target − PD_source, and fitted pair by pair with a first harmonic
``W ≈ c + A cos(Δ − offset)`` (:func:`hdbench.scoring.measures.connectivity`). Only pairs with
structure in the *reference* count: a pair the reference does not wire (a flat profile) says
nothing about a model. Weight scales never matter (correlations and signs only).

Offset signs (version 2) use the fitted offsets and their 90 % bootstrap intervals over source
units, not the argmax of a binned profile, whose 90 % range in a trained CTRNN spans more than
100° (issue 17). A reference pair is *shifting* when its fit is significant against shuffled
PDs (p < :data:`REFERENCE_P`), its interval excludes 0 and its offset is at least
:data:`MIN_OFFSET_DEG`; a subject agrees on that pair only when its own fit is significant
(p < :data:`SUBJECT_P`), its interval lies on the reference's side of 0, and its offset is
within 90°.
"""

from __future__ import annotations

import numpy as np

from hdbench.errors import NotComputableError
from hdbench.scoring.benchmark import Benchmark, register
from hdbench.scoring.measures import connectivity
from hdbench.scoring.task_benchmarks import CUEVA_2020

# Which fitted pairs count (see the module docstring).
REFERENCE_P = 0.01
SUBJECT_P = 0.05
MIN_OFFSET_DEG = 10.0


def _profiles(bundle) -> dict[tuple[str, str], np.ndarray]:
    """``{(target, source): weight per Δ bin}`` (bins sorted; NaN where no pair exists)."""
    profiles = connectivity(bundle).profiles
    return {key: g["weight"].to_numpy(dtype=np.float64)
            for key, g in profiles.groupby(["target", "source"], sort=False)}


def _structured(profile: np.ndarray) -> bool:
    finite = profile[np.isfinite(profile)]
    return finite.size >= 3 and np.ptp(finite) > 0


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation over the bins finite in both; 0 when it is undefined."""
    both = np.isfinite(a) & np.isfinite(b)
    if both.sum() < 3:
        return 0.0
    a, b = a[both] - a[both].mean(), b[both] - b[both].mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 0 else 0.0


def profile_correlation(subject, reference) -> float:
    """Mean over the reference's structured type pairs of the correlation between the two
    systems' profiles (a pair the subject lacks counts 0)."""
    ref, sub = _profiles(reference), _profiles(subject)
    pairs = [key for key, profile in ref.items() if _structured(profile)]
    if not pairs:
        raise NotComputableError(f"not applicable: reference {reference.label!r} has no "
                                 "structured connectivity profile between compass and "
                                 "shifter types")
    return float(np.mean([_correlation(sub[key], ref[key]) if key in sub else 0.0
                          for key in pairs]))


def _side(row, p_max: float) -> int:
    """+1 / −1: the fitted offset is resolved on the CCW / CW side (significant fit, interval
    excluding 0); 0 otherwise."""
    from hdbench.analysis import excludes_zero

    if not (np.isfinite(row.p_shuffle) and row.p_shuffle < p_max):
        return 0
    return excludes_zero(row.offset_lo, row.offset_hi)


def offset_sign_agreement(subject, reference) -> float:
    """Fraction of the reference's shifting type pairs whose subject fit is shifted to the
    same side, resolved by its confidence interval (see the module docstring)."""
    ref = connectivity(reference).pairs
    sub = connectivity(subject).pairs
    shifting = [(r.target, r.source, side) for r in ref.itertuples()
                if (side := _side(r, REFERENCE_P))
                and abs(r.offset) >= np.radians(MIN_OFFSET_DEG)] if not ref.empty else []
    if not shifting:
        raise NotComputableError(f"not applicable: reference {reference.label!r} has no "
                                 "shifting (lopsided, resolved) connectivity pair")
    rows = {(r.target, r.source): r for r in sub.itertuples()} if not sub.empty else {}
    agree = []
    for target, source, side in shifting:
        row = rows.get((target, source))
        agree.append(row is not None and _side(row, SUBJECT_P) == side
                     and abs(row.offset) < np.pi / 2)
    return float(np.mean(agree))


CONNECTIVITY_BENCHMARKS = (
    Benchmark(family="connectivity", name="profile-correlation", score_fn=profile_correlation,
              higher_is_better=True,
              measurement="mean recurrent weight against preferred-direction difference "
                          "(18 bins) per (target, source) pair of compass / CW / CCW shifter "
                          "units",
              comparison="Pearson correlation of the profiles, averaged over the pairs the "
                         "reference wires",
              citation=CUEVA_2020),
    Benchmark(family="connectivity", name="offset-signs", score_fn=offset_sign_agreement,
              higher_is_better=True, version=2,
              measurement="first-harmonic offset of W against preferred-direction difference "
                          "per type pair, with its 90 % bootstrap interval over source units "
                          "and a shuffled-PD p-value",
              comparison="fraction of the reference's shifting pairs (p < 0.01, interval "
                         "excluding 0, offset >= 10 deg) whose subject interval lies on the "
                         "same side of 0 (p < 0.05, offset within 90 deg)",
              citation=CUEVA_2020),
)

for _bench in CONNECTIVITY_BENCHMARKS:
    register(_bench, replace=True)
