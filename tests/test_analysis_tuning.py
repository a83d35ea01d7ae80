"""Tuning and cell types on synthetic units whose tuning is known exactly."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hdbench.analysis import (
    CLASSES,
    assign_cell_types,
    av_tuning_curves,
    class_counts,
    classify_units,
    compare_cell_types,
    hd_av_map,
    threshold_sensitivity,
    tuning_curves,
)
from hdbench.analysis.tuning import circular_stats, fwhm, hd_bin_centers, skaggs_information
from hdbench.errors import HdbenchError
from hdbench.system import Activity
from hdbench.task import make_trials

KAPPA_VM = 3.0  # von Mises concentration of the synthetic tuning curves


def von_mises(theta, pd):
    return np.exp(KAPPA_VM * (np.cos(theta - pd) - 1.0))


@pytest.fixture(scope="module")
def synthetic():
    """40 units of known type: 10 compass, 10 CW and 10 CCW shifters, 5 untuned, 5 silent.

    Unit 0 anticipates the heading by 4 steps (100 ms); the decoded heading is the truth.
    """
    trials = make_trials("cueva-1x", 200, seed=[5, 1])
    th, av = trials.heading, trials.av
    rng = np.random.default_rng(0)
    pds = rng.uniform(0, 2 * np.pi, 40)
    types = ["compass"] * 10 + ["shifter_cw"] * 10 + ["shifter_ccw"] * 10 + ["other"] * 5 \
        + ["inactive"] * 5
    drive = np.tanh(av / 0.05)
    rates = np.zeros(th.shape + (40,), dtype=np.float32)
    for i, t in enumerate(types):
        vm = von_mises(th, pds[i])
        rates[..., i] = {"compass": vm, "shifter_cw": vm * (1 - 0.8 * drive),
                         "shifter_ccw": vm * (1 + 0.8 * drive),
                         "other": 0.5 + 0.3 * drive, "inactive": 0.0 * vm}[t]
    rates[:, :-4, 0] = von_mises(th[:, 4:], pds[0])  # fires 4 steps ahead of the heading
    outputs = np.stack([np.sin(th), np.cos(th)], -1)
    act = Activity(rates=rates, outputs=outputs, inputs=trials.inputs, heading=th, av=av,
                   cell_types=tuple(types))
    return act, trials, pds, np.array(types)


def test_classes_recovered_exactly(synthetic):
    act, trials, _, types = synthetic
    table = classify_units(act, trials)
    assert list(table["cell_type"]) == list(types)
    assert table["true_type"].tolist() == list(types)
    assert class_counts(table) == {"inactive": 5, "compass": 10, "shifter_cw": 10,
                                   "shifter_ccw": 10, "other": 5}
    tuned = table["cell_type"].isin(["compass", "shifter_cw", "shifter_ccw"])
    assert (table.loc[tuned, "cell_type_gmm"] == table.loc[tuned, "cell_type"]).all()
    assert table.attrs["thresholds"] == {"inactive_rate": 1e-3, "min_r": 0.3, "kappa": 0.03}


def test_tuning_statistics_match_the_generating_curves(synthetic):
    act, trials, pds, types = synthetic
    table = classify_units(act, trials, gmm=False)
    tuned = np.isin(types, ["compass", "shifter_cw", "shifter_ccw"])
    err = np.abs(np.angle(np.exp(1j * (table["pd"].to_numpy() - pds))))[tuned]
    assert err.max() < np.radians(2.0)
    # Von Mises with κ = 3: R = I1(3)/I0(3) = 0.8096 (bins of 10° shrink it by sinc(5°)).
    r = table.loc[tuned, "r"].to_numpy()[1:]
    assert r == pytest.approx(0.8096 * np.sinc(1 / 36), abs=0.01)
    width = 2 * np.arccos(1 + np.log(0.5 + 0.5 * np.exp(-2 * KAPPA_VM)) / KAPPA_VM)
    assert table.loc[tuned, "fwhm"].to_numpy()[1:] == pytest.approx(width, abs=np.radians(4))
    a = table["av_asymmetry"].to_numpy()
    assert np.all(a[10:20] < -0.3) and np.all(a[20:30] > 0.3) and np.all(np.abs(a[1:10]) < 0.02)
    # Slope conventions: a CCW shifter's rate rises with CCW speed and falls with CW speed.
    assert np.all(table["av_slope_ccw"].to_numpy()[20:30] > 0)
    assert np.all(table["av_slope_cw"].to_numpy()[20:30] < 0)
    assert np.all(table["av_slope_cw"].to_numpy()[10:20] > 0)
    assert table["ati"].iloc[0] == pytest.approx(0.1, abs=0.015)
    assert np.abs(table["ati"].to_numpy()[1:10]).max() < 0.015
    assert np.all(table["info"].to_numpy()[:30] > 0.5) and np.all(table["info"][30:] < 0.01)


def test_thresholds_move_units_between_classes(synthetic):
    act, trials, _, _ = synthetic
    table = classify_units(act, trials, gmm=False)
    assert class_counts(assign_cell_types(table, kappa=0.9))["compass"] == 30
    assert class_counts(assign_cell_types(table, min_r=0.95))["other"] == 35
    assert class_counts(assign_cell_types(table, inactive_rate=10.0))["inactive"] == 40


def test_sensitivity_report_has_every_threshold_and_factor(synthetic):
    act, trials, _, _ = synthetic
    table = classify_units(act, trials, gmm=False)
    sens = threshold_sensitivity(table)
    assert set(sens["threshold"]) == {"inactive_rate", "min_r", "kappa"}
    assert sorted(set(sens["factor"])) == [0.5, 0.75, 1.0, 1.25, 1.5]
    assert np.allclose(sens[list(CLASSES)].sum(axis=1), 1.0)
    base = sens[(sens.threshold == "kappa") & (sens.factor == 1.0)]
    assert base["compass"].iloc[0] == pytest.approx(10 / 40)


def test_curves_maps_and_decoded_heading(synthetic):
    act, trials, pds, _ = synthetic
    curves, centers, occ = tuning_curves(act, trials, n_bins=99)
    assert curves.shape == (40, 99) and centers.shape == (99,) and occ.sum() > 0
    dec, _, _ = tuning_curves(act, trials, n_bins=99, against="decoded")
    np.testing.assert_allclose(np.nan_to_num(dec), np.nan_to_num(curves), atol=1e-5)
    jm = hd_av_map(act, trials, n_hd_bins=36, n_av_bins=20)
    assert jm.rates.shape == (40, 36, 21)
    assert np.all(jm.av_centers[:10] < 0) and np.all(jm.av_centers[11:] > 0)
    av_curves, av_centers = av_tuning_curves(act, trials)
    # The untuned units follow 0.5 + 0.3 tanh(AV / 0.05) exactly.
    expected = 0.5 + 0.3 * np.tanh(av_centers / 0.05)
    np.testing.assert_allclose(av_curves[30], expected, atol=0.01)
    assert av_centers.shape == (21,)


def test_inhibitory_units_are_excluded_from_ground_truth_accuracy():
    out = compare_cell_types(["compass", "other", "shifter_cw", "shifter_ccw"],
                             ["compass", "inhibitory", "shifter_cw", "shifter_cw"])
    assert out["accuracy"] == pytest.approx(2 / 3) and out["n_compared"] == 3
    assert out["excluded"] == {"other": 1}
    assert isinstance(out["confusion"], pd.DataFrame)


def test_bad_input_gets_a_clear_error(synthetic):
    act, trials, _, _ = synthetic
    with pytest.raises(HdbenchError, match="unknown thresholds"):
        assign_cell_types(classify_units(act, trials, gmm=False), kapa=0.1)
    with pytest.raises(HdbenchError, match=">= 0"):
        classify_units(act, trials, kappa=-1.0)
    bare = Activity(rates=act.rates, outputs=act.outputs, inputs=act.inputs)
    with pytest.raises(HdbenchError, match="heading and AV"):
        classify_units(bare)
    with pytest.raises(HdbenchError, match="batch, time, units"):
        classify_units(Activity(rates=act.rates[0], outputs=act.outputs, inputs=act.inputs))
    with pytest.raises(HdbenchError, match="n_av_bins"):
        classify_units(act, trials, n_av_bins=7)


@settings(max_examples=25, deadline=None)
@given(pd=st.floats(0, 2 * np.pi), shift=st.floats(-np.pi, np.pi),
       kappa=st.floats(0.5, 8.0))
def test_circular_stats_are_rotation_equivariant(pd, shift, kappa):
    centers = hd_bin_centers(72)
    curve = np.exp(kappa * (np.cos(centers - pd) - 1))[None]
    moved = np.exp(kappa * (np.cos(centers - pd - shift) - 1))[None]
    p0, r0 = circular_stats(curve, centers)
    p1, r1 = circular_stats(moved, centers)
    assert np.angle(np.exp(1j * (p1[0] - p0[0] - shift))) == pytest.approx(0.0, abs=1e-6)
    assert r1[0] == pytest.approx(r0[0], abs=1e-6)
    assert skaggs_information(curve, np.ones(72))[0] == pytest.approx(
        skaggs_information(moved, np.ones(72))[0], abs=1e-3)
    assert fwhm(curve)[0] == pytest.approx(fwhm(moved)[0], abs=np.radians(0.5))
