import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hdbench.errors import HdbenchError
from hdbench.scoring import (
    QUICK_PROTOCOL,
    Benchmark,
    Bundle,
    DegenerateScoreError,
    EvalProtocol,
    ReferenceSpec,
    ReferenceSubject,
    Score,
    ScoreJob,
    UntrainedSubject,
    aggregate,
    all_benchmarks,
    format_score,
    get,
    normalise,
    register,
    run_score_job,
    score_key,
    unregister,
)
from hdbench.scoring.bundle import AV_NOISE_FRACTION, task_for_reference
from hdbench.scoring.task_benchmarks import ne_test_trials
from hdbench.task import PRESETS
from hdbench.training import TrainConfig
from tests import fakes

FAKE = ReferenceSpec("fake", "tests.fakes:make_ring")
SMALL = EvalProtocol(n_trials=4)


# -- normalisation ----------------------------------------------------------------------------

def test_similarity_normalisation_by_hand():
    # higher is better: floor 0.1, ceiling 0.9
    assert normalise(0.8, ceiling=0.9, floor=0.1) == pytest.approx(0.875)
    assert normalise(0.9, 0.9, 0.1) == 1.0 and normalise(0.1, 0.9, 0.1) == 0.0
    assert normalise(0.5, 0.9, 0.1) == pytest.approx(0.5)


def test_distance_normalisation_is_direction_aware():
    # lower is better: ceiling 0.1 < floor 0.9; a model at 0.3 is 3/4 of the way to the ceiling
    assert normalise(0.3, ceiling=0.1, floor=0.9) == pytest.approx(0.75)
    assert normalise(0.1, 0.1, 0.9) == 1.0 and normalise(0.9, 0.1, 0.9) == 0.0
    assert not math.copysign(1.0, normalise(0.9, 0.1, 0.9)) < 0  # no negative zero


def test_normalised_value_is_stored_unclipped_and_clipped_for_display():
    better = Score(raw=0.05, ceiling=0.1, floor=0.9, higher_is_better=False)
    assert better.normalised == pytest.approx(1.0625)
    assert better.clipped() == 1.0
    assert better.display() == "1.00*"
    worse = Score(raw=1.3, ceiling=0.1, floor=0.9, higher_is_better=False)
    assert worse.normalised == pytest.approx(-0.5) and worse.display() == "0.00*"
    assert Score(0.5, 0.9, 0.1, True).display() == "0.50"
    assert format_score(math.nan) == "n/a"


def test_error_is_scaled_by_the_ceiling_floor_gap():
    score = Score.from_seeds([0.5, 0.7], ceiling=0.1, floor=0.9, higher_is_better=False)
    assert score.raw == pytest.approx(0.6)
    assert score.raw_error == pytest.approx(0.1)  # std(ddof=1) = 0.1414 / sqrt(2)
    assert score.error == pytest.approx(0.1 / 0.8)
    assert score.normalised == pytest.approx(0.375)
    assert score.n_seeds == 2 and score.per_seed == (0.5, 0.7)
    assert score.display() == "0.38 ± 0.12"
    single = Score.from_seeds([0.5], 1.0, 0.0, True)
    assert single.n_seeds == 1 and math.isnan(single.error) and single.display() == "0.50"
    with pytest.raises(HdbenchError, match="at least one"):
        Score.from_seeds([], 1.0, 0.0, True)


@pytest.mark.parametrize("ceiling, floor", [(0.5, 0.5), (math.nan, 0.0), (1.0, math.inf)])
def test_degenerate_ceiling_is_a_clear_error(ceiling, floor):
    with pytest.raises(DegenerateScoreError, match="ceiling"):
        normalise(0.3, ceiling, floor)
    with pytest.raises(DegenerateScoreError):
        Score(0.3, ceiling, floor, True)


def test_inverted_benchmark_is_flagged_and_nan_raw_propagates():
    assert Score(0.5, ceiling=0.2, floor=0.8, higher_is_better=True).inverted
    assert not Score(0.5, ceiling=0.2, floor=0.8, higher_is_better=False).inverted
    assert math.isnan(Score(math.nan, 1.0, 0.0, True).normalised)


finite = st.floats(-1e3, 1e3, allow_nan=False)


@given(raw=finite, ceiling=finite, floor=finite, scale=st.floats(0.1, 10), shift=finite)
def test_normalisation_is_affine_invariant(raw, ceiling, floor, scale, shift):
    if abs(ceiling - floor) < 1e-3:
        return
    expected = normalise(raw, ceiling, floor)
    moved = normalise(scale * raw + shift, scale * ceiling + shift, scale * floor + shift)
    assert moved == pytest.approx(expected, rel=1e-6, abs=1e-6)
    flipped = normalise(-raw, -ceiling, -floor)  # a similarity turned into a distance
    assert flipped == pytest.approx(expected, rel=1e-9, abs=1e-9)


