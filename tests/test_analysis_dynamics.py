"""Dynamics: slow points of known systems, silencing signatures, drift, robustness."""

import numpy as np
import pytest
import torch

from hdbench.analysis import (
    classify_units,
    drift_diffusion,
    find_slow_points,
    generalization,
    noise_robustness,
    silencing_experiment,
    silencing_signature,
    slow_point_analysis,
    unique_points,
    vector_field,
)
from hdbench.errors import HdbenchError
from hdbench.models import build
from hdbench.system import Activity
from hdbench.task import make_trials
from tests import fakes
from tests.ring_system import SPEC, ring_ctrnn

GRID = np.stack(np.meshgrid(np.linspace(-2.5, 2.5, 9), np.linspace(-2.5, 2.5, 9)), -1)
GRID = GRID.reshape(-1, 2) + 0.013  # off the ReLU kinks


def bistable_ctrnn():
    """Two ReLU units inhibiting each other: fixed points (1, −1), (−1, 1), saddle (⅓, ⅓)."""
    net = build("ctrnn", n_units=2, activation="relu", alpha=0.5)
    with torch.no_grad():
        net.W.copy_(torch.tensor([[0.0, -2.0], [-2.0, 0.0]]))
        net.b.copy_(torch.tensor([1.0, 1.0]))
        net.V.copy_(torch.eye(2))
    return net


def test_bistable_network_has_exactly_its_three_fixed_points():
    sp = find_slow_points(bistable_ctrnn(), GRID, q_tol=1e-12)
    fixed = sp.points[sp.slow]
    found = fixed[unique_points(fixed, tol=1e-4)]
    expected = np.array([[1.0, -1.0], [-1.0, 1.0], [1 / 3, 1 / 3]])
    assert len(found) == 3
    for point in expected:
        assert np.min(np.linalg.norm(found - point, axis=1)) < 1e-6
    # Stable attractors: both eigenvalues < 0; the saddle has one unstable direction.
    for i in np.nonzero(sp.slow)[0]:
        eig = np.sort(sp.eigenvalues[i].real)
        if np.allclose(sp.points[i], 1 / 3, atol=1e-4):
            assert eig[0] < 0 < eig[1]
        else:
            assert np.all(eig < 0)


class TanhPair:
    """A system implementing the vector-field protocol: two uncoupled units with
    da/dt = −a + 2 tanh(a), i.e. 3 × 3 = 9 fixed points (0 and ±1.9150 per unit)."""

    n_units = 2
    cell_types = None

    def vector_field(self, a):
        return -a + 2.0 * torch.tanh(a)

    def state_rates(self, a):
        return torch.tanh(a)

    def recurrent_weights(self):
        return 2.0 * np.eye(2)

    def simulate(self, inputs, seed=None, silence=None):
        x = np.asarray(inputs)
        a = np.zeros(x.shape[:2] + (2,))
        return Activity(rates=np.tanh(a), outputs=np.zeros(x.shape[:2] + (2,)), inputs=x,
                        preactivations=a)


def test_protocol_system_fixed_points_and_stability():
    vf = vector_field(TanhPair())
    sp = find_slow_points(vf, GRID, q_tol=1e-12)
    found = sp.points[sp.slow][unique_points(sp.points[sp.slow], tol=1e-4)]
    root = 1.9150080
    assert len(found) == 9
    assert set(np.round(np.abs(found).ravel(), 4)) == {0.0, round(root, 4)}
    stable = (sp.eigenvalues.real < 0).all(1) & sp.slow
    assert np.allclose(np.abs(sp.points[stable]), root, atol=1e-5)
    assert sp.near_zero().max() == 0


@pytest.fixture(scope="module")
def ring():
    net = ring_ctrnn()
    trials = make_trials(SPEC, 120, seed=[5, 2])
    table = classify_units(net.simulate(trials), trials, kappa=0.05)
    return net, table


