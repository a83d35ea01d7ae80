"""Measurements of one system that several benchmarks read, computed once per :class:`Bundle`.

Each function returns ``bundle.memo(key, ...)``: the HD × AV tuning matrices, the unit table with
cell types, the connectivity profiles, the slow points and the silencing experiment are computed
the first time a benchmark asks and shared by every other benchmark of the same scoring job.

Everything is measured on the bundle's evaluation trials (the reference task, the protocol's
trial count and seed), except the slow-point search and the silencing experiment, which need
trials of their own shape (:mod:`hdbench.analysis.dynamics`); their sizes follow
:func:`effort`, small under the quick protocol.
"""

from __future__ import annotations

import warnings

import numpy as np

from hdbench.errors import HdbenchError
from hdbench.scoring.bundle import QUICK_PROTOCOL

# HD × AV conditions of the representation benchmarks: 24 heading bins (15°) × 3 AV bins
# (CW turns, slow or no turns, CCW turns; equal-count bins of the non-zero AV of the trials).
# With the quick protocol's 32 trials every condition still holds >= 30 samples per split.
N_HD_BINS = 24
N_AV_BINS = 3
# Heading-difference bins of the connectivity profiles (20°): sparse types (a few units) still
# fill most bins.
N_DELTA_BINS = 18
# The dynamics measurements, by protocol size: slow-point starts (spread over heading bins),
# trials they start from, Levenberg–Marquardt iterations, heading bins of the ring coverage;
# trials of the silencing experiment; trials, PCs, delays and rank of DSA.
EFFORT = {
    "quick": {"slow_points": 36, "slow_trials": 16, "newton": 20, "coverage_bins": 18,
              "silencing_trials": 8, "silencing_draws": 10, "dsa_trials": 8, "dsa_pcs": 10,
              "dsa_delays": 5, "dsa_rank": 10},
    "full": {"slow_points": 144, "slow_trials": 64, "newton": 30, "coverage_bins": 36,
             "silencing_trials": 32, "silencing_draws": 20, "dsa_trials": 32, "dsa_pcs": 10,
             "dsa_delays": 5, "dsa_rank": 10},
}
# Bootstrap resamples (and PD shuffles + 1) of the connectivity fits.
N_CONNECTIVITY_BOOT = 1000


def effort(bundle) -> dict:
    """The dynamics settings for the bundle's protocol: ``quick`` up to the quick protocol's
    trial count, else ``full``."""
    return EFFORT["quick" if bundle.protocol.n_trials <= QUICK_PROTOCOL.n_trials else "full"]


def av_bin_edges(trials) -> np.ndarray:
    """Edges (rad/step) of the :data:`N_AV_BINS` equal-count bins of the non-zero AV of
    ``trials`` after the cue."""
    av = trials.av[:, trials.spec.cue_steps:]
    moving = av[av != 0]
    if moving.size < N_AV_BINS + 1:
        raise HdbenchError(f"the evaluation trials of task {trials.spec.name!r} have no "
                           "angular velocity to bin")
    return np.quantile(moving, np.linspace(0.0, 1.0, N_AV_BINS + 1))


def tuning_conditions(bundle):
    """:class:`~hdbench.metrics.conditions.ConditionMatrices` of the test activity over
    :data:`N_HD_BINS` heading × :data:`N_AV_BINS` AV bins (:func:`av_bin_edges`), after the
    cue, on two trial splits."""
    def compute():
        from hdbench.metrics import conditions

        trials = bundle.trials("test")
        return conditions.tuning_matrices(bundle.activity("test"), N_HD_BINS,
                                          av_bin_edges(trials),
                                          skip_steps=bundle.spec.cue_steps)

    return bundle.memo(("tuning-conditions", N_HD_BINS, N_AV_BINS), compute)


def unit_table(bundle):
    """Per-unit tuning statistics and cell types (:func:`hdbench.analysis.classify_units`,
    default thresholds) on the test activity; the anticipatory time is not computed."""
    def compute():
        from hdbench.analysis import classify_units

        return classify_units(bundle.activity("test"), bundle.trials("test"), gmm=False,
                              max_shift_s=0.0)

    return bundle.memo("unit-table", compute)


