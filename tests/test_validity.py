"""Each validity statistic on synthetic cases where the answer is known."""

import math

import numpy as np
import pandas as pd
import pytest

from hdbench.scoring import validity as v

BENCH = "fly.tuning.x"


def table(scores: dict[str, list[float]], benchmark=BENCH, raw=None) -> pd.DataFrame:
    rows = []
    for model, values in scores.items():
        for seed, value in enumerate(values):
            rows.append({"model": model, "seed": seed, "benchmark": benchmark,
                         "normalised": value,
                         "raw": value if raw is None else raw[model][seed]})
    return pd.DataFrame(rows)


def test_hedges_g_closed_form():
    a, b = np.array([2.0, 4.0, 6.0]), np.array([0.0, 2.0, 4.0])
    # pooled SD 2, difference 2 -> d = 1; correction 1 - 3/(4*6 - 9) = 0.8
    assert v.hedges_g(a, b) == pytest.approx(0.8)
    assert v.hedges_g(b, a) == pytest.approx(-0.8)
    assert math.isnan(v.hedges_g([1.0], b))


def test_discrimination_separates_trained_from_untrained():
    rng = np.random.default_rng(0)
    clear = table({"a": list(0.8 + 0.05 * rng.standard_normal(3)),
                   "b": list(0.7 + 0.05 * rng.standard_normal(3)),
                   "untrained": list(0.05 * rng.standard_normal(3))})
    result, above = v.discrimination(clear, BENCH, ["a", "b"], "untrained")
    assert result.passed and result.statistic > 5 and above.statistic == 1.0
    noise = table({"a": list(0.05 * rng.standard_normal(3)),
                   "b": list(0.05 * rng.standard_normal(3)),
                   "untrained": list(0.05 * rng.standard_normal(3))})
    assert not v.discrimination(noise, BENCH, ["a", "b"], "untrained")[0].passed


def test_separation_is_between_over_within():
    # model means 0, 1, 2 (SD 1); every model's seeds differ by SD 0.1
    t = table({"a": [-0.1, 0.0, 0.1], "b": [0.9, 1.0, 1.1], "c": [1.9, 2.0, 2.1]})
    result = v.separation(t, BENCH, ["a", "b", "c"])
    assert result.statistic == pytest.approx(10.0) and result.passed
    seeds_like_models = table({"a": [0.0, 1.0, 2.0], "b": [0.1, 1.1, 2.1]})
    assert v.separation(seeds_like_models, BENCH, ["a", "b"]).statistic < 0.2


def test_saturation_counts_models_at_a_bound():
    t = table({"a": [0.0, -0.2], "b": [1.3, 1.1], "c": [0.5, 0.6], "d": [0.4, 0.5],
               "e": [0.2, 0.3]})
    result = v.saturation(t, BENCH, list("abcde"))
    assert result.statistic == pytest.approx(0.4) and not result.passed
    assert v.saturation(t, BENCH, list("cde")).passed


def degraded(score_of_level, kinds=("rate-noise",), instances=(1, 2, 3)):
    rows = []
    for kind in kinds:
        for instance in instances:
            for level in (0.0, 0.1, 0.25, 0.5, 0.75, 1.0):
                rows.append({"benchmark": BENCH, "kind": kind, "level": level,
                             "instance": instance, "normalised": score_of_level(level)})
    return pd.DataFrame(rows)


def test_grounding_needs_a_monotone_and_meaningful_fall():
    falls = v.grounding(degraded(lambda x: 1.0 - 0.9 * x), BENCH, ("rate-noise",))[0]
    assert falls.passed and falls.statistic == pytest.approx(-1.0)
    # monotone but tiny: the "correlation of profiles ignores the profile shrank" failure
    flat = v.grounding(degraded(lambda x: 1.0 - 0.02 * x), BENCH, ("rate-noise",))[0]
    assert flat.statistic == pytest.approx(-1.0) and not flat.passed
    # a meaningful fall that is not monotone
    bumpy = v.grounding(degraded(lambda x: 1.0 - (0.9 if x in (0.1, 0.5, 1.0) else 0.0)),
                        BENCH, ("rate-noise",))[0]
    assert not bumpy.passed
    # a graded fall that reaches the floor and stays there: grounded (ties at chance are read
    # as the floor, not as a failure to fall)
    floored = v.grounding(degraded(lambda x: max(0.0, 1.0 - 4 * x)), BENCH, ("rate-noise",))[0]
    assert floored.passed and floored.statistic == pytest.approx(-1.0)
    below = v.grounding(degraded(lambda x: {0.5: -0.2, 0.75: -0.1}.get(x, max(0.0, 1 - 4 * x))),
                        BENCH, ("rate-noise",))[0]
    assert below.passed
    # a cliff (intact, then at the floor from the first level on) is not a graded response
    cliff = v.grounding(degraded(lambda x: 1.0 if x == 0 else 0.0), BENCH, ("rate-noise",))[0]
    assert not cliff.passed and cliff.statistic > -0.9
    missing = v.grounding(degraded(lambda x: 1 - x), BENCH, ("shuffle-weights",))[0]
    assert not missing.passed and missing.detail == "not measured"


def test_specificity_and_reliability():
    assert v.specificity(np.array([0.9, 1.0, 1.1]), np.array([0.1, 0.3]), BENCH).passed
    assert not v.specificity(np.array([0.9, 0.2]), np.array([0.1, 0.3]), BENCH).passed
    models = [f"m{i}" for i in range(8)]
    rng = np.random.default_rng(1)
    truth = {m: rng.normal() for m in models}
    first = table({m: [truth[m] + 0.01 * rng.normal()] for m in models})
    second = table({m: [truth[m] + 0.01 * rng.normal()] for m in models})
    assert v.reliability(first, second, BENCH, models).statistic > 0.99
    shuffled = table({m: [rng.normal()] for m in models})
    assert v.reliability(first, shuffled, BENCH, models).statistic < 0.9


def test_task_dependence_is_reported_not_judged():
    models = ["a", "b", "c", "d"]
    scores = dict(zip(models, [0.9, 0.7, 0.5, 0.1], strict=True))
    errors = dict(zip(models, [0.01, 0.05, 0.1, 0.9], strict=True))
    t = pd.concat([table({m: [s] for m, s in scores.items()}),
                   table({m: [ne] for m, ne in errors.items()}, benchmark="fly.task.test-ne")])
    result = v.task_dependence(t, BENCH, "fly.task.test-ne", models)
    assert result.statistic == pytest.approx(-1.0) and result.passed is None


def test_status_lists_the_tests_a_benchmark_fails():
    rows = [v.Result(BENCH, t, 0.0, 0.0, True).row() for t in
            ("discrimination", "saturation", "grounding:rate-noise", "specificity",
             "reliability")]
    rows.append(v.Result("fly.task.y", "discrimination", 0.0, 0.0, False).row())
    result = v.status(pd.DataFrame(rows))
    good = result.set_index("benchmark").loc[BENCH]
    assert good["validated"] and good["fails"] == ""
    bad = result.set_index("benchmark").loc["fly.task.y"]
    assert not bad["validated"] and "discrimination" in bad["fails"]
    assert "reliability (not measured)" in bad["fails"]
