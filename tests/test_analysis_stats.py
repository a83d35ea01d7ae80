"""Statistics of the analyses: intervals, Silverman's unimodality test, mixture BIC, and the
cell-type continuum on synthetic populations with a known answer."""

import numpy as np
import pandas as pd
import pytest

from hdbench.analysis import cell_type_continuum, distribution_summary, kappa_table
from hdbench.analysis.stats import (
    bimodality_coefficient,
    bootstrap_counts,
    circular_interval,
    count_modes,
    critical_bandwidth,
    gmm_bic,
    percentile_interval,
    silverman_test,
)
from hdbench.errors import HdbenchError


def test_count_modes_on_known_sequences():
    assert count_modes(np.array([0, 1, 2, 1, 0, 0, 1, 0.0])) == 2
    assert count_modes(np.array([0, 1, 1, 1, 0.0])) == 1  # a plateau counts once
    assert count_modes(np.array([3, 2, 1, 0.0])) == 0  # falls from the edge: no interior mode
    np.testing.assert_array_equal(count_modes(np.array([[0, 1, 0, 1, 0.0], [0, 1, 2, 3, 2.0]])),
                                  [2, 1])


def test_critical_bandwidth_of_two_points_is_half_their_distance():
    # Two Gaussians of width h at ±1 merge into one mode exactly when h >= 1.
    assert critical_bandwidth(np.array([-1.0, 1.0])) == pytest.approx(1.0, rel=1e-3)
    assert critical_bandwidth(np.array([-3.0, 3.0])) == pytest.approx(3.0, rel=1e-3)
    assert critical_bandwidth(np.ones(5)) == 0.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_silverman_rejects_unimodality_of_separated_clusters(seed):
    rng = np.random.default_rng(seed)
    two = np.r_[rng.normal(-2, 0.7, 50), rng.normal(2, 0.7, 50)]
    three = np.r_[rng.normal(-1, 0.05, 40), rng.normal(0, 0.05, 40), rng.normal(1, 0.05, 20)]
    assert silverman_test(two, seed=seed)["p_value"] < 0.05
    assert silverman_test(three, seed=seed)["p_value"] < 0.05


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_silverman_keeps_unimodality_of_one_population(seed):
    rng = np.random.default_rng(10 + seed)
    for x in (rng.normal(size=100), rng.gamma(3.0, size=100), rng.uniform(size=100)):
        assert silverman_test(x, seed=seed)["p_value"] > 0.05


def test_silverman_is_deterministic_and_checks_its_input():
    x = np.random.default_rng(0).normal(size=50)
    assert silverman_test(x, seed=3) == silverman_test(x, seed=3)
    assert silverman_test(np.zeros(10))["p_value"] == 1.0
    with pytest.raises(HdbenchError, match="at least 4"):
        silverman_test([1.0, 2.0, np.nan])
    with pytest.raises(HdbenchError, match="n_boot"):
        silverman_test(x, n_boot=0)


def test_bimodality_coefficient_of_known_distributions():
    rng = np.random.default_rng(0)
    assert bimodality_coefficient(rng.uniform(size=20000)) == pytest.approx(5 / 9, abs=0.01)
    assert bimodality_coefficient(rng.normal(size=20000)) == pytest.approx(1 / 3, abs=0.01)
    assert bimodality_coefficient(np.r_[np.zeros(100), np.ones(100)]) > 0.9
    assert np.isnan(bimodality_coefficient(np.ones(10)))


def test_gmm_bic_picks_the_number_of_clusters():
    rng = np.random.default_rng(1)
    assert gmm_bic(rng.normal(size=200))["best"] == 1
    three = np.r_[rng.normal(-3, 0.3, 60), rng.normal(0, 0.3, 60), rng.normal(3, 0.3, 60)]
    out = gmm_bic(three)
    assert out["best"] == 3 and out["delta_bic_1"] > 10 and len(out["bic"]) == 3
    # identical values within clusters (as in the references) stay finite
    assert gmm_bic(np.repeat([-0.04, 0.0, 0.04], 30))["best"] == 3


def test_percentile_and_circular_intervals():
    reps = np.linspace(0, 1, 101)
    assert percentile_interval(reps, 0.9) == pytest.approx((0.05, 0.95))
    lo, hi = percentile_interval(np.c_[reps, np.full(101, np.nan)], 0.9, axis=0)
    assert lo[0] == pytest.approx(0.05) and np.isnan(hi[1])
    # around ±π the interval is not cut in two
    angles = np.angle(np.exp(1j * (np.pi + np.linspace(-0.2, 0.2, 101))))
    lo, hi = circular_interval(np.pi, angles, 0.9)
    assert lo == pytest.approx(np.pi - 0.18) and hi == pytest.approx(np.pi + 0.18)
    with pytest.raises(HdbenchError, match="level"):
        percentile_interval(reps, 1.5)
    counts = bootstrap_counts(7, 50, seed=0)
    assert counts.shape == (50, 7) and np.all(counts.sum(1) == 7)


def _table(a: np.ndarray) -> pd.DataFrame:
    """A classified tuning table with AV asymmetries ``a`` (all units HD-tuned)."""
    table = pd.DataFrame({"max_rate": 1.0, "r": 0.8, "av_asymmetry": a, "av_slope_norm": 2 * a})
    table["cell_type"] = np.where(a >= 0.03, "shifter_ccw",
                                  np.where(a <= -0.03, "shifter_cw", "compass"))
    table.attrs["thresholds"] = {"inactive_rate": 1e-3, "min_r": 0.3, "kappa": 0.03}
    return table


def test_a_reference_like_population_is_multimodal():
    rng = np.random.default_rng(2)
    a = np.r_[rng.normal(0, 0.003, 54), rng.normal(0.15, 0.01, 9), rng.normal(-0.15, 0.01, 9)]
    out = cell_type_continuum(_table(a))
    for measure in ("av_asymmetry", "av_slope_norm"):
        assert out[measure]["multimodal"], out[measure]
        assert out[measure]["silverman_p"] < 0.05 and out[measure]["gmm_best"] == 3
    # the counts do not move over the range of kappa that lies in the gaps
    kt = pd.DataFrame(out["kappa_table"]).set_index("kappa")
    assert kt.loc[0.03, "compass"] == kt.loc[0.05, "compass"] == 54


def test_a_continuum_is_unimodal_and_its_counts_follow_kappa():
    a = np.random.default_rng(3).normal(0, 0.15, 90)
    out = cell_type_continuum(_table(a))
    assert out["av_asymmetry"]["multimodal"] is False
    assert out["av_asymmetry"]["silverman_p"] > 0.05 and out["av_asymmetry"]["gmm_best"] == 1
    kt = kappa_table(_table(a), kappas=(0.01, 0.03, 0.1, 0.2))
    assert np.all(np.diff(kt["compass"]) > 0)  # every kappa moves units between classes
    assert np.all(kt[["compass", "shifter_cw", "shifter_ccw"]].sum(axis=1) == 90)


def test_small_samples_get_no_test():
    out = distribution_summary(np.array([0.1, 0.2, np.nan]))
    assert out["n"] == 2 and np.isnan(out["silverman_p"]) and out["multimodal"] is None
    with pytest.raises(HdbenchError, match="cell_type"):
        cell_type_continuum(pd.DataFrame({"av_asymmetry": [0.1]}))
