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
    cell_type_continuum,
    classify_units,
    compare_cell_types,
    connectivity_summary,
    fit_pathway,
    integration_gain,
    silencing_experiment,
    silencing_signature,
    slow_point_analysis,
)
from hdbench.task import make_trials


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


def _input_centres(circuit, units) -> np.ndarray:
    """Where each unit's input comes from: the first-harmonic phase of its input weights over
    its sources' built-in preferred directions (a fly P-EN listens to the 3 E-PGs of its
    glomerulus, 10° off its column centre; a rodent ring unit to both rings, ±φ around it)."""
    W = circuit.recurrent_weights()
    pd = circuit.preferred_directions
    tuned = np.isfinite(pd)
    return np.mod(np.angle(W[np.ix_(units, np.nonzero(tuned)[0])] @ np.exp(1j * pd[tuned])),
                  2 * np.pi)


def _true_offset(circuit, target: str, source: str) -> float:
    """First-harmonic offset of the built-in weights of a pathway, with the targets at their
    built-in PDs and the sources at the centre of their inputs (ground-truth labels)."""
    types = np.asarray(circuit.cell_types)
    t, s = np.nonzero(types == target)[0], np.nonzero(types == source)[0]
    fit = fit_pathway(circuit.recurrent_weights()[np.ix_(t, s)],
                      circuit.preferred_directions[t], _input_centres(circuit, s),
                      exclude=t[:, None] == s[None, :], n_boot=0, n_perm=0)
    return fit["offset"]


def test_fitted_offsets_match_the_built_in_ones(reference):
    """The analysis (classified units, measured PDs) recovers the circuits' own offsets within
    its 90 % interval (± 5° for instance heterogeneity), on the right side of 0. Rodent: ±φ =
    ±30° ring to ring. Fly: the P-EN → E-PG kernel has a lobe shifted by 34° from the column
    centre, i.e. 44° from a P-EN's inputs, and an unshifted lobe of weight w₀ = 0.35, so its
    first harmonic sits near ±36°."""
    name, circuit, table = reference
    summary = connectivity_summary(circuit.recurrent_weights(), table, n_boot=500, n_perm=199)
    assert summary.offsets_opposite and summary.offsets_resolved
    for source, sign in (("shifter_cw", -1), ("shifter_ccw", 1)):
        truth = np.degrees(_true_offset(circuit, summary.offset_target, source))
        lo, hi = np.degrees(summary.shifter_intervals[source])
        assert np.sign(truth) == sign and lo - 5.0 <= truth <= hi + 5.0, (truth, lo, hi)
        assert np.sign(lo) == np.sign(hi) == sign
        if name == "rodent":  # within 3°: cell gains (heterogeneous instances) skew the fit
            assert truth == pytest.approx(sign * circuit.config.phi_deg, abs=3.0)
        else:
            assert 25.0 < abs(truth) < 45.0
    rows = summary.pairs.set_index(["target", "source"])
    assert (rows.loc[[(summary.offset_target, "shifter_cw"),
                      (summary.offset_target, "shifter_ccw")], "p_shuffle"] < 0.01).all()


def test_references_are_multimodal_in_av_modulation(reference):
    """Distinct populations: the unimodality of A is rejected, and a mixture prefers several
    components."""
    _, _, table = reference
    out = cell_type_continuum(table, n_boot=300)
    assert out["av_asymmetry"]["multimodal"], out["av_asymmetry"]
    assert out["av_asymmetry"]["silverman_p"] < 0.05 and out["av_asymmetry"]["gmm_best"] >= 2


def test_references_integrate(reference):
    name, circuit, _ = reference
    trials = make_trials(name, 60, seed=[5, 6])
    assert integration_gain(circuit.simulate(trials), trials, n_boot=0)["integrates"]


# The fly integrates with 20 Euler sub-steps per task step: its silencing runs are slow.
@pytest.mark.parametrize("name", ["rodent", pytest.param("fly", marks=pytest.mark.slow)])
def test_silencing_signature(name):
    """Shifter silencing drifts the bump both ways, beyond random controls. What is not
    specific in these circuits is honest too: silencing a third (rodent) or a quarter (fly) of
    the HD-tuned units at random stops integration as well as silencing the shifters does; the
    rodent's compass (ADN) cells only read the rings out, so silencing them leaves the rings'
    bump in place."""
    _require(name)
    name, circuit, table = _classified(name)
    result = silencing_experiment(circuit, table, name, n_trials=8, n_draws=10,
                                  extra_groups=False, n_boot=0)
    sig = silencing_signature(result)
    raw = silencing_signature(result, controls=False)
    assert sig["cw_off_drifts_ccw"] and sig["ccw_off_drifts_cw"]
    assert raw["both_off_stops_integration"]
    if name == "rodent":  # the fly's silent state is stable: its bump needs a cue to re-form
        assert sig["bump_reforms"]
        assert not raw["compass_off_loses_bump"]
        assert result.set_index("group").loc["compass", "amplitude"] > 0.9


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