def test_ring_fixture_is_classified_by_the_threshold_rule_and_the_mixture(ring):
    net, table = ring
    assert list(table["cell_type"]) == list(net.cell_types)
    assert list(table["cell_type_gmm"]) == list(net.cell_types)


def test_ring_attractor_slow_points_cover_the_ring(ring):
    net, table = ring
    sp, summary = slow_point_analysis(net, table, SPEC, n_points=96, n_bins=16)
    assert summary["ring_coverage"] >= 0.9
    assert summary["n_slow"] == summary["n_points"]
    assert summary["near_zero_median"] == 1 and summary["unstable_median"] == 0
    err = np.angle(np.exp(1j * (sp.heading - net.simulate(
        make_trials(SPEC, 1, seed=0)).decoded_heading()[0, 0])))
    assert np.isfinite(err).all()


def test_silencing_signature_of_the_ring(ring):
    net, table = ring
    result = silencing_experiment(net, table, SPEC, n_trials=16, n_draws=12)
    assert list(result["group"]) == ["none", "compass", "shifter_cw", "shifter_ccw", "shifters",
                                     "high_abs_A", "low_abs_A"]
    by = result.set_index("group")
    assert by.loc["shifter_cw", "drift"] > 0.05 > -0.05 > by.loc["shifter_ccw", "drift"]
    assert abs(by.loc["none", "drift"]) < 0.01
    assert by.loc["none", "gain"] == pytest.approx(1.0, abs=0.15)
    assert by.loc["none", "amplitude"] == pytest.approx(1.0, abs=0.01)
    for m in ("drift", "gain", "amplitude"):  # intervals bracket the estimates
        ok = by[m].notna() & by[f"{m}_lo"].notna()
        assert (by.loc[ok, f"{m}_lo"] <= by.loc[ok, m] + 1e-12).all()
        assert (by.loc[ok, m] <= by.loc[ok, f"{m}_hi"] + 1e-12).all()
    sig = silencing_signature(result)
    # The ring's compass bump does not re-form: nothing but the cue positions it.
    assert {k: v for k, v in sig.items() if k != "bump_reforms"} == {
        "cw_off_drifts_ccw": True, "ccw_off_drifts_cw": True,
        "both_off_stops_integration": True, "compass_off_loses_bump": True}, sig
    assert by.loc["shifter_cw", "drift_vs_control"] == 1
    assert by.loc["shifter_cw", "n_draws"] == 12
    assert np.isnan(by.loc["none", "recovery"])
    draws = result.attrs["controls"]
    assert set(draws["n_units"]) == {32, 64, 19} and len(draws) == 3 * 12


def test_silencing_effects_are_specific_only_when_random_units_do_less():
    """A toy whose CW / CCW silencing drifts by design: specific when a random mix of units
    does not drift, not specific when any 8 units drift as much."""
    for specific in (True, False):
        toy = fakes.SilencingToy(specific=specific)
        result = silencing_experiment(toy, toy.table(), SPEC, n_trials=8, n_draws=20,
                                      extra_groups=False, n_boot=200)
        by = result.set_index("group")
        assert by.loc["shifter_cw", "drift"] == pytest.approx(0.02 / SPEC.dt, rel=1e-6)
        raw = silencing_signature(result, controls=False)
        sig = silencing_signature(result)
        assert raw["cw_off_drifts_ccw"] is True
        assert sig["cw_off_drifts_ccw"] is specific
        if specific:
            assert raw["ccw_off_drifts_cw"] and sig["ccw_off_drifts_cw"]
            assert by.loc["shifter_cw", "ctrl_drift_p95"] < by.loc["shifter_cw", "drift"]
        else:  # every group of 8 drifts CCW, so the CCW shifters do not drift CW at all
            assert by.loc["shifter_cw", "drift_vs_control"] == 0
            assert raw["ccw_off_drifts_cw"] is False
        # the toy keeps integrating and keeps its bump: nothing else is shown
        assert not sig["both_off_stops_integration"] and not sig["compass_off_loses_bump"]


