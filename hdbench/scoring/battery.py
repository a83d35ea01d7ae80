"""``hdbench validate``: run the validity battery (:mod:`hdbench.scoring.validity`) on every
benchmark and write ``<out>/validity/benchmark_validity.{csv,json,md}``.

Everything is scored through the runner (cached, resumable, locked like the leaderboard):

- the zoo on the evaluation trials (the leaderboard's table) and on a second, disjoint set of
  trials (protocol seed 1) for split-half reliability;
- every reference's ceiling instances degraded by each kind at graded levels
  (:data:`LEVELS`, per circuit where a kind's useful range differs), against the intact
  reference: only the benchmarks of the families that kind grounds
  (:data:`hdbench.scoring.validity.GROUNDING`) are scored;
- the other circuits' instances against each reference (specificity).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hdbench.atomic import atomic_write_text, check_out_dir
from hdbench.errors import HdbenchError
from hdbench.scoring import QUICK_PROTOCOL, EvalProtocol
from hdbench.scoring import validity as v
from hdbench.scoring.board import bounds, normalised_value, resolve_references, score_board
from hdbench.scoring.runner import Runner, ScoreRequest
from hdbench.scoring.subjects import (
    CEILING_INSTANCES,
    DegradedSubject,
    ReferenceSubject,
    TrainedSubject,
)

# Degradation levels (0 = the intact instance). Weight noise needs per-circuit ranges: the
# fly's ring loses integration at a hundredth of the rodent's noise level (measured).
LEVELS = {
    "shuffle-weights": (0.0, 0.1, 0.25, 0.5, 0.75, 1.0),
    "weight-noise": {"rodent": (0.0, 0.002, 0.01, 0.03, 0.1, 0.3),
                     "fly": (0.0, 0.0001, 0.0003, 0.0007, 0.0012, 0.002)},
    "rate-noise": (0.0, 0.25, 0.5, 1.0, 2.0, 4.0),
    "tuning-scatter": (0.0, 0.2, 0.4, 0.6, 0.8, 1.0),
    "time-constants": (0.0, 0.25, 0.5, 1.0, 2.0, 4.0),
    "heading-remap": (0.0, 0.2, 0.4, 0.6, 0.8, 1.0),
}
QUICK_INSTANCES = (1,)
# A trained zoo run "solves its task" below this test NE (its own metrics.json).
TASK_SOLVED_NE = 0.05
UNTRAINED = "ctrnn-untrained"


def levels_of(kind: str, reference: str) -> tuple[float, ...]:
    grid = LEVELS[kind]
    if isinstance(grid, dict):
        if reference not in grid:
            raise HdbenchError(f"no {kind} levels for reference {reference!r}; known: "
                               f"{', '.join(grid)}")
        return grid[reference]
    return grid


@dataclass
class Battery:
    """What :func:`run_battery` measured: the result rows and each benchmark's status."""

    results: object = None  # DataFrame of validity.COLUMNS (+ reference, family, version)
    status: object = None  # DataFrame: benchmark, validated, fails
    degraded: object = None  # DataFrame: benchmark, kind, level, instance, normalised
    paths: dict = dataclasses.field(default_factory=dict)


def _task_solvers(board) -> list[str]:
    import json

    solvers = {}
    for run in board.runs:
        if isinstance(run.subject, TrainedSubject):
            try:
                ne = json.loads((Path(run.subject.path) / "metrics.json").read_text())["test_ne"]
            except (OSError, ValueError, KeyError):
                continue
            solvers.setdefault(run.entry.model_id, []).append(ne is not None and
                                                              ne < TASK_SOLVED_NE)
    return sorted(m for m, solved in solvers.items() if all(solved))


