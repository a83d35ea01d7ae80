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


# Distribution distances are in units of the reference's spread and capped, so that a system
# without tuned units (or wildly off) gets a finite worst value.
MAX_SPREADS = 5.0


def scaled_wasserstein(values: np.ndarray, reference: np.ndarray) -> float:
    """Wasserstein-1 distance between two samples in units of the reference sample's SD,
    capped at :data:`MAX_SPREADS` (also the value when ``values`` is empty).

    Unlike the Kolmogorov-Smirnov statistic it knows how far off a distribution is: widths all
    10° too wide and all 60° too wide are not equally bad (issue 18).
    """
    from scipy.stats import wasserstein_distance

    values, reference = values[np.isfinite(values)], reference[np.isfinite(reference)]
    if reference.size < 2:
        raise HdbenchError("the reference has fewer than 2 tuned units to compare with")
    spread = float(reference.std(ddof=1))
    if spread == 0.0:
        raise HdbenchError("the reference's units all have the same value: no spread to "
                           "scale the distance by")
    if values.size == 0:
        return MAX_SPREADS
    return min(float(wasserstein_distance(values, reference)) / spread, MAX_SPREADS)


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
    """Scaled Wasserstein-1 distance between the HD tuning widths (FWHM) of the HD-tuned
    units."""
    return scaled_wasserstein(_widths(subject), _widths(reference))


def av_slope_distance(subject, reference) -> float:
    """Scaled Wasserstein-1 distance between the peak-normalised signed AV slopes of the
    HD-tuned units."""
    return scaled_wasserstein(_av_slopes(subject), _av_slopes(reference))


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
              higher_is_better=False, version=2,
              measurement="full width at half maximum of the HD tuning curve (36 bins) of "
                          "every HD-tuned unit",
              comparison="Wasserstein-1 distance between the two width distributions, in "
                         "units of the reference's SD (capped at 5)",
              citation=TAUBE_1995),
    Benchmark(family="tuning", name="av-slope", score_fn=av_slope_distance,
              higher_is_better=False, version=2,
              measurement="signed slope of rate against AV near the preferred direction, "
                          "divided by the peak rate, of every HD-tuned unit",
              comparison="Wasserstein-1 distance between the two slope distributions, in "
                         "units of the reference's SD (capped at 5)",
              citation=TAUBE_1995),
)

for _bench in TUNING_BENCHMARKS:
    register(_bench, replace=True)
