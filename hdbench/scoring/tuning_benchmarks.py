"""Tuning-family benchmarks: do the system's single units look like the reference's cells?

Both systems are classified by the same rule (:func:`hdbench.analysis.classify_units`, default
thresholds) on the same evaluation trials, ground-truth labels unused, so the reference is
measured exactly as a model is. Distances: lower is better.

Cell-type fractions are compared only between systems that integrate AV on the reference task
(decoded-vs-true heading gain within :data:`hdbench.analysis.INTEGRATION_RANGE`,
:func:`hdbench.analysis.integration_gain`): the shifter count of a network that does not do the
task says nothing about the task's cell types (issue 17). A subject that does not integrate
gets the largest distance, 1, as an untrained network does; it is not "not computable", because
the floor itself (an untrained network) never integrates and must still have a value. A
reference that does not integrate is a failure of the benchmark.
"""

from __future__ import annotations

import numpy as np

from hdbench.errors import HdbenchError
from hdbench.scoring.benchmark import Benchmark, register
from hdbench.scoring.measures import integration, unit_table
from hdbench.scoring.task_benchmarks import CUEVA_2020

TUNED = ("compass", "shifter_cw", "shifter_ccw")
TAUBE_1995 = ("Taube (1995) Head direction cells recorded in the anterior thalamic nuclei of "
              "freely moving rats. J Neurosci 15:70-86; Turner-Evans, Wegener, Rouault, "
              "Franconville, Wolff, Seelig, Druckmann & Jayaraman (2017) Angular velocity "
              "integration in a fly heading circuit. eLife 6:e23496.")


def _fractions(table) -> np.ndarray:
    from hdbench.analysis import CLASSES, class_counts

    counts = class_counts(table)
    return np.array([counts[c] for c in CLASSES], dtype=np.float64) / max(len(table), 1)


def _ks(a: np.ndarray, b: np.ndarray) -> float:
    """Kolmogorov–Smirnov statistic of two samples; 1 (the largest) when one is empty."""
    from scipy.stats import ks_2samp

    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size == 0 or b.size == 0:
        return 1.0 if a.size or b.size else 0.0
    return float(ks_2samp(a, b).statistic)


def _tuned(table):
    return table[table["cell_type"].isin(TUNED)]


def _widths(bundle) -> np.ndarray:
    return _tuned(unit_table(bundle))["fwhm"].to_numpy(dtype=np.float64)


def _av_slopes(bundle) -> np.ndarray:
    """Signed AV slope of each HD-tuned unit relative to its peak rate, per rad/s: the mean of
    its CCW slope and minus its CW slope (> 0: fires more in CCW turns)."""
    tuned = _tuned(unit_table(bundle))
    peak = tuned["peak_rate"].to_numpy(dtype=np.float64)
    slope = 0.5 * (tuned["av_slope_ccw"].to_numpy(dtype=np.float64)
                   - tuned["av_slope_cw"].to_numpy(dtype=np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(peak > 0, slope / peak, np.nan)


def cell_type_distance(subject, reference) -> float:
    """Total-variation distance between the two systems' cell-type fractions (0 … 1); 1 for a
    subject that does not integrate (see the module docstring)."""
    from hdbench.analysis import integration_refusal

    refusal = integration_refusal(integration(reference)["gain"],
                                  f"reference {reference.label!r}")
    if refusal is not None:
        raise HdbenchError(refusal)
    if integration_refusal(integration(subject)["gain"]) is not None:
        return 1.0
    return float(0.5 * np.abs(_fractions(unit_table(subject))
                              - _fractions(unit_table(reference))).sum())


def tuning_width_distance(subject, reference) -> float:
    """KS distance between the HD tuning widths (FWHM) of the HD-tuned units."""
    return _ks(_widths(subject), _widths(reference))


def av_slope_distance(subject, reference) -> float:
    """KS distance between the peak-normalised signed AV slopes of the HD-tuned units."""
    return _ks(_av_slopes(subject), _av_slopes(reference))


TUNING_BENCHMARKS = (
    Benchmark(family="tuning", name="cell-types", score_fn=cell_type_distance,
              higher_is_better=False, version=2,
              measurement="fractions of inactive, compass, CW-shifter, CCW-shifter and other "
                          "units (HD resultant length >= 0.3, |AV asymmetry| >= 0.03), and "
                          "the decoded-vs-true heading gain",
              comparison="total-variation distance between the fractions; 1 when the "
                         "subject does not integrate (gain outside 0.8-1.2)",
              citation=CUEVA_2020),
    Benchmark(family="tuning", name="tuning-width", score_fn=tuning_width_distance,
              higher_is_better=False,
              measurement="full width at half maximum of the HD tuning curve (36 bins) of "
                          "every HD-tuned unit",
              comparison="Kolmogorov-Smirnov distance between the two width distributions",
              citation=TAUBE_1995),
    Benchmark(family="tuning", name="av-slope", score_fn=av_slope_distance,
              higher_is_better=False,
              measurement="signed slope of rate against AV near the preferred direction, "
                          "divided by the peak rate, of every HD-tuned unit",
              comparison="Kolmogorov-Smirnov distance between the two slope distributions",
              citation=TAUBE_1995),
)

for _bench in TUNING_BENCHMARKS:
    register(_bench, replace=True)
