"""Heterogeneous reference instances: documented cell-to-cell variability, every instance still
integrates (reference_circuits.rodent / fly module docstrings)."""

import math

import numpy as np
import pytest

import reference_circuits
from reference_circuits import fly, measure, rodent
from reference_circuits.base import jitter_rng, lognormal_factors
from reference_circuits.rodent import adn_readout, av_sensitivities, ring_bump

NAMES = ["rodent", "fly"]


def _adn(c):
    return c.populations["ADN"].units


# -- building blocks, against closed forms ---------------------------------------------------

def test_lognormal_factors_have_mean_1_and_the_cv():
    rng = np.random.default_rng(0)
    x = lognormal_factors(rng, 200_000, 0.5)
    assert np.all(x > 0)
    assert x.mean() == pytest.approx(1.0, abs=0.01)
    assert x.std() / x.mean() == pytest.approx(0.5, rel=0.05)  # clipping at ±3 SD trims a little
    assert np.all(lognormal_factors(rng, 10, 0.0) == 1.0)


def test_av_sensitivities_mean_1_floor_and_cv():
    c = av_sensitivities(np.random.default_rng(1), (2000, 64), 0.2)
    np.testing.assert_allclose(c.mean(axis=1), 1.0)
    assert c.min() >= 0.75 - 1e-12
    assert np.mean(c.std(axis=1)) == pytest.approx(0.2, rel=0.15)
    assert np.mean((c - 1) ** 3) > 0  # right-skewed


def test_ring_bump_is_the_simulated_fixed_point():
    # noise-free, homogeneous: the analytic truncated cosine is the ring's settled bump
    c = reference_circuits.load("rodent", noise_std=0.0, weight_jitter=0.0, gain_jitter=0.0,
                                av_jitter=0.0)
    rates = measure.steady_state(c, n_steps=200, theta0=0.0)
    pd = c.preferred_directions[:64]
    bump = ring_bump(c.config, pd)[:, 0]  # centre at angle 0
    np.testing.assert_allclose(rates[:64], bump, atol=0.01 * bump.max())
    np.testing.assert_allclose(rates[64:128], bump, atol=0.01 * bump.max())
    assert measure.fwhm_deg(bump, pd) == pytest.approx(74.0, abs=2.0)


def test_adn_readout_gives_each_cell_its_target_width():
    config = rodent.RodentConfig()
    pd = 2 * np.pi * np.arange(64) / 64
    bump = ring_bump(config, pd)
    centre = pd + np.radians(3.0) * np.random.default_rng(2).standard_normal(64)
    target = np.radians(np.linspace(35.0, 140.0, 64))
    kernel, threshold = adn_readout(pd, centre, target, bump)
    np.testing.assert_allclose(kernel.sum(axis=1), 1.0)
    assert np.all(kernel >= 0) and np.all(threshold >= 0)
    rates = np.maximum(kernel @ (2 * bump) - threshold[:, None], 0.0)
    grid = 2 * np.pi * np.arange(bump.shape[1]) / bump.shape[1]
    half = 0.5 * (rates.min(axis=1, keepdims=True) + rates.max(axis=1, keepdims=True))
    width = 2 * np.pi * np.mean(rates >= half, axis=1)  # FWHM as hdbench.analysis.fwhm has it
    np.testing.assert_allclose(np.degrees(width), np.degrees(target), atol=1.0)
    peak = grid[np.argmax(rates, axis=1)]
    assert np.degrees(np.abs(measure.wrap(peak - centre))).max() < 2.0


def test_version_constants():
    assert rodent.VERSION >= 2 and fly.VERSION >= 2
    assert reference_circuits.load("rodent").version == rodent.VERSION
    assert reference_circuits.load("fly").version == fly.VERSION


# -- what an instance draws --------------------------------------------------------------------

def test_aspects_of_variability_are_independent():
    # switching one kind of variability off leaves the others' draws unchanged
    a = reference_circuits.load("rodent", instance_seed=3)
    b = reference_circuits.load("rodent", instance_seed=3, av_jitter=0.0)
    np.testing.assert_array_equal(a.gains, b.gains)
    np.testing.assert_array_equal(a.recurrent_weights()[_adn(a)], b.recurrent_weights()[_adn(b)])
    assert not np.array_equal(a._parts.av_pos, b._parts.av_pos)
    assert jitter_rng(101, 3, 1).random() != jitter_rng(101, 3, 2).random()


def test_all_variability_off_gives_identical_cells():
    c = reference_circuits.load("rodent", gain_jitter=0.0, av_jitter=0.0, adn_fwhm_cv=0.0,
                                pd_jitter_deg=0.0, weight_jitter=0.0)
    np.testing.assert_array_equal(c.gains, 1.0)
    W = c.recurrent_weights()
    adn = W[_adn(c), :64]
    for i in range(1, 64):  # every ADN cell reads the ring with the same kernel, rotated
        np.testing.assert_allclose(np.roll(adn[0], i), adn[i], atol=1e-12)
    assert np.ptp(c._parts.bias[_adn(c)]) < 1e-9
    assert np.ptp(np.abs(c._parts.av_pos[:128])) < 1e-15