def run_battery(zoo=None, references=None, *, quick: bool = False, out_dir="results",
                runner: Runner | None = None, log: Callable[[str], None] = print,
                **runner_options) -> Battery:
    """Score everything the battery needs, compute every test, write the tables.

    Zoo runs must exist (``hdbench leaderboard`` trains them); missing ones are left out.
    """
    import pandas as pd

    from hdbench.zoo import get_zoo

    out_dir = check_out_dir(out_dir)
    runner = runner or Runner(log=log, **runner_options)
    zoo = tuple(zoo) if zoo is not None else get_zoo(quick)
    protocol = QUICK_PROTOCOL if quick else EvalProtocol()
    instances = QUICK_INSTANCES if quick else CEILING_INSTANCES
    specs = resolve_references(references)
    zoo_dir = out_dir / "zoo"
    board = score_board(zoo, (), specs, None, runner=runner, protocol=protocol, train=False,
                        zoo_dir=zoo_dir)
    split = score_board(zoo, (), specs, None, runner=runner, train=False, zoo_dir=zoo_dir,
                        protocol=dataclasses.replace(protocol, seed=protocol.seed + 1))

    degraded, crossed = [], []
    for spec in specs:
        benches = board.benches[spec.name]
        for kind in LEVELS:
            grounded = tuple(b for b in benches if kind in v.GROUNDING.get(b.family, ()))
            if not grounded:
                continue
            for instance in instances:
                for level in levels_of(kind, spec.name)[1:]:
                    subject = DegradedSubject(spec, instance, kind, level)
                    degraded.append((spec, kind, level, instance, grounded, subject))
        for other in specs:
            if other.name != spec.name:
                for instance in instances:
                    crossed.append((spec, ReferenceSubject(other, instance)))
    runner.score([ScoreRequest(s, spec, grounded, protocol, s.describe() + f" vs {spec.name}")
                  for spec, _, _, _, grounded, s in degraded], desc="degraded references")
    runner.score([ScoreRequest(s, spec, tuple(board.benches[spec.name]), protocol,
                               f"{s.describe()} vs {spec.name}") for spec, s in crossed],
                 desc="other circuits")
    if runner.dry_run:
        runner.finish()
        return Battery()

    solvers = _task_solvers(board)
    log(f"{len(solvers)} task-solving trained models (test NE < {TASK_SOLVED_NE:.0%}): "
        f"{', '.join(solvers)}")
    rows, degraded_rows = [], []
    for spec in specs:
        for bench in board.benches[spec.name]:
            ceiling, floor = bounds(runner, spec, bench, protocol)
            for kind in v.GROUNDING.get(bench.family, ()):
                for instance in instances:
                    own = runner.score_record(ReferenceSubject(spec, instance), spec, bench,
                                              protocol)
                    degraded_rows.append({"benchmark": bench.id, "kind": kind, "level": 0.0,
                                          "instance": instance, "normalised":
                                          normalised_value(own, bench, ceiling, floor)})
            for s_spec, kind, level, instance, grounded, subject in degraded:
                if s_spec.name == spec.name and bench in grounded:
                    record = runner.score_record(subject, spec, bench, protocol)
                    degraded_rows.append({"benchmark": bench.id, "kind": kind,
                                          "level": level, "instance": instance,
                                          "normalised": normalised_value(record, bench,
                                                                         ceiling, floor)})
            results = _benchmark_results(bench, spec, board.table, split.table, solvers,
                                         pd.DataFrame(degraded_rows), runner, protocol,
                                         crossed, ceiling, floor)
            rows += [{**r.row(), "reference": spec.name, "family": bench.family,
                      "version": bench.version} for r in results]
    table = pd.DataFrame(rows)
    battery = Battery(results=table, status=v.status(table),
                      degraded=pd.DataFrame(degraded_rows))
    battery.paths = write_battery(battery, out_dir / "validity", protocol, quick)
    log(format_status(battery))
    runner.finish()
    return battery


