"""The tuning, representation, connectivity and dynamics benchmarks on a tiny ring reference.

The reference is the 24-unit ring network of tests/ring_system.py (compass, CW and CCW shifter
rings); its second instance (shifter offsets 34° instead of 30°) stands in for the ceiling and
an untrained 24-unit CTRNN for the floor. The ring's task turns slowly, so that it takes 64
trials and heading bins coarsened to 8 to fill every HD × AV condition; the dynamics use the
quick protocol's small sizes.
"""

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hdbench.errors import HdbenchError, NotComputableError
from hdbench.models import build
from hdbench.scoring import FAMILIES, Bundle, EvalProtocol, all_benchmarks, measures
from hdbench.scoring.connectivity_benchmarks import offset_sign_agreement
from hdbench.scoring.dynamics_benchmarks import silencing_agreement
from hdbench.scoring.tuning_benchmarks import MAX_SPREADS, cell_type_distance, scaled_wasserstein
from tests import fakes
from tests.ring_system import SPEC

PROTOCOL = EvalProtocol(n_trials=64)
EXPECTED = {  # name -> higher_is_better
    "tuning.cell-types": False, "tuning.tuning-width": False, "tuning.av-slope": False,
    "representation.procrustes": False, "representation.cka": True,
    "representation.rsa": True, "connectivity.profile-correlation": True,
    "connectivity.offset-signs": True, "dynamics.ring-coverage": True,
    "dynamics.silencing": True, "dynamics.dsa": False,
}
# Benchmarks whose scores changed with issue 17 (fitted offsets, controlled silencing, the
# integration check before comparing cell types).
VERSIONS = {"tuning.cell-types": 2, "connectivity.offset-signs": 2, "dynamics.silencing": 2,
            "tuning.tuning-width": 2, "tuning.av-slope": 2, "dynamics.ring-coverage": 2}


