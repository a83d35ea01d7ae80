"""A scoring board: rows of models (zoo entries to train, ready-made subjects) scored against
reference circuits, with the ceilings and floors that normalise them, as one tidy table.

:func:`score_board` plans everything through a :class:`~hdbench.scoring.runner.Runner`:

1. every trained zoo entry is found (in the cache, or committed in ``zoo_dir`` and made by
   today's code) or trained;
2. every reference's ceiling (instances :data:`~hdbench.scoring.subjects.CEILING_INSTANCES`
   against instance 0), its floor (untrained default networks of seeds
   :data:`~hdbench.scoring.subjects.FLOOR_SEEDS`) and every model are scored on every benchmark;
3. :func:`collect` turns the stored scores into rows of :data:`COLUMNS`: the raw value, the mean
   ceiling and floor over their instances and seeds (with their SDs), and the normalised score
   (:mod:`hdbench.scoring.score`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hdbench.errors import HdbenchError
from hdbench.scoring.benchmark import Benchmark, all_benchmarks, get
from hdbench.scoring.bundle import EvalProtocol
from hdbench.scoring.runner import Runner, ScoreRequest
from hdbench.scoring.score import DegenerateScoreError, Score
from hdbench.scoring.subjects import (
    ReferenceSpec,
    TrainedSubject,
    UntrainedSubject,
    ceiling_subjects,
    floor_subjects,
)
from hdbench.training.config import TrainConfig

COLUMNS = ("model", "seed", "reference", "benchmark", "version", "raw", "ceiling",
           "ceiling_sd", "floor", "floor_sd", "normalised", "error", "family",
           "higher_is_better", "note")
_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_+-]*$")


def check_model_id(model_id: str) -> str:
    if not isinstance(model_id, str) or not _MODEL_ID.match(model_id):
        raise HdbenchError(f"model id {model_id!r} must match {_MODEL_ID.pattern}")
    return model_id


@dataclass(frozen=True)
class ZooEntry:
    """One leaderboard model: an id, a training config, the seeds to train, trained or not.

    An untrained entry (``trained=False``) is the network ``config`` builds at initialisation
    (model, options and init seed); its training fields are ignored.
    """

    model_id: str
    config: TrainConfig
    seeds: tuple[int, ...] = (0,)
    trained: bool = True
    description: str = ""

    def __post_init__(self):
        check_model_id(self.model_id)
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise HdbenchError(f"{self.model_id}: seeds must be distinct and non-empty; "
                               f"got {self.seeds}")

    def configs(self) -> list[tuple[int, TrainConfig]]:
        """``(seed, config)`` per seed."""
        return [(seed, self.config.replace(seed=seed)) for seed in self.seeds]

    def run_name(self, seed: int) -> str:
        return f"{self.model_id}-seed{seed}"


@dataclass(frozen=True)
class SubjectEntry:
    """A row for a ready-made subject (a user's model or recorded activity): one "seed" (0)."""

    model_id: str

    def __post_init__(self):
        check_model_id(self.model_id)

    def run_name(self, seed: int) -> str:
        return self.model_id


@dataclass
class ModelRun:
    """One (entry, seed): its config and, once trained, the subject to score."""

    entry: ZooEntry | SubjectEntry
    seed: int
    config: TrainConfig | None
    subject: object = None

    @property
    def label(self) -> str:
        return self.entry.run_name(self.seed)


def resolve_references(references=None) -> list[ReferenceSpec]:
    """References as :class:`ReferenceSpec`; default: ``reference_circuits.available()``."""
    if references is None:
        import reference_circuits

        references = reference_circuits.available()
    specs = [ReferenceSpec.parse(r) for r in references]
    for spec in specs:
        spec.check()
    if not specs:
        raise HdbenchError("no reference circuits to score against")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise HdbenchError(f"reference names must be unique; got {', '.join(names)}")
    return specs


def resolve_benchmarks(benchmarks, references: list[ReferenceSpec]) -> dict[str, list[Benchmark]]:
    """``{reference name: [Benchmark, ...]}``; ``benchmarks`` are ids or Benchmark objects
    (generic ones are bound to every reference), default every registered benchmark."""
    names = [r.name for r in references]
    if benchmarks is None:
        chosen = all_benchmarks(names)
    else:
        chosen = []
        for bench in benchmarks:
            bench = get(bench) if isinstance(bench, str) else bench
            if not isinstance(bench, Benchmark):
                raise HdbenchError(f"expected a benchmark id or Benchmark; got {bench!r}")
            if bench.reference is None:
                chosen.extend(bench.for_reference(name) for name in names)
            elif bench.reference in names:
                chosen.append(bench)
            else:
                raise HdbenchError(f"benchmark {bench.id} is for reference "
                                   f"{bench.reference!r}, which is not being scored")
    by_reference = {name: [] for name in names}
    for bench in chosen:
        if bench.id in {b.id for b in by_reference[bench.reference]}:
            raise HdbenchError(f"benchmark {bench.id} is listed twice")
        by_reference[bench.reference].append(bench)
    if not any(by_reference.values()):
        raise HdbenchError("no benchmarks to run")
    return by_reference


@dataclass
class Board:
    """What :func:`score_board` scored: its rows, references, benchmarks and the table."""

    runs: list[ModelRun]
    references: list[ReferenceSpec]
    benches: dict[str, list[Benchmark]]
    protocol: EvalProtocol
    table: object = None  # pandas.DataFrame (COLUMNS)
    not_trained: list[str] = field(default_factory=list)


def score_board(zoo: Iterable[ZooEntry], subjects: Iterable[tuple[str, object]], references,
                benchmarks, *, runner: Runner, protocol: EvalProtocol, train: bool = True,
                zoo_dir: Path | None = None, export: bool = False) -> Board:
    """Train what is missing, score every row and the ceilings and floors, collect the table.

    Parameters
    ----------
    zoo : iterable of ZooEntry
    subjects : iterable of (model id, subject)
        Ready-made subjects (e.g. :mod:`hdbench.scoring.external`), one row each.
    references, benchmarks
        As :func:`resolve_references` and :func:`resolve_benchmarks` take them.
    runner : Runner
    protocol : EvalProtocol
    train : bool
        Train zoo runs that are missing (default); False leaves them out (``not_trained``).
    zoo_dir : path, optional
        Folder of committed runs (``<zoo_dir>/<model-id>-seed<k>``) reused when made by
        today's code.
    export : bool
        Copy each newly trained run into ``zoo_dir`` as soon as it is trained.
    """
    zoo = tuple(zoo)
    rows = [(SubjectEntry(model_id), subject) for model_id, subject in subjects]
    ids = [e.model_id for e in zoo] + [e.model_id for e, _ in rows]
    if len(set(ids)) != len(ids):
        raise HdbenchError(f"model ids must be unique; got {', '.join(ids)}")
    references = resolve_references(references)
    for reference in references:  # a reference that cannot be built fails before any work
        reference.identity()
    benches = resolve_benchmarks(benchmarks, references)
    board = Board([], references, benches, protocol)

    to_train = []
    for entry in zoo:
        for seed, config in entry.configs():
            run = ModelRun(entry, seed, config)
            board.runs.append(run)
            if not entry.trained:
                run.subject = UntrainedSubject(config)
            else:
                to_train.append((run.label, config,
                                 None if zoo_dir is None else Path(zoo_dir) / run.label))
    found = runner.train(to_train, allowed=train, export=export)
    for run in board.runs:
        if run.subject is None:
            path = found.get(run.label)
            if path is not None:
                run.subject = TrainedSubject.from_run(run.config, path)
            elif not runner.dry_run:
                board.not_trained.append(run.label)
    board.runs = [r for r in board.runs if r.subject is not None or runner.dry_run]
    board.runs += [ModelRun(entry, 0, None, subject) for entry, subject in rows]

    requests = []
    for reference in references:
        ref_benches = tuple(benches[reference.name])
        for subject in (*ceiling_subjects(reference), *floor_subjects()):
            requests.append(ScoreRequest(subject, reference, ref_benches, protocol,
                                         f"{subject.describe()} vs {reference.name}"))
        for run in board.runs:
            if run.subject is None:
                runner.report.planned.append(f"score {run.label} vs {reference.name} "
                                             "(after training)")
                continue
            requests.append(ScoreRequest(run.subject, reference, ref_benches, protocol,
                                         f"{run.label} vs {reference.name}"))
    runner.score(requests)
    if not runner.dry_run:
        board.table = collect(runner, board.runs, references, benches, protocol)
    return board


def _value(record: dict | None, name: str = "value") -> float:
    if record is None or record.get(name) is None:
        return math.nan
    return float(record[name])


def _mean_sd(values: list[float]) -> tuple[float, float]:
    finite = np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64)
    if finite.size < len(values) or finite.size == 0:
        return math.nan, math.nan
    return float(finite.mean()), float(finite.std(ddof=1)) if finite.size > 1 else math.nan