def _benchmark_results(bench, spec, table, split_table, solvers, degraded, runner, protocol,
                       crossed, ceiling, floor) -> list[v.Result]:
    results = v.discrimination(table, bench.id, solvers, UNTRAINED)
    results.append(v.separation(table, bench.id, solvers))
    results.append(v.saturation(table, bench.id, solvers))
    results += v.grounding(degraded, bench.id, v.GROUNDING.get(bench.family, ()))
    own = [normalised_value(runner.score_record(ReferenceSubject(spec, k), spec, bench,
                                                protocol), bench, ceiling, floor)
           for k in {s.instance_seed for _, s in crossed}]
    other = [normalised_value(runner.score_record(s, spec, bench, protocol), bench, ceiling,
                              floor) for ref, s in crossed if ref.name == spec.name]
    results.append(v.specificity(np.array(own), np.array(other), bench.id))
    results.append(v.reliability(table, split_table, bench.id, solvers))
    results.append(v.task_dependence(table, bench.id, f"{spec.name}.task.test-ne", solvers))
    return results


def format_status(battery: Battery) -> str:
    lines = ["validity of each benchmark (required: " + ", ".join(v.REQUIRED) + ")"]
    for row in battery.status.itertuples():
        lines.append(f"  {row.benchmark:42s} {'validated' if row.validated else 'experimental'}"
                     + (f"  fails: {row.fails}" if row.fails else ""))
    n = int(battery.status["validated"].sum())
    lines.append(f"{n} of {len(battery.status)} benchmarks validated")
    return "\n".join(lines)


def write_battery(battery: Battery, folder: Path, protocol: EvalProtocol, quick: bool) -> dict:
    from hdbench.leaderboard import leaderboard_provenance
    from hdbench.store import dumps

    folder.mkdir(parents=True, exist_ok=True)
    paths = {"csv": folder / "benchmark_validity.csv", "json": folder / "benchmark_validity.json",
             "md": folder / "benchmark_validity.md",
             "degraded": folder / "degradation_scores.csv"}
    columns = ["reference", "family", "version", *v.COLUMNS]
    atomic_write_text(paths["csv"], battery.results[columns].to_csv(
        index=False, float_format="%.6g", lineterminator="\n"))
    atomic_write_text(paths["degraded"], battery.degraded.to_csv(
        index=False, float_format="%.6g", lineterminator="\n"))
    header = leaderboard_provenance(protocol, quick, [], [], {})
    atomic_write_text(paths["json"], dumps({
        "provenance": header, "battery_version": v.BATTERY_VERSION,
        "thresholds": v.THRESHOLDS, "required": list(v.REQUIRED),
        "grounding": {k: list(kinds) for k, kinds in v.GROUNDING.items()},
        "levels": LEVELS, "status": battery.status.to_dict(orient="records")}))
    atomic_write_text(paths["md"], render_markdown(battery))
    return paths


def render_markdown(battery: Battery) -> str:
    table = battery.results
    tests = ["discrimination", "separation", "saturation", "specificity", "reliability",
             "task_dependence"]
    lines = ["# Benchmark validity", "",
             "Each benchmark's statistic per test (pass = ✓). Required for the headline: "
             + ", ".join(v.REQUIRED) + ". Grounding: Spearman ρ of score against "
             "degradation level (≤ −0.9 and a drop ≥ 0.5 of the ceiling-floor range).", "",
             "| benchmark | status | " + " | ".join(tests) + " | grounding |",
             "|---|---|" + "---|" * (len(tests) + 1)]
    status = battery.status.set_index("benchmark")
    for bench, group in table.groupby("benchmark"):
        by_test = group.set_index("test")
        cells = []
        for test in tests:
            if test not in by_test.index:
                cells.append("")
                continue
            row = by_test.loc[test]
            mark = "" if row["passed"] is None or (isinstance(row["passed"], float)
                                                   and math.isnan(row["passed"])) \
                else (" ✓" if row["passed"] else " ✗")
            cells.append(f"{row['statistic']:.2f}{mark}")
        ground = [f"{t.split(':')[1]} {r['statistic']:.2f}{' ✓' if r['passed'] else ' ✗'}"
                  for t, r in by_test.iterrows() if t.startswith("grounding:")]
        state = "validated" if status.loc[bench, "validated"] else "experimental"
        lines.append(f"| {bench} | {state} | " + " | ".join(cells) + " | "
                     + "; ".join(ground) + " |")
    return "\n".join(lines) + "\n"
