"""Published-style properties measured on systems whose answer is known by construction.

The analytic ring of tests/property_system.py has chosen tuning width, anticipatory time
intervals, projection shift and AV bandwidth; the measurements must give them back.
"""

import math

import numpy as np
import pandas as pd
import pytest

from hdbench.analysis import classify_units
from hdbench.analysis.properties import (
    LEAD_BINS_DEG_S,
    Populations,
    anticipatory_times,
    av_sigmoid_fits,
    bump_fwhm,
    measure_properties,
    projection_centres,
    split_half_stability,
    triangular_fit,
)
from hdbench.analysis.tuning import tuning_data
from hdbench.errors import HdbenchError
from hdbench.task import make_trials
from tests.property_system import PropertyRing, expected_lead

FLY = dict(fwhm_deg=90.0, ati_compass_ms=20.0, ati_shifter_ms=20.0, shift_deg=45.0,
           bandwidths=145.0)
RODENT = dict(n_compass=24, fwhm_deg=55.0, ati_compass_ms=17.0, ati_shifter_ms=95.0)


def _run(ring, task, n_trials=64):
    trials = make_trials(task, n_trials, [5, 0, 0])
    activity = ring.simulate(trials)
    table = classify_units(activity, trials, gmm=False, max_shift_s=0.0)
    return trials, activity, table


@pytest.fixture(scope="module")
def fly():
    ring = PropertyRing(**FLY)
    trials, activity, table = _run(ring, "fly")
    return ring, trials, activity, table, measure_properties(activity, trials,
                                                             ring.recurrent_weights(), table)


@pytest.fixture(scope="module")
def rodent():
    ring = PropertyRing(**RODENT)
    trials, activity, table = _run(ring, "rodent")
    return measure_properties(activity, trials, ring.recurrent_weights, table)


def test_the_ring_is_classified_as_built(fly):
    ring, _, _, table, measured = fly
    assert list(table["cell_type"]) == list(ring.cell_types)
    assert measured["n_compass"] == 36 and measured["n_shifters"] == 72


def test_packet_and_tuning_widths_come_back(fly, rodent):
    measured = fly[-1]
    assert measured["packet_width"] == pytest.approx(90.0, abs=3.0)
    assert measured["base_width"] == pytest.approx(180.0, abs=3.0)  # base = 2 x FWHM
    assert rodent["packet_width"] == pytest.approx(55.0, abs=3.0)
    assert rodent["base_width"] == pytest.approx(110.0, abs=3.0)


def test_anticipatory_time_intervals_come_back(fly, rodent):
    assert fly[-1]["ati_compass"] == pytest.approx(20.0, abs=2.0)
    assert rodent["ati_compass"] == pytest.approx(17.0, abs=2.0)
    assert rodent["ati_shifter"] == pytest.approx(95.0, abs=4.0)


def test_a_lagging_system_has_a_negative_ati():
    ring = PropertyRing(n_side=4, ati_compass_ms=-40.0, ati_shifter_ms=-40.0)
    trials, activity, table = _run(ring, "fly", n_trials=32)
    ati = anticipatory_times(tuning_data(activity, trials)) * 1e3
    assert np.nanmean(ati[:36]) == pytest.approx(-40.0, abs=3.0)


def test_shift_and_lead_come_back(fly):
    ring, trials, _, _, measured = fly
    assert measured["shift"] == pytest.approx(45.0, abs=2.0)
    av = np.degrees(trials.av[:, trials.spec.cue_steps:]) / trials.spec.dt
    for name, (lo, hi) in LEAD_BINS_DEG_S.items():
        sel = (av != 0) & (np.abs(av) >= lo) & (np.abs(av) < hi)
        assert sel.sum() > 50, name
        assert measured[f"lead_{name}"] == pytest.approx(expected_lead(ring, av[sel]), abs=1.0)
    assert measured["lead_fast"] > 10.0 > measured["lead_slow"] > 0.0


def test_shifters_projecting_against_their_turn_give_a_negative_shift_and_lag():
    ring = PropertyRing(**{**FLY, "shift_deg": -45.0})
    trials, activity, table = _run(ring, "fly", n_trials=32)
    measured = measure_properties(activity, trials, ring.recurrent_weights(), table)
    assert measured["shift"] == pytest.approx(-45.0, abs=2.0)
    assert measured["lead_fast"] < -10.0


def test_bandwidth_inflexion_and_ahv_fraction_come_back(fly, rodent):
    measured = fly[-1]
    assert np.all(np.abs(measured["bandwidth"] / 145.0 - 1.0) < 0.05)
    assert measured["inflexion"] == pytest.approx(0.0, abs=5.0)
    assert measured["ahv_fraction"] == pytest.approx(72 / 108)
    assert rodent["ahv_fraction"] == pytest.approx(0.75)


