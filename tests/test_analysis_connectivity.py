"""Connectivity motifs on hand-built weight matrices with known offsets."""

import numpy as np
import pandas as pd
import pytest

from hdbench.analysis import (
    connectivity_summary,
    excludes_zero,
    fit_pathway,
    pathway_fits,
    profile_summary,
    ring_score,
    sort_by_preferred,
    weight_profiles,
)
from hdbench.analysis.connectivity import delta_centers, wrap
from hdbench.errors import HdbenchError

N = 48  # units per population
OFFSET = np.radians(30.0)


def circuit(offset=OFFSET, noise=0.0, seed=0, shifter_target="compass"):
    """Compass ring (symmetric cosine) + CW / CCW shifters projecting at −/+ offset."""
    rng = np.random.default_rng(seed)
    pd_ = rng.uniform(0, 2 * np.pi, N)
    pds = np.r_[pd_, np.roll(pd_, 5), np.roll(pd_, 11)]
    types = np.array(["compass"] * N + ["shifter_cw"] * N + ["shifter_ccw"] * N)
    d = pds[:, None] - pds[None, :]  # target − source
    W = np.zeros((3 * N, 3 * N))
    C, CW, CCW = slice(0, N), slice(N, 2 * N), slice(2 * N, 3 * N)
    W[C, C] = (-1.0 + 2.0 * np.cos(d[C, C])) / N
    T = {"compass": C, "shifter_cw": CW, "shifter_ccw": CCW}[shifter_target]
    W[T, CW] = (-0.5 + np.cos(d[T, CW] + offset)) / N
    W[T, CCW] = (-0.5 + np.cos(d[T, CCW] - offset)) / N
    W[CW, C] = W[CCW, C] = np.exp(2 * (np.cos(d[CW, C]) - 1)) / N
    W += noise * rng.standard_normal(W.shape) / N
    np.fill_diagonal(W, 0.0)
    table = pd.DataFrame({"pd": pds, "cell_type": types})
    return W, table


def test_offsets_signs_and_symmetry_are_recovered():
    W, table = circuit()
    s = connectivity_summary(W, table)
    assert s.offset_target == "compass"
    width = np.radians(10.0)
    assert s.shifter_offsets["shifter_cw"] == pytest.approx(-OFFSET, abs=width / 2)
    assert s.shifter_offsets["shifter_ccw"] == pytest.approx(OFFSET, abs=width / 2)
    assert s.offsets_opposite
    assert s.compass_symmetry == pytest.approx(1.0, abs=1e-3)
    cc = s.pairs[(s.pairs.target == "compass") & (s.pairs.source == "compass")].iloc[0]
    assert cc.offset == pytest.approx(0.0, abs=width / 2)
    assert cc.exc_lobe > 0 and cc.inh_lobe > 0 and cc.fourier1 > 0.95
    assert cc.trough_offset == pytest.approx(np.pi, abs=width)
    d = s.to_dict()
    assert d["shifter_offsets_deg"]["shifter_ccw"] == pytest.approx(30.0, abs=5.0)


@pytest.mark.parametrize("offset_deg", [-60.0, -34.0, 12.0, 45.0, 90.0])
def test_offset_recovered_within_one_bin_under_noise(offset_deg):
    W, table = circuit(offset=np.radians(offset_deg), noise=0.15, seed=3)
    s = connectivity_summary(W, table)
    got = np.degrees(s.shifter_offsets["shifter_ccw"])
    assert got == pytest.approx(offset_deg, abs=10.0)
    assert np.degrees(s.shifter_offsets["shifter_cw"]) == pytest.approx(-offset_deg, abs=10.0)


def test_auto_target_finds_ring_to_ring_shifts():
    """Rodent-like: the shift is between the shifter rings, compass cells only read out."""
    W, table = circuit(shifter_target="shifter_ccw")
    s = connectivity_summary(W, table)
    assert s.offset_target == "shifter_ccw"
    assert np.degrees(s.shifter_offsets["shifter_cw"]) == pytest.approx(-30, abs=5)
    assert np.degrees(s.shifter_offsets["shifter_ccw"]) == pytest.approx(30, abs=5)
    fixed = connectivity_summary(W, table, offset_target="compass")
    assert np.isnan(fixed.shifter_offsets["shifter_cw"])  # no shifter -> compass weights


