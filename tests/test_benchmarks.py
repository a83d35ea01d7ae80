"""Every asv benchmark runs once at its smallest parameters, so a broken benchmark fails CI.

Benchmarks are found the way asv finds them: public classes and functions of every
``benchmarks/bench_*.py`` module whose (method) names start with a benchmark prefix.
"""

import importlib
import inspect
import re
from pathlib import Path

import pytest

BENCHMARK_DIR = Path(__file__).resolve().parent.parent / "benchmarks"
BENCHMARK_NAME = re.compile(r"^(time|timeraw|mem|peakmem|track)_")


def _benchmarks():
    for path in sorted(BENCHMARK_DIR.glob("bench_*.py")):
        module = importlib.import_module(f"benchmarks.{path.stem}")
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            if inspect.isclass(obj):
                for method in sorted(m for m in dir(obj) if BENCHMARK_NAME.match(m)):
                    yield pytest.param(obj, method, id=f"{path.stem}.{name}.{method}")
            elif inspect.isfunction(obj) and BENCHMARK_NAME.match(name):
                yield pytest.param(obj, None, id=f"{path.stem}.{name}")


def _smallest(params):
    """asv's ``params``: one list of values, or a list of lists (one per parameter)."""
    if not params:
        return ()
    if all(isinstance(p, list | tuple) for p in params):
        return tuple(p[0] for p in params)
    return (params[0],)


@pytest.mark.parametrize("owner, method", list(_benchmarks()))
def test_benchmark_runs_at_its_smallest_parameters(owner, method):
    target = owner() if method is not None else owner
    call = getattr(target, method) if method is not None else target
    args = _smallest(getattr(call, "params", getattr(target, "params", [])))
    if hasattr(target, "setup_cache"):
        args = (target.setup_cache(), *args)
    setup, teardown = getattr(target, "setup", None), getattr(target, "teardown", None)
    if setup is not None:
        try:
            setup(*args)
        except NotImplementedError:
            pytest.skip("setup skips this parameter combination")
    try:
        result = call(*args)
        if method is not None and method.startswith("track_"):
            assert isinstance(result, int | float), f"{method} must return a number"
    finally:
        if teardown is not None:
            teardown(*args)


def test_compare_core_table_on_a_tiny_shape(capsys):
    from benchmarks import compare_core

    rows = compare_core.measure_cases([(2, 8, 5)], repeats=1, clock=compare_core.time.process_time)
    floors = set(compare_core.FLOORS) if compare_core._native.ops() is not None else {"floor"}
    assert {r["method"] for r in rows} == {*floors, *compare_core.METHODS}
    assert all(r["fwd"] > 0 and r["fwd+bwd"] > 0 for r in rows)
    compare_core.print_table(rows)
    assert "B=2 N=8 T=5" in capsys.readouterr().out


def test_zoo_time_estimates_a_tiny_run_and_schedules():
    from benchmarks import zoo_time
    from hdbench.training import TrainConfig

    config = TrainConfig(model_options={"n_units": 8}, updates=6, batch_size=4, val_every=2,
                         val_trials=4, test_trials=4, checkpoint_every=2)
    estimate = zoo_time.estimate_run(config, 2, zoo_time.time.process_time)
    assert estimate["run_s"] > 0 and estimate["per_update_ms"] > 0
    assert zoo_time.schedule([2.0, 3.0, 1.0, 2.0], 2) == 4.0  # 3 + 1 and 2 + 2
    assert zoo_time._kind(config) == "ctrnn retanh"


def test_zoo_ne_shift_statistics_on_known_shifts():
    import numpy as np

    from benchmarks.zoo_ne_shift import compare

    rng = np.random.default_rng(1)
    old = 10 ** rng.uniform(-2.6, -1.6, 40)
    same = compare(old, old * 10 ** rng.normal(0, 0.01, 40), n_boot=500)
    assert abs(same["median_log10_ratio"]) < 0.01 and same["wilcoxon_p"] > 0.05
    assert same["ci"][0] < 0 < same["ci"][1]
    doubled = compare(old, 2 * old, n_boot=500)
    assert doubled["median_log10_ratio"] == pytest.approx(np.log10(2))
    assert doubled["wilcoxon_p"] < 1e-6
    up, down = doubled["mcnemar"]
    assert down == 0 and up == int(((old < 0.01) & (2 * old >= 0.01)).sum())
    assert doubled["tail_new"] - doubled["tail_old"] == up