@pytest.mark.parametrize("name, cv", [("rodent", 0.5), ("fly", 0.5)])
def test_gains_are_log_normal_with_the_configured_cv(name, cv):
    g = np.concatenate([reference_circuits.load(name, instance_seed=k).gains for k in range(6)])
    assert np.all(g > 0)
    assert np.log(g).std() == pytest.approx(math.sqrt(math.log1p(cv * cv)), rel=0.15)


@pytest.mark.parametrize("name", NAMES)
def test_gains_stay_an_exact_symmetry_with_noise(name):
    # drive noise scales with the gains: the gain-free rates and the heading do not change
    x = measure.constant_av_inputs([90.0, -60.0], 60)
    plain = reference_circuits.load(name, gain_jitter=0.0)
    scaled = reference_circuits.load(name, gain_jitter=0.5)
    a, b = plain.simulate(x, seed=4), scaled.simulate(x, seed=4)
    np.testing.assert_allclose(b.rates / scaled.gains, a.rates, atol=1e-4)
    assert np.abs(measure.wrap(b.decoded_heading() - a.decoded_heading())).max() < 1e-3


def test_rodent_cells_are_heterogeneous_like_biology():
    # measured as any model is measured: 64 trials, the benchmarks' classification rule
    c = reference_circuits.load("rodent", noise_std=0.0)
    stats = measure.cell_statistics(c, "rodent")
    assert stats["cell_types"] == {"compass": 64, "shifter_ccw": 64, "shifter_cw": 64}
    q05, q25, q50, q75, q95 = stats["fwhm_deg"]["q05_q25_q50_q75_q95"]
    assert q95 - q05 > 25.0 and 35.0 <= q05 and q95 <= 100.0
    assert stats["peak_rate"]["cv"] > 0.4
    slopes = stats["av_slope_per_peak"]["q05_q25_q50_q75_q95"]
    assert slopes[0] < -0.015 and slopes[-1] > 0.015  # CW and CCW shifters
    assert "cv" not in stats["av_slope_per_peak"]  # signed: a CV would mean nothing


def test_rodent_adn_widths_measured_on_the_task_follow_the_draw():
    c = reference_circuits.load("rodent", noise_std=0.0, instance_seed=2)
    from hdbench.analysis import classify_units
    from hdbench.task import make_trials

    trials = make_trials("rodent", 64, seed=[7, 0])
    table = classify_units(c.simulate(trials), trials, gmm=False, max_shift_s=0.0)
    measured = np.degrees(table["fwhm"].to_numpy()[_adn(c)])
    kernel = c._parts.weights[_adn(c), :64] / c.gains[_adn(c), None] * c.gains[None, :64]
    threshold = -c._parts.bias[_adn(c)] / c.gains[_adn(c)]
    bump = ring_bump(c.config, c.preferred_directions[:64])
    rest = np.maximum(kernel @ (2 * bump) - threshold[:, None], 0.0)
    half = 0.5 * (rest.min(axis=1, keepdims=True) + rest.max(axis=1, keepdims=True))
    drawn = 360.0 * np.mean(rest >= half, axis=1)
    assert np.corrcoef(measured, drawn)[0, 1] > 0.95
    assert np.median(np.abs(measured - drawn)) < 8.0  # 10° bins and turning blur a little


# -- every instance integrates --------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("instance", [1, 2, 3])
def test_every_instance_integrates(name, instance):
    c = reference_circuits.load(name, instance_seed=instance)
    metrics = measure.task_error(c, name, n_trials=20)
    assert metrics["rms_error_deg"] <= 8.0
    assert 0.95 <= metrics["gain"] <= 1.05
    quiet = reference_circuits.load(name, instance_seed=instance, noise_std=0.0)
    assert measure.drift_deg_per_s(quiet, duration_s=5.0, n_starts=8)["max"] < 1.5


def test_instance_report_fields():
    report = measure.instance_report("rodent", 1, n_trials=8)
    assert report["instance_seed"] == 1
    assert set(report) >= {"task", "drift_deg_per_s_noise_free", "cell_types", "fwhm_deg",
                           "peak_rate", "av_slope_per_peak"}
    assert report["fwhm_deg"]["n"] == 192


def test_measure_cli_parses_instances():
    assert measure._instances("0-4") == [0, 1, 2, 3, 4]
    assert measure._instances("0,3") == [0, 3]
    import argparse

    with pytest.raises(argparse.ArgumentTypeError):
        measure._instances("a-b")
