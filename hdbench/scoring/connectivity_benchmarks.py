"""Connectivity-family benchmarks: recurrent weights against preferred-direction difference.

Units of both systems are classified the same way (:func:`hdbench.scoring.measures.unit_table`)
and their weights ``W[target, source]`` averaged per (target type, source type) pair in bins of
Δ = PD_target − PD_source (:func:`hdbench.scoring.measures.connectivity`). Only pairs with
structure in the *reference* count: a pair the reference does not wire (a flat profile) says
nothing about a model. Weight scales never matter (correlations and signs only).
"""

from __future__ import annotations

import numpy as np

from hdbench.errors import NotComputableError
from hdbench.scoring.benchmark import Benchmark, register
from hdbench.scoring.measures import connectivity
from hdbench.scoring.task_benchmarks import CUEVA_2020

# A reference pair is lopsided (it shifts the bump) when the odd part of its profile is at least
# this fraction of the profile's range; its offset sign is then compared.
LOPSIDED = 0.1


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


def offset_sign_agreement(subject, reference) -> float:
    """Fraction of the reference's lopsided type pairs whose subject profile is shifted to the
    same side (circular-mean offset of the same sign and less than 90°)."""
    ref = connectivity(reference).pairs
    sub = connectivity(subject).pairs
    spread = ref["exc_lobe"] + ref["inh_lobe"]
    lopsided = ref[(ref["odd_amplitude"] >= LOPSIDED * spread) & (spread > 0)
                   & np.isfinite(ref["offset_circmean"])]
    if lopsided.empty:
        raise NotComputableError(f"not applicable: reference {reference.label!r} has no "
                                 "lopsided (bump-shifting) connectivity profile")
    offsets = {(r.target, r.source): r.offset_circmean for r in sub.itertuples()} \
        if not sub.empty else {}
    agree = []
    for r in lopsided.itertuples():
        theirs = offsets.get((r.target, r.source), np.nan)
        agree.append(bool(np.isfinite(theirs) and abs(theirs) < np.pi / 2
                          and np.sign(theirs) == np.sign(r.offset_circmean)))
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
              higher_is_better=True,
              measurement="side (CW / CCW, within 90 deg) of the circular-mean offset of each "
                          "bump-shifting type-pair profile",
              comparison="fraction of the reference's shifting pairs shifted to the same side",
              citation=CUEVA_2020),
)

for _bench in CONNECTIVITY_BENCHMARKS:
    register(_bench, replace=True)