@pytest.fixture(scope="module")
def scores():
    """``{role: {family.name: raw value}, ...}`` against ring instance 0, plus the bundles."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(measures, "N_HD_BINS", 8)
        patch.setitem(measures.EFFORT, "full", measures.EFFORT["quick"])
        reference = Bundle(fakes.make_ring_circuit(0), SPEC, PROTOCOL, label="ring 0")
        systems = {"ceiling": fakes.make_ring_circuit(1),
                   "floor": build("ctrnn", n_units=24, init_seed=0),
                   "gru": build("gru", n_units=8, init_seed=0)}
        out, bundles = {}, {}
        for role, system in systems.items():
            bundles[role] = Bundle(system, SPEC, PROTOCOL, label=role)
            out[role] = {}
            for b in all_benchmarks(["ring"]):
                if b.family == "task":
                    continue
                try:
                    out[role][b.id.split(".", 1)[1]] = b(bundles[role], reference)[0]
                except NotComputableError as err:
                    out[role][b.id.split(".", 1)[1]] = str(err)
    return out, bundles


def test_every_family_is_registered_with_its_direction_and_citation():
    benches = {b.id.split(".", 1)[1]: b for b in all_benchmarks(["ring"])}
    # property benchmarks compare with published data of the rodent and fly, not with a reference
    assert {b.family for b in benches.values()} == set(FAMILIES) - {"properties"}
    for name, higher_is_better in EXPECTED.items():
        bench = benches[name]
        assert bench.higher_is_better is higher_is_better, name
        assert bench.version == VERSIONS.get(name, 1) and bench.citation \
            and bench.measurement and bench.comparison, name


def test_the_reference_beats_an_untrained_network_on_every_benchmark(scores):
    values, _ = scores
    for name, higher_is_better in EXPECTED.items():
        ceiling, floor = values["ceiling"][name], values["floor"][name]
        assert math.isfinite(ceiling) and math.isfinite(floor), name
        assert (ceiling > floor) if higher_is_better else (ceiling < floor), \
            f"{name}: ceiling {ceiling} vs floor {floor}"


def test_a_second_instance_of_the_reference_is_nearly_identical(scores):
    ceiling = scores[0]["ceiling"]
    assert ceiling["tuning.cell-types"] == 0.0
    assert ceiling["connectivity.offset-signs"] == 1.0
    assert ceiling["connectivity.profile-correlation"] > 0.95
    assert ceiling["dynamics.silencing"] == 1.0
    assert ceiling["representation.cka"] > 0.9 and ceiling["representation.rsa"] > 0.9
    assert ceiling["representation.procrustes"] < 0.3
    assert ceiling["dynamics.ring-coverage"] > 0.5


def test_ring_coverage_is_not_computable_without_a_vector_field(scores):
    gru = scores[0]["gru"]
    assert "no vector field" in gru["dynamics.ring-coverage"]
    assert all(math.isfinite(v) for k, v in gru.items() if k != "dynamics.ring-coverage")


def test_measurements_are_computed_once_per_bundle(scores):
    bundle = scores[1]["floor"]
    assert bundle.n_simulations == 1  # the test trials, shared by every benchmark
    assert measures.unit_table(bundle) is measures.unit_table(bundle)
    keys = {k if isinstance(k, str) else k[0] for k in bundle._memo}
    assert {"unit-table", "tuning-conditions", "connectivity", "slow-points", "silencing",
            "dmd-model", "integration"} <= keys


def _with(memo: dict) -> Bundle:
    """A bundle whose measurements are given (no system behind it)."""
    bundle = Bundle(None, SPEC, PROTOCOL, label="stub")
    for key, value in memo.items():
        bundle.memo(key, lambda value=value: value)
    return bundle


def test_silencing_counts_only_the_effects_the_reference_shows():
    ref = _with({"silencing": {"a": True, "b": True, "c": False, "d": None}})
    assert silencing_agreement(_with({"silencing": {"a": True, "b": None, "c": False}}),
                               ref) == 0.5
    assert silencing_agreement(_with({"silencing": {"a": True, "b": True, "c": True}}),
                               ref) == 1.0
    with pytest.raises(NotComputableError, match="none of the silencing effects"):
        silencing_agreement(ref, _with({"silencing": {"a": False, "b": None}}))


def _pairs(rows):
    columns = ["target", "source", "offset", "offset_lo", "offset_hi", "p_shuffle"]
    return SimpleNamespace(pairs=pd.DataFrame(rows, columns=columns))


def test_offset_signs_compare_resolved_fits_of_the_reference_shifting_pairs():
    key = ("connectivity", measures.N_DELTA_BINS)
    ref = _with({key: _pairs([("compass", "shifter_cw", -0.6, -0.7, -0.5, 0.001),
                              ("compass", "shifter_ccw", 0.6, 0.5, 0.7, 0.001),
                              ("shifter_cw", "compass", 0.01, -0.02, 0.04, 0.001),  # no shift
                              ("shifter_ccw", "compass", 0.1, 0.05, 0.15, 0.001),  # < 10 deg
                              ("compass", "compass", 0.5, 0.3, 0.7, 0.2)])})  # not significant
    same = _with({key: _pairs([("compass", "shifter_cw", -0.2, -0.3, -0.1, 0.01),
                               ("compass", "shifter_ccw", 1.2, 1.0, 1.4, 0.001)])})
    assert offset_sign_agreement(same, ref) == 1.0
    unresolved = _with({key: _pairs([("compass", "shifter_cw", -0.2, -0.5, 0.1, 0.01),  # CI
                                     ("compass", "shifter_ccw", 0.4, 0.3, 0.5, 0.2)])})  # p
    assert offset_sign_agreement(unresolved, ref) == 0.0
    far = _with({key: _pairs([("compass", "shifter_cw", -2.5, -2.7, -2.3, 0.001),  # > 90°
                              ("compass", "shifter_ccw", -0.3, -0.4, -0.2, 0.001)])})  # wrong
    assert offset_sign_agreement(far, ref) == 0.0
    missing = _with({key: _pairs([("compass", "shifter_ccw", 0.4, 0.3, 0.5, 0.001)])})
    assert offset_sign_agreement(missing, ref) == 0.5
    flat = _with({key: _pairs([("compass", "shifter_cw", 0.01, -0.02, 0.04, 0.001)])})
    with pytest.raises(NotComputableError, match="no shifting"):
        offset_sign_agreement(same, flat)


def _integrating(gain: float, labels) -> Bundle:
    return _with({"unit-table": pd.DataFrame({"cell_type": labels}),
                  "integration": {"gain": gain}})


def test_cell_types_of_a_subject_that_does_not_integrate_are_not_compared():
    ref = _integrating(1.0, ["compass", "shifter_cw", "shifter_ccw"])
    assert cell_type_distance(_integrating(0.95, ["compass"] * 3), ref) == \
        pytest.approx(2 / 3)
    assert cell_type_distance(_integrating(0.3, ref._memo["unit-table"]["cell_type"]),
                              ref) == 1.0  # same fractions, but no integration
    with pytest.raises(HdbenchError, match="reference 'stub' does not integrate"):
        cell_type_distance(ref, _integrating(1.5, ["compass"]))


def test_the_floor_does_not_integrate_and_scores_the_largest_distance(scores):
    values, bundles = scores
    assert measures.integration(bundles["floor"])["integrates"] is False
    assert values["floor"]["tuning.cell-types"] == 1.0
    assert measures.integration(bundles["ceiling"])["integrates"] is True


@given(st.lists(st.sampled_from(["compass", "shifter_cw", "shifter_ccw", "other", "inactive"]),
                min_size=1, max_size=30),
       st.lists(st.sampled_from(["compass", "shifter_cw", "shifter_ccw", "other", "inactive"]),
                min_size=1, max_size=30))
def test_cell_type_distance_is_a_bounded_symmetric_distance(a, b):
    def bundle(labels):
        return _integrating(1.0, labels)

    d = cell_type_distance(bundle(a), bundle(b))
    assert 0.0 <= d <= 1.0 + 1e-12
    assert d == pytest.approx(cell_type_distance(bundle(b), bundle(a)))
    assert cell_type_distance(bundle(a), bundle(list(reversed(a)))) == pytest.approx(0.0)


def test_scaled_wasserstein_knows_how_far_off_a_distribution_is():
    ref = np.array([60.0, 70.0, 80.0, 90.0])  # SD 12.9
    assert scaled_wasserstein(ref[::-1].copy(), ref) == 0.0
    near, far = scaled_wasserstein(ref + 10.0, ref), scaled_wasserstein(ref + 40.0, ref)
    assert near == pytest.approx(10.0 / ref.std(ddof=1))  # a shift moves W1 by the shift
    assert far == pytest.approx(4 * near)  # a KS statistic would be 1 for both shifts
    assert scaled_wasserstein(np.array([np.nan]), ref) == MAX_SPREADS  # no tuned units
    assert scaled_wasserstein(ref + 1e4, ref) == MAX_SPREADS
    with pytest.raises(HdbenchError, match="same value"):
        scaled_wasserstein(ref, np.array([70.0, 70.0]))
