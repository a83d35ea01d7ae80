"""Training time of every kind of zoo run, and of the whole zoo on a number of workers.

    python -m benchmarks.zoo_time [--updates 20] [--workers 2] [--wall]

One torch thread, process CPU time (``--wall``: wall time). For each kind of run in
``hdbench.zoo.ZOO`` (CTRNN per activation, GRU, LSTM, tanh RNN, sparse-recording student per
teacher and recorded fraction) it times:

- full-length runs (5000 updates): ``trainer.train`` stopped after 1 and after 1 + ``updates``
  updates (best of 2 each); the difference is the per-update cost, and a run is estimated as
  setup + per-update x (updates − 1) + validations + the final test evaluation;
- sparse-recording students (a few hundred updates, with the teacher's simulation): one whole
  run.

The whole zoo is then scheduled on ``workers`` (longest runs first). Runs on busy cores share
caches and memory bandwidth, so the estimate is a lower bound of the wall time; runs of the
same kind on other tasks (rodent, fly, ...) cost the same per update.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from hdbench.core.allocator import keep_large_allocations


def _kind(config) -> str:
    if config.teacher is not None:
        return f"student {config.teacher} p={config.record_fraction:g}"
    if config.model != "ctrnn":
        return config.model
    return "ctrnn " + config.model_options.get("activation", "retanh")


def _timed(clock, job):
    start = clock()
    result = job()
    return clock() - start, result


def estimate_run(config, updates: int, clock) -> dict:
    """Seconds of one run of ``config`` (see the module docstring)."""
    from hdbench.training import trainer

    with tempfile.TemporaryDirectory() as tmp:
        if config.teacher is not None:
            seconds, metrics = _timed(clock, lambda: trainer.train(
                config, Path(tmp) / "run", progress=False))
            return {"run_s": seconds, "measured": "whole run", "test_ne": metrics["test_ne"]}

        def stopped(n, name):
            return _timed(clock, lambda: trainer.train(config, Path(tmp) / name, progress=False,
                                                       stop_after=n))[0]

        short = min(stopped(1, "a"), stopped(1, "b"))
        long = min(stopped(1 + updates, "c"), stopped(1 + updates, "d"))
    model = trainer.build_model(config)
    validation = min(_timed(clock, lambda: trainer.evaluate_ne(
        model, trainer.validation_trials(config)))[0] for _ in range(3))
    test = min(_timed(clock, lambda: trainer.evaluate_ne(
        model, trainer.test_trials(config)))[0] for _ in range(2))
    per_update = (long - short) / updates
    run = (short + per_update * (config.updates - 1)
           + config.updates // config.val_every * validation + test)
    return {"run_s": run, "measured": f"{updates} updates", "per_update_ms": per_update * 1e3}


def schedule(durations: list[float], workers: int) -> float:
    """Makespan of the durations on ``workers``, longest first to the least-loaded worker."""
    loads = [0.0] * workers
    for seconds in sorted(durations, reverse=True):
        loads[loads.index(min(loads))] += seconds
    return max(loads)


def main(argv=None) -> None:
    from hdbench.zoo import ZOO

    parser = argparse.ArgumentParser(prog="python -m benchmarks.zoo_time",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=20,
                        help="updates timed per full-length kind (default 20)")
    parser.add_argument("--workers", type=int, default=2, help="workers of the estimate")
    parser.add_argument("--wall", action="store_true", help="wall time instead of CPU time")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    keep_large_allocations()
    clock = time.perf_counter if args.wall else time.process_time
    kinds = {}
    for entry in ZOO:
        if entry.trained:
            kinds.setdefault(_kind(entry.config), entry.config)
    times = {}
    print(f"{'kind':<24} {'per update':>11} {'run':>9}  measured")
    for kind, config in kinds.items():
        times[kind] = estimate_run(config, args.updates, clock)
        t = times[kind]
        per_update = f"{t['per_update_ms']:.1f} ms" if "per_update_ms" in t else "-"
        print(f"{kind:<24} {per_update:>11} {t['run_s'] / 60:7.2f} m  {t['measured']}",
              flush=True)
    runs = [times[_kind(entry.config)]["run_s"] for entry in ZOO if entry.trained
            for _ in entry.seeds]
    total = sum(runs)
    print(f"\n{len(runs)} runs: {total / 3600:.2f} hours of one core; on {args.workers} workers "
          f"(longest first): {schedule(runs, args.workers) / 3600:.2f} hours")


if __name__ == "__main__":
    main()