def test_ring_score_separates_cosine_rings_from_random_weights():
    W, table = circuit()
    pds = table["pd"].to_numpy()
    assert ring_score(W[:N, :N], pds[:N]) > 0.99
    rng = np.random.default_rng(1)
    assert ring_score(rng.standard_normal((N, N)), pds[:N]) < 0.05


def test_profiles_are_binned_on_a_grid_centred_on_zero():
    W, table = circuit()
    prof = weight_profiles(W, table, n_bins=36)
    g = prof[(prof.target == "compass") & (prof.source == "compass")]
    np.testing.assert_allclose(g["delta"].to_numpy(), delta_centers(36))
    assert 0.0 in g["delta"].to_numpy() and np.pi in g["delta"].to_numpy()
    assert g["n"].sum() == N * (N - 1)  # self-weights excluded
    assert len(prof) == 9 * 36
    Ws, order = sort_by_preferred(W, table)
    assert Ws.shape == W.shape and np.all(np.diff(table["pd"].to_numpy()[order][:N]) >= 0)


def test_profile_summary_of_a_known_profile():
    delta = delta_centers(36)
    out = profile_summary(delta, np.cos(delta - np.radians(40)), smooth_bins=0)
    assert np.degrees(out["offset"]) == pytest.approx(40.0, abs=1.0)
    assert out["fourier1"] == pytest.approx(1.0)
    assert out["exc_lobe"] == pytest.approx(1.0, abs=0.01)
    flat = profile_summary(delta, np.zeros(36))
    assert np.isnan(flat["offset"]) and np.isnan(flat["symmetry"])


def test_wrap_is_half_open():
    assert wrap(-np.pi) == np.pi and wrap(3 * np.pi) == np.pi and wrap(0.5) == 0.5


def test_bad_input_gets_a_clear_error():
    W, table = circuit()
    with pytest.raises(HdbenchError, match="square"):
        weight_profiles(W[:, :5], table)
    with pytest.raises(HdbenchError, match="one preferred direction"):
        weight_profiles(W, table["pd"].to_numpy()[:10], table["cell_type"].to_numpy())
    with pytest.raises(HdbenchError, match="offset_target"):
        connectivity_summary(W, table, offset_target="ring")
    with pytest.raises(HdbenchError, match="n_bins"):
        weight_profiles(W, table, n_bins=2)


# -- first-harmonic fits -------------------------------------------------------------------


def test_fit_of_an_exact_cosine_is_exact():
    rng = np.random.default_rng(0)
    pt, ps = rng.uniform(0, 2 * np.pi, 30), rng.uniform(0, 2 * np.pi, 20)
    W = 0.3 + 0.7 * np.cos(wrap(pt[:, None] - ps[None, :]) - np.radians(-50.0))
    fit = fit_pathway(W, pt, ps, n_boot=100, n_perm=99)
    assert np.degrees(fit["offset"]) == pytest.approx(-50.0, abs=1e-9)
    assert fit["amplitude"] == pytest.approx(0.7) and fit["baseline"] == pytest.approx(0.3)
    assert fit["r2"] == pytest.approx(1.0)
    assert fit["p_shuffle"] == pytest.approx(1 / 100)
    assert fit["offset_lo"] == pytest.approx(fit["offset"], abs=1e-6)
    assert fit["n_pairs"] == 600 and fit["n_sources"] == 20


@pytest.mark.parametrize("offset_deg", [-120.0, -45.0, 0.0, 30.0, 90.0, 175.0])
def test_fit_recovers_a_known_offset_within_its_interval(offset_deg):
    """Noisy rings: the interval over source units contains the true offset (at the 99 %
    level, so that one of these fixed draws misses by chance only rarely; the 90 % coverage
    is checked over repeated draws below)."""
    W, table = circuit(offset=np.radians(offset_deg), noise=0.6, seed=4)
    fits = pathway_fits(W, table, n_boot=1000, n_perm=199, level=0.99, seed=1)
    row = fits[(fits.target == "compass") & (fits.source == "shifter_ccw")].iloc[0]
    lo, hi = np.degrees([row.offset_lo, row.offset_hi])
    truth = offset_deg + 360.0 * np.round((np.degrees(row.offset) - offset_deg) / 360.0)
    assert lo <= truth <= hi, (lo, np.degrees(row.offset), hi)
    assert hi - lo < 60.0 and row.p_shuffle < 0.01