def integration(bundle) -> dict:
    """:func:`hdbench.analysis.integration_gain` of the test activity (no interval)."""
    def compute():
        from hdbench.analysis import integration_gain

        return integration_gain(bundle.activity("test"), bundle.trials("test"), n_boot=0)

    return bundle.memo("integration", compute)


def connectivity(bundle):
    """:func:`hdbench.analysis.connectivity_summary` of the classified system: weight profiles
    against PD difference per (target, source) pair of compass and shifter types
    (:data:`N_DELTA_BINS` bins), and first-harmonic fits of every pair with 90 % bootstrap
    intervals and shuffled-PD p-values (:data:`N_CONNECTIVITY_BOOT` resamples)."""
    def compute():
        from hdbench.analysis import connectivity_summary

        return connectivity_summary(bundle.weights, unit_table(bundle), n_bins=N_DELTA_BINS,
                                    n_boot=N_CONNECTIVITY_BOOT,
                                    n_perm=N_CONNECTIVITY_BOOT - 1, seed=bundle.protocol.seed)

    return bundle.memo(("connectivity", N_DELTA_BINS), compute)


def has_vector_field(bundle) -> bool:
    """Whether slow points can be searched for (:func:`hdbench.analysis.vector_field`)."""
    def compute():
        from hdbench.analysis import vector_field

        try:
            vector_field(bundle.system, dt=bundle.spec.dt)
        except HdbenchError:
            return False
        return True

    return bundle.memo("has-vector-field", compute)


def slow_points(bundle) -> dict:
    """:func:`hdbench.analysis.slow_point_summary` of slow points started from states spread
    over heading on the reference task (sizes from :func:`effort`)."""
    def compute():
        from hdbench.analysis import slow_point_analysis

        e = effort(bundle)
        _, summary = slow_point_analysis(
            bundle.system, unit_table(bundle), bundle.spec, n_points=e["slow_points"],
            n_trials=e["slow_trials"], n_bins=e["coverage_bins"], seed=bundle.protocol.seed,
            n_newton=e["newton"])
        return summary

    return bundle.memo("slow-points", compute)


def silencing(bundle) -> dict:
    """:func:`hdbench.analysis.silencing_signature` of the system's silencing experiment on
    the reference task, each effect counted only when it is specific (beyond its matched
    random controls; sizes from :func:`effort`)."""
    def compute():
        from hdbench.analysis import silencing_experiment, silencing_signature

        e = effort(bundle)
        with warnings.catch_warnings():  # empty groups and vanished bumps give NaN means
            warnings.simplefilter("ignore", RuntimeWarning)
            table = silencing_experiment(bundle.system, unit_table(bundle), bundle.spec,
                                         n_trials=e["silencing_trials"],
                                         n_draws=e["silencing_draws"], extra_groups=False,
                                         n_boot=0, seed=bundle.protocol.seed)
        return silencing_signature(table)

    return bundle.memo("silencing", compute)


def dmd_model(bundle):
    """HAVOK/DMD model (:func:`hdbench.metrics.havok_dmd`) of the test trajectories projected
    on their top principal components, with the AV regressed out as a control input."""
    def compute():
        from hdbench.metrics import conditions, havok_dmd

        e = effort(bundle)
        activity = bundle.activity("test")
        states, av = conditions.population_trajectories(activity,
                                                        skip_steps=bundle.spec.cue_steps)
        states, av = states[:e["dsa_trials"]], av[:e["dsa_trials"]]
        trials, steps, units = states.shape
        k = min(e["dsa_pcs"], units)
        (flat,) = conditions.align_dimensions([states.reshape(1, trials * steps, units)],
                                              method="pca", k=k)
        return havok_dmd(flat.reshape(trials, steps, k), n_delays=e["dsa_delays"],
                         rank=min(e["dsa_rank"], k * e["dsa_delays"]), inputs=av)

    return bundle.memo("dmd-model", compute)
