"""Property benchmarks: the W1 distance to a published distribution, its data ceiling, and
scores of analytic rings built with the published properties (near the ceiling) and with
other ones (farther)."""

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from hdbench.errors import HdbenchError, NotComputableError
from hdbench.scoring import Bundle, EvalProtocol, all_benchmarks, get
from hdbench.scoring.benchmark import Benchmark
from hdbench.scoring.property_benchmarks import (
    MAX_DISTANCE,
    PROPERTY_BENCHMARKS,
    PropertyDistance,
    Published,
    wasserstein_to,
)
from hdbench.task import PRESETS
from hdbench.training import TrainConfig
from hdbench.training.trainer import build_model
from tests.property_system import PropertyRing

STANDARD = Published("x", 0.0, 1.0, "")
PROTOCOL = EvalProtocol(n_trials=64)


def test_at_least_eight_property_benchmarks_each_with_its_published_value():
    benches = all_benchmarks(["rodent", "fly"], family="properties")
    assert len(benches) >= 8
    assert {b.reference for b in benches} == {"rodent", "fly"}
    for bench in benches:
        assert bench.higher_is_better is False
        assert bench.published is not None and bench.spread > 0, bench.id
        assert bench.citation and bench.measurement and bench.comparison, bench.id
        assert bench.confidence.startswith("["), bench.id
        assert 0 < bench.data_ceiling < MAX_DISTANCE, bench.id
        described = bench.describe()
        assert described["published"] == bench.published
        assert described["data_ceiling"] == bench.data_ceiling
    assert get("fly.properties.pen-lead-fast").published == 20.7


def test_other_benchmarks_describe_themselves_as_before():
    described = get("rodent.tuning.tuning-width").describe()
    assert "published" not in described and "data_ceiling" not in described


def test_benchmark_rejects_a_half_given_published_value():
    with pytest.raises(HdbenchError, match="both published and spread"):
        Benchmark(family="properties", name="x", score_fn=len, higher_is_better=False,
                  published=1.0)
    with pytest.raises(HdbenchError, match="spread"):
        Benchmark(family="properties", name="x", score_fn=len, higher_is_better=False,
                  published=1.0, spread=0.0)
    with pytest.raises(HdbenchError, match="data_ceiling"):
        Benchmark(family="properties", name="x", score_fn=len, higher_is_better=False,
                  data_ceiling=math.nan)
    with pytest.raises(HdbenchError, match="sample size"):
        Published("x", 1.0, 1.0, "", kind="distribution")


@pytest.mark.parametrize("z", [0.0, 0.4, -1.3, 2.5])
def test_distance_of_a_value_is_the_expected_absolute_deviation(z):
    exact = 2 * norm.pdf(z) + z * (2 * norm.cdf(z) - 1)  # E|Z - z|, Z ~ N(0, 1)
    assert STANDARD.distance(z) == pytest.approx(exact, abs=1e-4)
    scaled = Published("x", 20.0, 4.0, "°")
    assert scaled.distance(20.0 + 4.0 * z) == pytest.approx(exact, abs=1e-4)


@settings(max_examples=50, deadline=None)
@given(st.floats(-4, 4), st.floats(0, 3))
def test_a_value_never_beats_the_data_ceiling_and_worsens_with_distance(x, step):
    ceiling = STANDARD.data_ceiling()
    assert STANDARD.distance(x) >= ceiling - 1e-9
    further = x + math.copysign(step, x) if x else step
    assert STANDARD.distance(further) >= STANDARD.distance(x) - 1e-9


def test_value_ceiling_is_the_mean_absolute_deviation_of_a_normal():
    assert STANDARD.data_ceiling() == pytest.approx(math.sqrt(2 / math.pi), abs=1e-4)
    for bench in PROPERTY_BENCHMARKS:
        if bench.name != "pen-av-bandwidth":
            assert bench.data_ceiling == pytest.approx(math.sqrt(2 / math.pi), abs=1e-4)


def test_distribution_distance_is_wasserstein_in_spreads():
    published = Published("x", 0.0, 1.0, "", kind="distribution", n=12)
    exact = norm.ppf((np.arange(400) + 0.5) / 400)
    assert published.distance(exact) < 0.02
    assert published.distance(exact + 0.7) == pytest.approx(0.7, abs=0.02)  # a shift
    assert published.distance(exact * 2) == pytest.approx(2 * math.sqrt(2 / math.pi) / 2,
                                                           abs=0.03)  # E|Z| for twice the SD
    samples = np.stack([exact, exact + 0.7])
    assert wasserstein_to(published, samples) == pytest.approx([0.0, 0.7], abs=0.02)


def test_bandwidth_ceiling_matches_its_derivation():
    bench = get("fly.properties.pen-av-bandwidth")
    published = bench.score_fn.published
    assert published.n == 12 and published.shape == "lognormal"
    assert published.data_ceiling(n_draws=4000, seed=3) == pytest.approx(bench.data_ceiling,
                                                                          abs=0.012)