def bounds(runner: Runner, reference: ReferenceSpec, bench: Benchmark,
           protocol: EvalProtocol) -> tuple[tuple[float, float], tuple[float, float]]:
    """``((ceiling mean, SD), (floor mean, SD))`` of a benchmark from the stored scores of the
    ceiling instances and floor seeds (NaN when any is missing)."""
    if bench.data_ceiling is not None:  # a published measurement: the data's own ceiling
        ceiling = (float(bench.data_ceiling), 0.0)
    else:
        ceiling = _mean_sd([_value(runner.score_record(s, reference, bench, protocol))
                            for s in ceiling_subjects(reference)])
    floor = _mean_sd([_value(runner.score_record(s, reference, bench, protocol))
                      for s in floor_subjects()])
    return ceiling, floor


def normalised_value(record: dict | None, bench: Benchmark, ceiling, floor) -> float:
    """The normalised score of a stored record (NaN when undefined)."""
    raw = _value(record)
    try:
        return Score(raw, ceiling[0], floor[0], bench.higher_is_better).normalised \
            if math.isfinite(raw) else math.nan
    except DegenerateScoreError:
        return math.nan


def collect(runner: Runner, runs: list[ModelRun], references: list[ReferenceSpec],
            benches: dict[str, list[Benchmark]], protocol: EvalProtocol):
    """Per-seed rows (:data:`COLUMNS`) for every stored (model run, benchmark).

    A benchmark whose job failed for a model gets a row with a NaN raw value and the error as
    its note, so a failure is visible in every table, never a silent gap.
    """
    import pandas as pd

    rows = []
    for reference in references:
        for bench in benches[reference.name]:
            ceiling, floor = bounds(runner, reference, bench, protocol)
            for run in runs:
                if run.subject is None:
                    continue
                record = runner.score_record(run.subject, reference, bench, protocol)
                if record is None:
                    failure = runner.score_failure(run.subject, reference, bench, protocol)
                    if failure is None:
                        continue
                    message = (failure.get("error") or {}).get("message", "") or "failed"
                    record = {"value": None, "failed": message.strip().splitlines()[0]}
                rows.append(_row(run, reference.name, bench, record, ceiling, floor))
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    return table.sort_values(["reference", "benchmark", "model", "seed"], ignore_index=True)


def _row(run: ModelRun, reference: str, bench: Benchmark, record: dict, ceiling, floor) -> dict:
    raw = _value(record)
    normalised, error, note = math.nan, math.nan, ""
    try:
        score = Score(raw, ceiling[0], floor[0], bench.higher_is_better,
                      raw_error=_value(record, "error"))
        normalised, error = score.normalised, score.error
        note = "inverted: floor beats ceiling" if score.inverted else ""
    except DegenerateScoreError:
        note = ("no ceiling" if not math.isfinite(ceiling[0]) else
                "no floor" if not math.isfinite(floor[0]) else "degenerate: ceiling == floor")
    if not math.isfinite(raw):
        note = "raw value not finite"
    if record.get("not_computable"):
        note = str(record["not_computable"])
    if record.get("failed"):
        note = f"failed: {record['failed']}"
    return {"model": run.entry.model_id, "seed": run.seed, "reference": reference,
            "benchmark": bench.id, "version": bench.version, "raw": raw,
            "ceiling": ceiling[0], "ceiling_sd": ceiling[1], "floor": floor[0],
            "floor_sd": floor[1], "normalised": normalised, "error": error,
            "family": bench.family, "higher_is_better": bench.higher_is_better, "note": note}