# -- aggregation ------------------------------------------------------------------------------

def test_aggregate_is_the_unweighted_mean_with_coverage():
    agg = aggregate([1.0, 0.5, math.nan], [0.1, 0.2, math.nan], n_total=4)
    assert agg.mean == pytest.approx(0.75)
    assert agg.error == pytest.approx(math.sqrt(0.1**2 + 0.2**2) / 2)
    assert (agg.n, agg.n_total, agg.coverage) == (2, 4, "2/4")
    assert agg.display() == "0.75 ± 0.11 (2/4)"
    assert math.isnan(aggregate([1.0, 0.5], [0.1, math.nan]).error)  # an unknown error
    empty = aggregate([math.nan], n_total=3)
    assert math.isnan(empty.mean) and empty.coverage == "0/3"
    with pytest.raises(HdbenchError, match="leaves exist"):
        aggregate([1.0, 2.0], n_total=1)
    with pytest.raises(HdbenchError, match="errors"):
        aggregate([1.0, 2.0], [0.1])


# -- benchmarks and their registry ------------------------------------------------------------

def test_generic_benchmarks_are_bound_to_every_reference():
    ids = [b.id for b in all_benchmarks(["fake", "other"])]
    assert {"fake.task.test-ne", "fake.task.generalisation-ne", "fake.task.noise-ne",
            "other.task.test-ne"} <= set(ids)
    bench = get("fake.task.test-ne")
    assert bench.reference == "fake" and bench.parent == "task" and bench.version >= 1
    assert not bench.higher_is_better and "Cueva" in bench.citation
    assert [b.id for b in all_benchmarks(["fake"], family="dynamics")] == [
        "fake.dynamics.dsa", "fake.dynamics.ring-coverage", "fake.dynamics.silencing"]
    with pytest.raises(HdbenchError, match="unknown benchmark"):
        get("fake.task.nope")
    with pytest.raises(HdbenchError, match="look like"):
        get("fake-test-ne")
    with pytest.raises(HdbenchError, match="family"):
        all_benchmarks(["fake"], family="vibes")


def test_benchmark_validation_and_registration():
    with pytest.raises(HdbenchError, match="family"):
        Benchmark(family="vibes", name="x", score_fn=fakes.constant, higher_is_better=True)
    with pytest.raises(HdbenchError, match="version"):
        Benchmark(family="task", name="x", score_fn=fakes.constant, higher_is_better=True,
                  version=0)
    with pytest.raises(HdbenchError, match="name"):
        Benchmark(family="task", name="Bad Name", score_fn=fakes.constant,
                  higher_is_better=True)
    specific = Benchmark(family="tuning", name="const", score_fn=fakes.constant,
                         higher_is_better=True, reference="fake")
    register(specific)
    try:
        assert get("fake.tuning.const") is specific
        assert "fake.tuning.const" in [b.id for b in all_benchmarks(["fake"])]
        assert "other.tuning.const" not in [b.id for b in all_benchmarks(["other"])]
        with pytest.raises(HdbenchError, match="already registered"):
            register(specific)
        with pytest.raises(HdbenchError, match="belongs to"):
            specific.for_reference("other")
    finally:
        unregister("fake.tuning.const")
    assert specific(None, None) == (1.0, pytest.approx(math.nan, nan_ok=True))


# -- bundles ----------------------------------------------------------------------------------

def test_bundle_simulates_each_trial_set_once():
    bundle = Bundle(fakes.FakeRing(), PRESETS["cueva-1x"], SMALL)
    first = bundle.activity("test")
    assert bundle.activity("test") is first and bundle.n_simulations == 1
    assert first.rates.shape == (4, 500, 8)
    assert bundle.trials("long").n_steps == 1000 and bundle.activity("long").outputs.shape[1] \
        == 1000
    assert bundle.n_simulations == 2
    assert bundle.weights.shape == (8, 8) and bundle.cell_types[0] == "compass"
    with pytest.raises(HdbenchError, match="trial set"):
        bundle.trials("sideways")


def test_av_noise_trials_perturb_only_the_av_input_after_the_cue():
    bundle = Bundle(fakes.FakeRing(), PRESETS["fly"], SMALL)
    clean, noisy = bundle.trials("test"), bundle.trials("av_noise")
    np.testing.assert_array_equal(clean.targets, noisy.targets)
    np.testing.assert_array_equal(clean.inputs[..., 1:], noisy.inputs[..., 1:])
    np.testing.assert_array_equal(clean.inputs[:, :10, 0], noisy.inputs[:, :10, 0])
    added = (noisy.inputs[..., 0] - clean.inputs[..., 0])[:, 10:]
    assert added.std() == pytest.approx(AV_NOISE_FRACTION * PRESETS["fly"].stationary_sd,
                                        rel=0.05)