def test_missing_or_absurd_values_get_the_largest_distance():
    assert STANDARD.distance(math.nan) == MAX_DISTANCE
    assert STANDARD.distance([]) == MAX_DISTANCE
    assert STANDARD.distance(1e6) == MAX_DISTANCE
    assert STANDARD.distance([math.nan, 0.0]) == STANDARD.distance(0.0)


def test_lognormal_quantiles_have_the_published_mean_and_sd():
    published = Published("x", 145.0, 82.0, "", shape="lognormal")
    q = published.quantiles((np.arange(200_000) + 0.5) / 200_000)
    assert q.mean() == pytest.approx(145.0, rel=1e-3) and q.std() == pytest.approx(82.0, rel=2e-2)
    assert (q > 0).all()


# -- analytic rings scored on the property benchmarks ----------------------------------------


def _fly_ring(**changes):
    bandwidth = get("fly.properties.pen-av-bandwidth").score_fn.published
    n_side = 36
    quantiles = bandwidth.quantiles((np.arange(n_side) + 0.5) / n_side)
    # The lead grows with turning speed nearly linearly in the fly (2.5° below 30°/s, 20.7° at
    # 150-180°/s): half of it from the AV gain of the shifters, half from their firing 60 ms
    # ahead of the compass units.
    options = dict(fwhm_deg=90.0, shift_deg=45.0, gain_base=2.0, ati_compass_ms=0.0,
                   ati_shifter_ms=60.0, bandwidths=np.r_[quantiles, quantiles[::-1]])
    return PropertyRing(n_side=n_side, **{**options, **changes})


def _rodent_ring(**changes):
    options = dict(n_compass=24, fwhm_deg=55.0, ati_compass_ms=17.0, ati_shifter_ms=95.0)
    return PropertyRing(**{**options, **changes})


def _raw(system, reference):
    bundle = Bundle(system, PRESETS[reference], PROTOCOL, label="test")
    return {b.name: b(bundle, None)[0] for b in all_benchmarks([reference], "properties")}


@pytest.fixture(scope="module")
def floors():
    untrained = build_model(TrainConfig(model="ctrnn", seed=0)).eval()
    return {ref: _raw(untrained, ref) for ref in ("rodent", "fly")}


@pytest.mark.parametrize("reference, build, worse", [
    ("fly", _fly_ring, dict(fwhm_deg=180.0, shift_deg=15.0, gain_base=6.0, ati_shifter_ms=0.0,
                            bandwidths=600.0)),
    ("rodent", _rodent_ring, dict(fwhm_deg=110.0, ati_compass_ms=-40.0, ati_shifter_ms=-40.0,
                                  gain_base=8.0)),
])
def test_a_ring_with_the_published_properties_scores_near_one(reference, build, worse, floors):
    benches = {b.name: b for b in all_benchmarks([reference], "properties")}
    good, bad = _raw(build(), reference), _raw(build(**worse), reference)
    normalised = []
    for name, bench in benches.items():
        ceiling, floor = bench.data_ceiling, floors[reference][name]
        assert good[name] <= ceiling + 0.5, f"{name}: {good[name]} vs ceiling {ceiling}"
        assert bad[name] > good[name], f"{name}: perturbed {bad[name]} vs {good[name]}"
        if floor > ceiling + 0.5:  # an untrained network that happens to match is no floor
            normalised.append((floor - good[name]) / (floor - ceiling))
    assert len(normalised) >= len(benches) - 2
    assert np.mean(normalised) > 0.85, normalised


def test_weight_properties_are_not_computable_without_weights():
    class NoWeights(PropertyRing):
        def recurrent_weights(self):
            raise NotComputableError("recorded activity only")

    bundle = Bundle(NoWeights(n_side=4), PRESETS["fly"], EvalProtocol(n_trials=8))
    with pytest.raises(NotComputableError, match="weights"):
        get("fly.properties.pen-shift")(bundle, None)
    assert math.isfinite(get("fly.properties.epg-bump-fwhm")(bundle, None)[0])


def test_score_functions_pickle():
    import pickle

    bench = get("fly.properties.pen-lead-fast")
    again = pickle.loads(pickle.dumps(bench))
    assert isinstance(again.score_fn, PropertyDistance)
    assert dataclasses.asdict(again.score_fn.published) == \
        dataclasses.asdict(bench.score_fn.published)


@pytest.mark.parametrize("benchmark, option, levels", [
    ("fly.properties.epg-bump-fwhm", "fwhm_deg", [90.0, 120.0, 150.0, 180.0]),
    ("fly.properties.pen-shift", "shift_deg", [45.0, 30.0, 15.0, 0.0]),
    ("fly.properties.pen-lead-fast", "ati_shifter_ms", [60.0, 10.0, -40.0, -90.0]),
])
def test_distance_grows_with_a_graded_departure_from_the_data(benchmark, option, levels):
    """Grounding by design: the ring departs from the published value in graded steps."""
    bench = get(benchmark)
    protocol = EvalProtocol(n_trials=24)
    raw = [bench(Bundle(_fly_ring(**{option: level}), PRESETS["fly"], protocol), None)[0]
           for level in levels]
    assert all(b > a for a, b in zip(raw, raw[1:], strict=False)), raw
    assert raw[-1] - raw[0] > 1.0, raw  # by more than one published SD