def test_sigmoid_fit_recovers_preference_and_a_shifted_inflexion():
    ring = PropertyRing(n_compass=8, n_side=4, gain_base=0.0, bandwidths=100.0)
    trials, activity, _ = _run(ring, "fly", n_trials=32)
    data = tuning_data(activity, trials)
    fits = av_sigmoid_fits(data, np.arange(8, 16))
    assert list(fits["preferred"]) == [1.0] * 4 + [-1.0] * 4  # CCW shifters, then CW
    assert np.allclose(fits["bandwidth"], 100.0, rtol=0.05)
    assert np.allclose(fits["inflexion"], 0.0, atol=5.0)
    assert (fits["r2"] > 0.99).all()


def test_measurements_ignore_each_units_gain(fly):
    ring, trials, activity, table, measured = fly
    gains = np.random.default_rng(0).uniform(0.2, 5.0, activity.n_units)
    scaled = type(activity)(**{**activity.__dict__, "rates": activity.rates * gains})
    again = measure_properties(scaled, trials, ring.recurrent_weights(), table)
    for name in ("packet_width", "base_width", "ati_compass", "shift", "lead_fast"):
        assert again[name] == pytest.approx(measured[name], rel=1e-5, abs=1e-5), name


def test_triangular_fit_on_exact_triangles():
    centers = (np.arange(72) + 0.5) * 2 * np.pi / 72
    d = np.abs(np.angle(np.exp(1j * (centers - 2.0))))
    curves = np.stack([3.0 + 5.0 * np.clip(1 - d / np.radians(h), 0, None)
                       for h in (40.0, 60.0, 100.0)] + [np.ones(72)])
    fits = triangular_fit(curves, centers)
    assert np.degrees(fits["base_width"][:3]).tolist() == pytest.approx([80, 120, 200], abs=1.5)
    assert fits["peak_direction"][:3].tolist() == pytest.approx([2.0] * 3, abs=0.02)
    assert (fits["r2"][:3] > 0.99).all()
    assert math.isnan(fits["base_width"][3])  # flat


def test_unstable_sparse_units_are_left_out():
    ring = PropertyRing(n_compass=12, n_side=2)
    trials, activity, table = _run(ring, "fly", n_trials=32)
    rng = np.random.default_rng(1)
    sparse = (rng.random(activity.rates.shape[:2] + (6,)) < 0.002).astype(np.float32)
    rates = np.concatenate([activity.rates, sparse], axis=-1)
    noisy = type(activity)(**{**activity.__dict__, "rates": rates, "cell_types": None})
    stability = split_half_stability(tuning_data(noisy, trials))
    assert (stability[:16] > 0.95).all()
    assert (stability[16:] < 0.5).all()
    table = pd.DataFrame({"cell_type": ["compass"] * 22, "pd": np.zeros(22)})
    assert Populations.from_table(table, stability).compass.tolist() == list(range(16))


def test_no_packet_without_a_coherent_population():
    ring = PropertyRing(n_compass=4, n_side=2)
    trials, activity, table = _run(ring, "fly", n_trials=16)
    data = tuning_data(activity, trials)
    assert math.isnan(bump_fwhm(data, [0, 1, 2, 3], table["pd"]))  # too few units
    measured = measure_properties(activity, trials, None, table)
    assert math.isnan(measured["packet_width"]) and math.isnan(measured["shift"])


def test_projection_centres_ignore_a_weak_unshifted_component():
    pd_ = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    W = np.zeros((65, 65))
    W[:64, 64] = np.exp(12 * (np.cos(pd_ - 0.6) - 1)) + 0.35 * np.exp(12 * (np.cos(pd_) - 1))
    centre = projection_centres(W, [64], np.arange(64), np.r_[pd_, 0.0])
    assert centre[0] == pytest.approx(0.6, abs=0.02)  # a plain weighted mean: 0.45


def test_bad_input_is_named():
    with pytest.raises(HdbenchError, match="lacks columns"):
        Populations.from_table(pd.DataFrame({"pd": [0.0]}))
    ring = PropertyRing(n_compass=8, n_side=2)
    trials, activity, table = _run(ring, "fly", n_trials=8)
    with pytest.raises(HdbenchError, match="rows for"):
        measure_properties(activity, trials, None, table.iloc[:3])
    with pytest.raises(HdbenchError, match="square"):
        projection_centres(np.zeros((3, 2)), [0], [1], np.zeros(3))