def test_stopped_integration_is_specific_only_against_controls():
    toy = fakes.SilencingToy(specific=True, rate=0.0, window_gain=0.0)  # any silencing stops it
    result = silencing_experiment(toy, toy.table(), SPEC, n_trials=8, n_draws=10,
                                  extra_groups=False, n_boot=0)
    assert silencing_signature(result, controls=False)["both_off_stops_integration"] is True
    assert silencing_signature(result)["both_off_stops_integration"] is False
    assert result.set_index("group").loc["shifters", "ctrl_gain_median"] == pytest.approx(0.0)


def test_silencing_reports_empty_groups_and_checks_the_window(ring):
    net, table = ring
    no_shifters = table.assign(cell_type=np.where(table["cell_type"] == "compass", "compass",
                                                  "other"))
    result = silencing_experiment(net, no_shifters, SPEC, n_trials=4, n_draws=2)
    assert result.set_index("group").loc["shifters", "n_units"] == 0
    assert silencing_signature(result)["cw_off_drifts_ccw"] is None
    with pytest.raises(HdbenchError, match="window"):
        silencing_experiment(net, table, SPEC, window=(20, 30))
    with pytest.raises(HdbenchError, match="n_draws"):
        silencing_experiment(net, table, SPEC, n_draws=-1)
    bare = silencing_experiment(net, table, SPEC, n_trials=4, n_draws=0, extra_groups=False)
    assert silencing_signature(bare)["cw_off_drifts_ccw"] is False  # no controls: not shown
    assert silencing_signature(bare, controls=False)["cw_off_drifts_ccw"] is True


def test_drift_and_diffusion_grow_with_noise(ring):
    net, _ = ring
    quiet = drift_diffusion(net, SPEC, n_trials=16, n_steps=400, noise_std=0.0)
    # CTRNN noise enters the state equation, scaled by dt/τ = 0.1 per step
    noisy = drift_diffusion(net, SPEC, n_trials=16, n_steps=400, noise_std=1.0)
    # Noise-free, the 32-unit ring only settles into its slight pinning points.
    assert abs(quiet["drift"]) < 1e-3 and quiet["final_rms"] < 0.1
    assert noisy["diffusion"] > 10 * quiet["diffusion"] > 0
    with_av = drift_diffusion(net, SPEC, n_trials=16, n_steps=400, noise_std=0.0,
                              av_noise=0.01)
    assert with_av["diffusion"] > 3 * quiet["diffusion"]


def test_robustness_and_generalisation_tables(ring):
    net, _ = ring
    rob = noise_robustness(net, SPEC, n_trials=24, cue_noise=(0.0, 1.0))
    assert list(rob.columns) == ["channel", "noise_sd", "ne", "abs_drift", "diffusion"]
    av = rob[rob.channel == "av"]
    assert av["ne"].iloc[-1] > av["ne"].iloc[0]
    gen = generalization(net, SPEC, n_trials=24)
    assert list(gen["condition"]) == ["trained", "faster", "longer", "hold"]
    assert gen.set_index("condition").loc["longer", "n_steps"] == 2 * SPEC.n_steps
    assert np.isfinite(gen["ne"]).all()


def test_systems_without_a_vector_field_get_a_clear_error():
    with pytest.raises(HdbenchError, match="no vector field"):
        vector_field(build("gru", n_units=4))
    with pytest.raises(HdbenchError, match="initial_states"):
        find_slow_points(bistable_ctrnn(), np.zeros((3, 5)))
    with pytest.raises(HdbenchError, match="noise_std"):
        drift_diffusion(TanhPairWithInputs(), SPEC, noise_std=0.1)


class TanhPairWithInputs(TanhPair):
    def simulate(self, inputs, seed=None, silence=None):
        return super().simulate(getattr(inputs, "inputs", inputs))