def test_reference_task_comes_from_the_system_or_its_name():
    assert task_for_reference("fly").name == "fly"
    assert task_for_reference("fake", fakes.FakeRing()).name == "cueva-1x"
    with pytest.raises(HdbenchError, match="has no task"):
        task_for_reference("fake")

    class WithTask:
        task = "rodent"

    assert task_for_reference("fake", WithTask()).name == "rodent"


# -- task benchmarks and scoring jobs ---------------------------------------------------------

def test_task_benchmarks_separate_an_integrator_from_an_untrained_network():
    spec = PRESETS["cueva-1x"]
    ring = Bundle(fakes.FakeRing(), spec, SMALL)
    untrained = Bundle(UntrainedSubject(TrainConfig(model_options={"n_units": 8})).load(), spec,
                       SMALL)
    for name in ("test-ne", "generalisation-ne", "noise-ne"):
        bench = get(f"fake.task.{name}")
        ring_ne, _ = bench(ring, ring)
        untrained_ne, _ = bench(untrained, ring)
        assert ring_ne < 0.1 < 0.9 < untrained_ne  # the untrained readout is zero: NE ≈ 1
    assert get("fake.task.noise-ne")(ring, ring)[0] > get("fake.task.test-ne")(ring, ring)[0]


def test_score_job_shares_simulations_and_records_failing_benchmarks():
    benches = (get("fake.task.test-ne"),
               Benchmark(family="task", name="test-ne-again", score_fn=ne_test_trials,
                         higher_is_better=False, reference="fake"),
               Benchmark(family="task", name="boom", score_fn=fakes.explode,
                         higher_is_better=False, reference="fake"),
               Benchmark(family="representation", name="units", score_fn=fakes.n_units_ratio,
                         higher_is_better=True, reference="fake"))
    out = run_score_job(ScoreJob(ReferenceSubject(FAKE, 1), FAKE, benches, SMALL))
    values = out["values"]
    assert values["fake.task.test-ne"] == values["fake.task.test-ne-again"]
    assert values["fake.representation.units"] == {"value": 1.0, "error": 0.01}
    assert out["simulations"] == {"subject": 1, "reference": 0}
    assert out["failures"]["fake.task.boom"]["type"] == "RuntimeError"
    assert "benchmark exploded" in out["failures"]["fake.task.boom"]["traceback"]


def test_score_keys_depend_on_identity_reference_protocol_and_code(monkeypatch):
    from hdbench import versions

    def key(subject, protocol=SMALL, reference=FAKE):
        return score_key(subject, reference, protocol)

    ceiling = ReferenceSubject(FAKE, 1)
    assert key(ceiling) == key(ReferenceSubject(FAKE, 1))
    assert key(ceiling) != key(ReferenceSubject(FAKE, 2))
    assert key(ceiling) != key(ceiling, QUICK_PROTOCOL)
    floor = UntrainedSubject(TrainConfig())
    # the untrained identity ignores training-only fields
    assert key(floor) == key(UntrainedSubject(TrainConfig(updates=7)))
    assert key(floor) != key(UntrainedSubject(TrainConfig(seed=1)))
    assert key(floor) != key(floor, reference=ReferenceSpec.parse("fly"))
    before = key(floor)
    for component in versions.MEASUREMENT_COMPONENTS:
        monkeypatch.setitem(versions.COMPONENTS, component, versions.COMPONENTS[component] + 1)
        assert key(floor) != before, component
        before = key(floor)


def test_a_reference_circuit_version_changes_its_keys(monkeypatch):
    import reference_circuits.fly as fly

    fly_spec = ReferenceSpec.parse("fly")
    before = score_key(ReferenceSubject(fly_spec, 1), fly_spec, SMALL)
    monkeypatch.setattr(fly, "VERSION", getattr(fly, "VERSION", 1) + 1, raising=False)
    assert score_key(ReferenceSubject(fly_spec, 1), fly_spec, SMALL) != before


def test_reference_spec_parsing_and_early_checks():
    assert ReferenceSpec.parse("fake=tests.fakes:make_ring") == FAKE
    assert ReferenceSpec.parse("fly") == ReferenceSpec("fly")
    with pytest.raises(HdbenchError, match="module:callable"):
        ReferenceSpec("x", "no_colon")
    with pytest.raises(HdbenchError, match="without"):
        ReferenceSpec("a.b")
    with pytest.raises(HdbenchError, match="cannot import"):
        ReferenceSpec("x", "tests.fakes:missing").check()
    with pytest.raises(HdbenchError, match="unknown reference circuit"):
        ReferenceSpec("no-such-circuit").check()
    FAKE.check()
    assert isinstance(FAKE.load(3), fakes.FakeRing)
