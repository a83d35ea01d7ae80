"""Validation on the reference circuits, whose cell types and offsets are known by construction.

Reference units labelled ``inhibitory`` (the fly's Δ7) are left out of the accuracy: that label
is anatomical (the sign of a unit's outputs), which tuning cannot see; they are classified as
``other`` (active, untuned) and the test checks that too.
"""

import functools

import numpy as np
import pytest

import reference_circuits
from hdbench.analysis import (
    classify_units,
    compare_cell_types,
    connectivity_summary,
    silencing_experiment,
    silencing_signature,
    slow_point_analysis,
)
from hdbench.task import make_trials

BUILT_IN_OFFSET_DEG = {"rodent": ("phi_deg", 30.0), "fly": ("shift_deg", 34.0)}
BIN_DEG = 10.0  # connectivity_summary's default Δ bin


def _require(name):
    if name not in reference_circuits.available():
        pytest.skip(f"reference circuit {name!r} not available (reference_circuits.available() "
                    f"= {reference_circuits.available()})")


@functools.cache
def _classified(name):
    circuit = reference_circuits.load(name, noise_std=0.0)
    trials = make_trials(name, 120, seed=[5, 3])
    return name, circuit, classify_units(circuit.simulate(trials), trials)


@pytest.fixture(scope="module", params=["rodent", "fly"])
def reference(request):
    _require(request.param)
    return _classified(request.param)


def test_classifier_recovers_ground_truth(reference):
    name, circuit, table = reference
    out = compare_cell_types(table["cell_type"], circuit.cell_types)
    assert out["accuracy"] >= 0.95, out["confusion"]
    assert set(out["excluded"]) <= {"other"}  # inhibitory units: active, untuned
    gmm = compare_cell_types(table["cell_type_gmm"], circuit.cell_types)
    assert gmm["accuracy"] >= 0.95, gmm["confusion"]


def test_offsets_match_the_built_in_ones(reference):
    name, circuit, table = reference
    field, default = BUILT_IN_OFFSET_DEG[name]
    built_in = getattr(circuit.config, field, default)
    summary = connectivity_summary(circuit.recurrent_weights(), table)
    cw = np.degrees(summary.shifter_offsets["shifter_cw"])
    ccw = np.degrees(summary.shifter_offsets["shifter_ccw"])
    assert summary.offsets_opposite
    assert cw == pytest.approx(-built_in, abs=BIN_DEG)
    assert ccw == pytest.approx(built_in, abs=BIN_DEG)


# The fly integrates with 20 Euler sub-steps per task step: its silencing runs are slow.
@pytest.mark.parametrize("name", ["rodent", pytest.param("fly", marks=pytest.mark.slow)])
def test_silencing_signature(name):
    _require(name)
    name, circuit, table = _classified(name)
    result = silencing_experiment(circuit, table, name, n_trials=8)
    sig = silencing_signature(result)
    assert sig["cw_off_drifts_ccw"] and sig["ccw_off_drifts_cw"]
    assert sig["both_off_stops_integration"] and sig["compass_off_loses_bump"]
    if name == "rodent":  # the fly's silent state is stable: its bump needs a cue to re-form
        assert sig["bump_reforms"]


@pytest.mark.slow
def test_rodent_slow_points_form_a_ring():
    _require("rodent")
    circuit = reference_circuits.load("rodent", noise_std=0.0)
    trials = make_trials("rodent", 60, seed=[5, 4])
    table = classify_units(circuit.simulate(trials), trials, gmm=False)
    _, summary = slow_point_analysis(circuit, table, "rodent")
    assert summary["ring_coverage"] >= 0.9
    assert summary["near_zero_median"] == 1 and summary["unstable_median"] == 0


def test_rodent_slow_points_quick():
    _require("rodent")
    circuit = reference_circuits.load("rodent", noise_std=0.0)
    trials = make_trials("rodent", 40, seed=[5, 4])
    table = classify_units(circuit.simulate(trials), trials, gmm=False)
    _, summary = slow_point_analysis(circuit, table, "rodent", n_points=54, n_bins=18,
                                     n_trials=48)
    assert summary["ring_coverage"] >= 0.9