def test_interval_coverage_on_repeated_noisy_rings():
    """Over independent noise draws the 90 % intervals cover the truth most of the time (the
    exact rate is 0.9 only asymptotically; 20 draws allow a loose check)."""
    covered = 0
    for seed in range(20):
        rng = np.random.default_rng(100 + seed)
        pt, ps = rng.uniform(0, 2 * np.pi, 24), rng.uniform(0, 2 * np.pi, 16)
        gain = 1.0 + 0.5 * rng.standard_normal(16)  # source units differ: clustered noise
        W = gain * np.cos(wrap(pt[:, None] - ps[None, :]) - 0.6) \
            + 1.5 * rng.standard_normal((24, 16))
        fit = fit_pathway(W, pt, ps, n_boot=400, n_perm=0, seed=seed)
        covered += fit["offset_lo"] <= 0.6 <= fit["offset_hi"]
    assert covered >= 15


def test_shuffled_p_separates_structure_from_noise():
    rng = np.random.default_rng(5)
    pt, ps = rng.uniform(0, 2 * np.pi, 40), rng.uniform(0, 2 * np.pi, 40)
    noise = rng.standard_normal((40, 40))
    assert fit_pathway(noise, pt, ps, n_boot=0, n_perm=199)["p_shuffle"] > 0.05
    ring = noise + 2.0 * np.cos(pt[:, None] - ps[None, :])
    assert fit_pathway(ring, pt, ps, n_boot=0, n_perm=199)["p_shuffle"] == pytest.approx(0.005)


def test_fit_is_unbiased_where_the_binned_argmax_is_not():
    """Source PDs bunched on one side of the ring skew a binned profile's peak but not a fit
    to single weights."""
    rng = np.random.default_rng(6)
    pt = rng.uniform(0, 2 * np.pi, 60)
    ps = np.mod(rng.vonmises(0.0, 2.0, 60), 2 * np.pi)
    types = np.array(["compass"] * 60 + ["shifter_ccw"] * 60)
    pds = np.r_[pt, ps]
    W = np.zeros((120, 120))
    W[:60, 60:] = np.cos(wrap(pt[:, None] - ps[None, :]) - np.radians(30)) \
        + 0.5 * rng.standard_normal((60, 60))
    s = connectivity_summary(W, pd.DataFrame({"pd": pds, "cell_type": types}), n_boot=300,
                             n_perm=99)
    row = s.pairs[(s.pairs.target == "compass") & (s.pairs.source == "shifter_ccw")].iloc[0]
    assert row.offset_lo <= np.radians(30) <= row.offset_hi
    assert "argmax_offset" in s.pairs and "offset_circmean" not in s.pairs


def test_pathway_without_weights_is_reported_as_nan():
    fit = fit_pathway(np.zeros((5, 5)), np.arange(5.0), np.arange(5.0))
    assert np.isnan(fit["offset"]) and np.isnan(fit["p_shuffle"])
    assert np.isnan(fit_pathway(np.ones((5, 2)), np.arange(5.0), np.arange(2.0))["offset"])
    with pytest.raises(HdbenchError, match="does not match"):
        fit_pathway(np.zeros((5, 4)), np.arange(5.0), np.arange(5.0))


def test_summary_reports_offsets_with_intervals():
    W, table = circuit(noise=0.3, seed=2)
    s = connectivity_summary(W, table, n_boot=300, n_perm=99)
    assert s.offsets_opposite and s.offsets_resolved
    lo, hi = s.shifter_intervals["shifter_ccw"]
    assert lo < s.shifter_offsets["shifter_ccw"] < hi and lo > 0
    d = s.to_dict()
    assert d["shifter_intervals_deg"]["shifter_cw"][1] < 0 and d["level"] == 0.9
    assert excludes_zero(0.1, 0.3) == 1 and excludes_zero(-0.3, -0.1) == -1
    assert excludes_zero(-0.1, 0.3) == 0 and excludes_zero(np.nan, 1.0) == 0
    assert excludes_zero(3.0, 3.5) == 0  # an interval across ±π is not "CCW"
