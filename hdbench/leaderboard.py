"""The leaderboard of models vs biology: train the zoo, score it, aggregate, render.

:func:`run_leaderboard` drives everything through the run cache (:mod:`hdbench.store`) and an
engine (:mod:`hdbench.engine`):

1. *phase 1*: train every zoo model that is neither in the cache nor in ``<out>/zoo`` with the
   same run hash, and score each reference's ceiling (its instance 1 against instance 0) and
   floor (an untrained network of the default architecture);
2. *phase 2*: score every model on every benchmark of every reference;
3. collect the stored scores into a tidy table (:func:`collect`), aggregate it per family and
   overall (:func:`summarise`) and write ``leaderboard.csv``, ``leaderboard.md`` and
   ``leaderboard.html`` (:func:`write_leaderboard`), each with a provenance header.

Only what is missing is computed; an interrupted run resumes where it stopped. Normalisation and
aggregation follow :mod:`hdbench.scoring.score`.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from hdbench import __version__
from hdbench.atomic import atomic_write_bytes, atomic_write_text
from hdbench.engine import Job, JobResult, run_jobs
from hdbench.errors import HdbenchError
from hdbench.scoring import (
    QUICK_PROTOCOL,
    Benchmark,
    DegenerateScoreError,
    EvalProtocol,
    ReferenceSpec,
    ReferenceSubject,
    Score,
    ScoreJob,
    TrainedSubject,
    UntrainedSubject,
    aggregate,
    all_benchmarks,
    format_score,
    get,
    run_score_job,
    subject_key,
)
from hdbench.scoring.bundle import hash_of
from hdbench.store import RUN_FILES, Store, git_state, provenance
from hdbench.training.config import TrainConfig
from hdbench.zoo import FLOOR_CONFIG, TrainJob, ZooEntry, get_zoo, run_train_job

COLUMNS = ("model", "seed", "reference", "benchmark", "version", "raw", "ceiling", "floor",
           "normalised", "error", "family", "higher_is_better", "note")
SUMMARY_COLUMNS = ("model", "reference", "family", "normalised", "error", "n", "n_total",
                   "coverage", "n_seeds")
CEILING_INSTANCE = 1
REFERENCE_INSTANCE = 0


# -- what to score ------------------------------------------------------------------------------

@dataclass(frozen=True)
class SubjectEntry:
    """A leaderboard row for a ready-made subject (e.g. a user's model file or recorded
    activity, :mod:`hdbench.byo`): nothing to train, one "seed" (0)."""

    model_id: str
    trained: bool = False

    def __post_init__(self):
        ZooEntry(self.model_id, TrainConfig())  # the same id rules as the zoo's

    def run_name(self, seed: int) -> str:
        return self.model_id


@dataclass
class ModelRun:
    """One (zoo entry, seed): its config and, once trained, the subject to score.

    For a :class:`SubjectEntry` the subject is given and ``config`` is None.
    """

    entry: ZooEntry | SubjectEntry
    seed: int
    config: TrainConfig | None
    subject: object = None  # TrainedSubject, UntrainedSubject or an hdbench.byo subject

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
        raise HdbenchError("no reference circuits to score against: reference_circuits."
                           "available() is empty; pass a reference as NAME=module:factory")
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


def _zoo_run_matches(path: Path, run_hash: str) -> bool:
    try:
        stored = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(stored, dict) and stored.get("run_hash") == run_hash and \
        all((path / name).is_file() for name in ("model.pt", "metrics.json"))


def find_run(config: TrainConfig, store: Store, zoo_dir: Path | None = None) -> Path | None:
    """A finished run of ``config``: in the cache, or in ``zoo_dir`` if its run hash matches."""
    run_hash = config.run_hash()
    if store.has_run(run_hash):
        return store.run_dir(run_hash)
    if zoo_dir is not None and _zoo_run_matches(zoo_dir, run_hash):
        return zoo_dir
    return None


def _missing(store: Store, subject, benches: list[Benchmark], protocol: EvalProtocol,
             retry_failed: bool) -> list[Benchmark]:
    key = subject_key(subject, protocol)
    missing = []
    for bench in benches:
        if store.read_score(bench.id, bench.version, key) is not None:
            continue
        path = store.score_path(bench.id, bench.version, key)
        if not retry_failed and store.read_failure(path) is not None:
            continue
        missing.append(bench)
    return missing


def _score_job(subject, reference: ReferenceSpec, benches: list[Benchmark],
               protocol: EvalProtocol, label: str) -> Job:
    key = "score-" + hash_of({"subject": subject_key(subject, protocol),
                              "reference": reference.to_dict(),
                              "benchmarks": [[b.id, b.version] for b in benches]})
    return Job(key=key, fn=run_score_job, label=label,
               config=ScoreJob(subject=subject, reference=reference, benchmarks=tuple(benches),
                               protocol=protocol, reference_instance=REFERENCE_INSTANCE))


# -- storing results (driver only) --------------------------------------------------------------

def _subject_record(subject) -> dict:
    record = {**subject.identity(), "label": subject.describe()}
    if hasattr(subject, "config"):
        record["config"] = subject.config.to_dict()
    return record


def _store_result(store: Store, job: Job, result: JobResult) -> None:
    """Write a finished job's result (or its failure) into the cache."""
    common = {"job": job.describe(), "wall_s": result.wall_s}
    if isinstance(job.config, TrainJob):
        config = job.config.config
        run_hash = config.run_hash()
        if result.ok:
            store.write_run(run_hash, result.value["files"], {
                "kind": "train", "config": config.to_dict(), "metrics": result.value["metrics"],
                "provenance": provenance(seeds={"train": config.seed}, worker=result.worker,
                                         **common)})
        else:
            store.write_failure(store.run_dir(run_hash), {
                "kind": "train", "config": config.to_dict(), "error": result.error,
                "provenance": provenance(**common)})
        return
    score_job: ScoreJob = job.config
    key = subject_key(score_job.subject, score_job.protocol)
    seeds = {"protocol": score_job.protocol.seed, "reference_instance":
             score_job.reference_instance}
    if hasattr(score_job.subject, "config"):
        seeds["model"] = score_job.subject.config.seed
    base = {"kind": "score", "subject": _subject_record(score_job.subject),
            "reference": score_job.reference.to_dict(),
            "protocol": score_job.protocol.to_dict()}
    values = result.value["values"] if result.ok else {}
    failures = result.value["failures"] if result.ok else {}
    not_computable = result.value.get("not_computable", {}) if result.ok else {}
    for bench in score_job.benchmarks:
        path = store.score_path(bench.id, bench.version, key)
        if bench.id in not_computable:  # a fact about the subject, kept like a score
            store.write_score(bench.id, bench.version, key, {
                **base, "benchmark": bench.describe(), "value": None, "error": None,
                "not_computable": not_computable[bench.id], "task": result.value["task"],
                "provenance": provenance(seeds=seeds, worker=result.worker, **common)})
        elif bench.id in values:
            store.write_score(bench.id, bench.version, key, {
                **base, "benchmark": bench.describe(), **values[bench.id],
                "task": result.value["task"],
                "provenance": provenance(seeds=seeds, worker=result.worker, **common)})
        else:
            store.write_failure(path, {
                **base, "benchmark": bench.describe(),
                "error": failures.get(bench.id, result.error),
                "provenance": provenance(seeds=seeds, **common)})


def _export_zoo(store: Store, runs: list[ModelRun], zoo_dir: Path, log) -> None:
    """Copy trained runs from the cache to ``zoo_dir/<model-id>-seed<k>/`` (atomically)."""
    for run in runs:
        if not isinstance(run.subject, TrainedSubject):
            continue
        source, target = Path(run.subject.path), zoo_dir / run.label
        if source == target or _zoo_run_matches(target, run.config.run_hash()):
            continue
        if target.exists() and any(target.iterdir()):
            log(f"not exporting {run.label}: {target} holds another run; remove it to export")
            continue
        target.mkdir(parents=True, exist_ok=True)
        for name in RUN_FILES:
            atomic_write_bytes(target / name, (source / name).read_bytes())


# -- the driver ---------------------------------------------------------------------------------

@dataclass
class LeaderboardRun:
    """What :func:`run_leaderboard` did."""

    table: object = None  # pandas.DataFrame of per-seed rows (COLUMNS)
    summary: object = None  # pandas.DataFrame of aggregates (SUMMARY_COLUMNS)
    paths: dict = field(default_factory=dict)
    planned: list = field(default_factory=list)
    results: list = field(default_factory=list)

    @property
    def failures(self) -> list[JobResult]:
        return [r for r in self.results if not r.ok]


def run_leaderboard(zoo: Iterable[ZooEntry] | None = None, references=None, benchmarks=None, *,
                    subjects: Iterable[tuple[str, object]] = (), write: bool = True,
                    quick: bool = False, jobs: int = 1, dask_scheduler: str | None = None,
                    dry_run: bool = False, out_dir="results", store: Store | str | None = None,
                    retry_failed: bool = True, train: bool = True, progress: bool = True,
                    log: Callable[[str], None] = print) -> LeaderboardRun:
    """Train and score the zoo against the references and write the leaderboard.

    Parameters
    ----------
    zoo : iterable of ZooEntry, optional
        Default :data:`hdbench.zoo.QUICK_ZOO` when ``quick`` else :data:`hdbench.zoo.ZOO`.
    references : iterable of str or ReferenceSpec, optional
        Names (``"fly"``) or ``"name=module:factory"``; default every available circuit.
    benchmarks : iterable of str or Benchmark, optional
        Default: every registered benchmark of those references.
    subjects : iterable of (model id, subject)
        Ready-made subjects scored as rows of their own next to the zoo, e.g. a user's model
        file or recorded activity (:mod:`hdbench.byo`).
    write : bool
        Write ``leaderboard.{csv,md,html}`` and export the zoo (default); False only collects.
    quick : bool
        Quick zoo and :data:`~hdbench.scoring.QUICK_PROTOCOL` (fewer evaluation trials).
    jobs : int
        Local worker processes (1 = in this process).
    dask_scheduler : str, optional
        Run the jobs on this Dask scheduler instead.
    dry_run : bool
        Log what would run; compute and write nothing.
    out_dir : path
        Where ``leaderboard.{csv,md,html}`` and ``zoo/`` go.
    store : Store or path, optional
        The run cache (default ``$HDBENCH_HOME``).
    retry_failed : bool
        Retry jobs whose failure is recorded in the cache (default); False skips them.
    train : bool
        Train the zoo models that have no checkpoint (default). False leaves them out of the
        table (listed in the log and in the provenance header as ``not_trained``): a table of
        what exists, e.g. while a large zoo is still being trained elsewhere.
    """
    store = store if isinstance(store, Store) else Store(store)
    zoo = tuple(zoo) if zoo is not None else get_zoo(quick)
    subjects = [(SubjectEntry(model_id), subject) for model_id, subject in subjects]
    ids = [entry.model_id for entry in zoo] + [entry.model_id for entry, _ in subjects]
    if len(set(ids)) != len(ids):
        raise HdbenchError(f"model ids must be unique; got {', '.join(ids)}")
    references = resolve_references(references)
    benches = resolve_benchmarks(benchmarks, references)
    protocol = QUICK_PROTOCOL if quick else EvalProtocol()
    out_dir = Path(out_dir)
    zoo_dir = out_dir / "zoo"
    engine = dict(n_jobs=jobs, dask_scheduler=dask_scheduler, progress=progress)
    outcome = LeaderboardRun()

    runs, phase1, not_trained = [], {}, []
    for entry in zoo:
        for seed, config in entry.configs():
            run = ModelRun(entry, seed, config)
            runs.append(run)
            if not entry.trained:
                run.subject = UntrainedSubject(config)
                continue
            path = find_run(config, store, zoo_dir / run.label)
            if path is not None:
                run.subject = TrainedSubject(config, str(path))
                continue
            if not train:
                not_trained.append(runs.pop().label)
                continue
            run_hash = config.run_hash()
            if not retry_failed and store.read_failure(store.run_dir(run_hash)) is not None:
                log(f"skipping {run.label}: its training failed before (see "
                    f"{store.failure_path(store.run_dir(run_hash))})")
                continue
            phase1.setdefault(f"train-{run_hash}", Job(
                key=f"train-{run_hash}", fn=run_train_job,
                config=TrainJob(config, str(store.scratch_dir(run_hash))),
                label=f"train {run.label} ({config.updates} updates)"))
    runs += [ModelRun(entry, 0, None, subject) for entry, subject in subjects]
    if not_trained:
        log(f"leaving out {len(not_trained)} zoo runs without a checkpoint (not training): "
            f"{', '.join(not_trained)}")
    for reference in references:
        for role, subject in (("ceiling", ReferenceSubject(reference, CEILING_INSTANCE)),
                              ("floor", UntrainedSubject(FLOOR_CONFIG))):
            missing = _missing(store, subject, benches[reference.name], protocol, retry_failed)
            if missing:
                job = _score_job(subject, reference, missing, protocol,
                                 f"{role} of {reference.name}: {len(missing)} benchmarks")
                phase1.setdefault(job.key, job)

    def phase2_jobs() -> tuple[dict[str, Job], list[str]]:
        """Score jobs of the models that exist now, and labels of those awaiting training.

        A job identical to one of phase 1 (the untrained zoo network is the floor network) is
        not planned again: it is stored, or it just failed.
        """
        planned, waiting = {}, []
        for run in runs:
            for reference in references:
                if run.subject is None:
                    if run.entry.trained:
                        waiting.append(f"score {run.label} vs {reference.name}: "
                                       f"{len(benches[reference.name])} benchmarks "
                                       "(after training)")
                    continue
                missing = _missing(store, run.subject, benches[reference.name], protocol,
                                   retry_failed)
                if missing:
                    job = _score_job(run.subject, reference, missing, protocol,
                                     f"score {run.label} vs {reference.name}: "
                                     f"{len(missing)} benchmarks")
                    if job.key not in phase1:
                        planned.setdefault(job.key, job)
        return planned, waiting

    def store_result(jobs_by_key):
        def handle(result: JobResult) -> None:
            _store_result(store, jobs_by_key[result.key], result)
        return handle

    if dry_run:
        phase2, waiting = phase2_jobs()
        outcome.planned = [job.describe() for job in (*phase1.values(), *phase2.values())]
        outcome.planned += waiting
        log(f"dry run: {len(outcome.planned)} jobs would run "
            f"(cache {store.root}, {protocol.n_trials} evaluation trials)")
        for line in outcome.planned:
            log(f"  would run: {line}")
        return outcome

    outcome.results += run_jobs(phase1.values(), on_result=store_result(phase1),
                                desc="train + ceilings", **engine)
    for run in runs:
        if run.subject is None:
            path = find_run(run.config, store)
            run.subject = TrainedSubject(run.config, str(path)) if path is not None else None
    phase2, _ = phase2_jobs()
    outcome.results += run_jobs(phase2.values(), on_result=store_result(phase2),
                                desc="score", **engine)

    outcome.table = collect(store, runs, references, benches, protocol)
    outcome.summary = summarise(outcome.table, benches)
    n_failed = len(outcome.failures)
    if not write:
        return outcome
    _export_zoo(store, runs, zoo_dir, log)
    header = leaderboard_provenance(protocol, quick, references, runs, benches)
    if not_trained:
        header["not_trained"] = ", ".join(not_trained)
    outcome.paths = write_leaderboard(outcome.table, out_dir, header, benches,
                                      summary=outcome.summary)
    log(f"{len(outcome.results) - n_failed} jobs computed, {n_failed} failed; "
        f"{len(outcome.table)} score rows; wrote "
        f"{', '.join(str(p) for p in outcome.paths.values())}")
    return outcome


# -- the tidy table and its aggregates ----------------------------------------------------------

def collect(store: Store, runs: list[ModelRun], references: list[ReferenceSpec],
            benches: dict[str, list[Benchmark]], protocol: EvalProtocol):
    """Per-seed score rows (:data:`COLUMNS`) for every stored (model run, benchmark)."""
    import pandas as pd

    rows = []
    for reference in references:
        ceiling_key = subject_key(ReferenceSubject(reference, CEILING_INSTANCE), protocol)
        floor_key = subject_key(UntrainedSubject(FLOOR_CONFIG), protocol)
        for bench in benches[reference.name]:
            ceiling = store.read_score(bench.id, bench.version, ceiling_key)
            if bench.data_ceiling is not None:  # published data: the data's own ceiling
                ceiling = {"value": bench.data_ceiling}
            floor = store.read_score(bench.id, bench.version, floor_key)
            for run in runs:
                if run.subject is None:
                    continue
                record = store.read_score(bench.id, bench.version,
                                          subject_key(run.subject, protocol))
                if record is None:
                    continue
                rows.append(_row(run, reference.name, bench, record, ceiling, floor))
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    return table.sort_values(["reference", "benchmark", "model", "seed"], ignore_index=True)


def _value(record: dict | None, name: str = "value") -> float:
    if record is None or record.get(name) is None:
        return math.nan
    return float(record[name])


def _row(run: ModelRun, reference: str, bench: Benchmark, record: dict, ceiling, floor) -> dict:
    raw, ceil, flo = _value(record), _value(ceiling), _value(floor)
    normalised, error, note = math.nan, math.nan, ""
    if ceiling is None or floor is None:
        note = "no ceiling" if ceiling is None else "no floor"
    else:
        try:
            score = Score(raw, ceil, flo, bench.higher_is_better,
                          raw_error=_value(record, "error"))
            normalised, error = score.normalised, score.error
            note = "inverted: floor beats ceiling" if score.inverted else ""
        except DegenerateScoreError:
            note = "degenerate: ceiling == floor"
        if not math.isfinite(raw):
            note = "raw value not finite"
    if record.get("not_computable"):
        note = str(record["not_computable"])
    return {"model": run.entry.model_id, "seed": run.seed, "reference": reference,
            "benchmark": bench.id, "version": bench.version, "raw": raw, "ceiling": ceil,
            "floor": flo, "normalised": normalised, "error": error, "family": bench.family,
            "higher_is_better": bench.higher_is_better, "note": note}


def summarise(table, benches: dict[str, list[Benchmark]] | None = None):
    """Aggregates per (model, reference, family), with ``family="overall"`` per reference and
    ``reference="all"`` over every reference: unweighted means of normalised leaf scores with
    coverage (see :mod:`hdbench.scoring.score`).

    A model's leaf score is the mean over its seeds of the normalised values; its error is the
    SEM over seeds (2+ seeds) or the benchmark's own error (1 seed). ``benches`` gives the
    number of leaves that exist; without it, the benchmarks present in ``table`` count.
    """
    import pandas as pd

    if benches is None:
        leaves = table[["reference", "family", "benchmark"]].drop_duplicates()
    else:
        leaves = pd.DataFrame([(ref, b.family, b.id) for ref, bs in benches.items() for b in bs],
                              columns=["reference", "family", "benchmark"])
    groups = [(ref, fam, chosen) for ref, ref_leaves in leaves.groupby("reference")
              for fam, chosen in [*ref_leaves.groupby("family"), ("overall", ref_leaves)]]
    groups.append(("all", "overall", leaves))
    rows = []
    for model, model_rows in table.groupby("model", sort=False):
        n_seeds = int(model_rows["seed"].nunique())
        per_leaf = _leaf_scores(model_rows)
        for reference, family, chosen in groups:
            ids = chosen["benchmark"].tolist()
            agg = aggregate([per_leaf.get(i, (math.nan, math.nan))[0] for i in ids],
                            [per_leaf.get(i, (math.nan, math.nan))[1] for i in ids],
                            n_total=len(ids))
            rows.append({"model": model, "reference": reference, "family": family,
                         "normalised": agg.mean, "error": agg.error, "n": agg.n,
                         "n_total": agg.n_total, "coverage": agg.coverage, "n_seeds": n_seeds})
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def _leaf_scores(model_rows) -> dict[str, tuple[float, float]]:
    """``{benchmark: (mean over seeds of normalised, error)}`` for one model's rows."""
    import numpy as np

    leaves = {}
    for bench_id, bench_rows in model_rows.groupby("benchmark"):
        values = bench_rows["normalised"].to_numpy(dtype=float)
        finite = np.isfinite(values)
        if not finite.any():
            continue
        if finite.sum() >= 2:
            error = float(values[finite].std(ddof=1) / math.sqrt(finite.sum()))
        else:
            error = float(bench_rows["error"].to_numpy(dtype=float)[finite][0])
        leaves[bench_id] = (float(values[finite].mean()), error)
    return leaves


def ranking(summary) -> list[str]:
    """Models best first by their overall score over all references (missing last)."""
    overall = summary[(summary["reference"] == "all") & (summary["family"] == "overall")]
    ordered = overall.sort_values(["normalised", "model"], ascending=[False, True],
                                  na_position="last")
    return ordered["model"].tolist()


# -- rendering ----------------------------------------------------------------------------------

def leaderboard_provenance(protocol: EvalProtocol, quick: bool, references, runs,
                           benches) -> dict:
    """The header every rendered file carries."""
    git = git_state()
    return {
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "hdbench_version": __version__,
        "git_commit": (git["commit"] + (" (dirty)" if git["dirty"] else "")) if git else "unknown",
        "quick": quick,
        "evaluation_trials": protocol.n_trials,
        "evaluation_seed": protocol.seed,
        "references": ", ".join(r.name for r in references),
        "models": ", ".join(dict.fromkeys(r.entry.model_id for r in runs)),
        "benchmarks": sum(len(v) for v in benches.values()),
    }


NORMALISATION_NOTE = (
    "Normalised score = (raw - floor) / (ceiling - floor): 1 = as good as a second instance of "
    "the reference circuit (ceiling), 0 = as good as an untrained network (floor), for "
    "similarities and distances alike. Stored unclipped in leaderboard.csv; shown clipped to "
    "[0, 1] (* = clipped). ± = standard error over seeds, scaled by 1/|ceiling - floor|. "
    "Family and overall scores are unweighted means of the leaf scores; (n/m) = coverage, "
    "leaf benchmarks that contributed / that exist."
)


def _summary_columns(summary) -> list[tuple[str, str]]:
    """(reference, family) columns of the main table: overall first, then per reference."""
    columns = [("all", "overall")]
    for reference in sorted(set(summary["reference"]) - {"all"}):
        families = sorted(set(summary.loc[summary["reference"] == reference, "family"])
                          - {"overall"})
        columns += [(reference, "overall")] + [(reference, f) for f in families]
    return columns


def _cell(summary, model, reference, family) -> tuple[str, float]:
    hit = summary[(summary["model"] == model) & (summary["reference"] == reference)
                  & (summary["family"] == family)]
    if hit.empty:
        return "", math.nan
    row = hit.iloc[0]
    return f"{format_score(row['normalised'], row['error'])} ({row['coverage']})", \
        float(row["normalised"])


def _main_rows(summary):
    columns = _summary_columns(summary)
    header = ["rank", "model", "seeds"] + [
        "overall" if ref == "all" else f"{ref} {fam}" for ref, fam in columns]
    rows = []
    for rank, model in enumerate(ranking(summary), start=1):
        seeds = int(summary.loc[summary["model"] == model, "n_seeds"].iloc[0])
        cells = [(str(rank), rank), (model, model), (str(seeds), seeds)]
        cells += [_cell(summary, model, ref, fam) for ref, fam in columns]
        rows.append(cells)
    return header, rows


def _benchmark_rows(table, models):
    header = ["benchmark", "v", "better", "ceiling", "floor"] + list(models) + ["notes"]
    rows = []
    for bench_id, bench_rows in table.groupby("benchmark", sort=True):
        first = bench_rows.iloc[0]
        cells = [(bench_id, bench_id), (str(first["version"]), first["version"]),
                 ("higher" if first["higher_is_better"] else "lower", ""),
                 (f"{first['ceiling']:.4g}", first["ceiling"]),
                 (f"{first['floor']:.4g}", first["floor"])]
        for model in models:
            mine = bench_rows[bench_rows["model"] == model]
            if mine.empty:
                cells.append(("", math.nan))
                continue
            value = float(mine["normalised"].mean())
            cells.append((f"{format_score(value)} (raw {mine['raw'].mean():.4g})", value))
        notes = "; ".join(sorted({n for n in bench_rows["note"].fillna("") if n}))
        cells.append((notes, notes))
        rows.append(cells)
    return header, rows


def render_csv(table, header: dict) -> str:
    """Tidy per-seed rows under ``# key: value`` provenance lines (read with comment='#')."""
    lines = [f"# {key}: {value}" for key, value in header.items()]
    return "\n".join(lines) + "\n" + table.to_csv(index=False, float_format="%.6g",
                                                  lineterminator="\n")


def _md_table(header, rows) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(text.replace("|", "\\|") for text, _ in row) + " |"
              for row in rows]
    return lines


def render_markdown(table, summary, header: dict) -> str:
    main_header, main_rows = _main_rows(summary)
    bench_header, bench_rows = _benchmark_rows(table, ranking(summary))
    lines = ["# hdbench leaderboard: models vs biology", ""]
    lines += [f"- {key}: {value}" for key, value in header.items()]
    lines += ["", NORMALISATION_NOTE, ""] + _md_table(main_header, main_rows)
    lines += ["", "## Per benchmark", "",
              "Normalised score per model (mean over seeds) and its raw value.", ""]
    lines += _md_table(bench_header, bench_rows)
    return "\n".join(lines) + "\n"


_HTML_STYLE = """
body { font-family: "DejaVu Sans", Arial, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; }
th { background: #f0f0f0; cursor: pointer; user-select: none; }
th[aria-sort="ascending"]::after { content: " \\25B2"; }
th[aria-sort="descending"]::after { content: " \\25BC"; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.1em 1em; }
dt { font-weight: bold; }
"""

_HTML_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, col) {
    th.addEventListener("click", function () {
      var desc = th.getAttribute("aria-sort") !== "descending";
      table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", desc ? "descending" : "ascending");
      var key = function (row) {
        var v = row.cells[col].dataset.value;
        return v === "" ? null : (isNaN(v) ? v : parseFloat(v));
      };
      var rows = Array.from(table.tBodies[0].rows);
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x === null || y === null) { return (x === null) - (y === null); }
        var r = (typeof x === "number" && typeof y === "number") ? x - y
          : String(x).localeCompare(String(y));
        return desc ? -r : r;
      });
      rows.forEach(function (r) { table.tBodies[0].appendChild(r); });
    });
  });
});
"""


def _html_table(header, rows) -> list[str]:
    lines = ['<table class="sortable">', "<thead><tr>"
             + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr></thead>", "<tbody>"]
    for row in rows:
        cells = []
        for text, value in row:
            if isinstance(value, float) and not math.isfinite(value):
                value = ""
            cells.append(f'<td data-value="{html.escape(str(value))}">{html.escape(text)}</td>')
        lines.append("<tr>" + "".join(cells) + "</tr>")
    return lines + ["</tbody>", "</table>"]


def render_html(table, summary, header: dict) -> str:
    """Self-contained page: inline CSS, a few lines of inline JS to sort by any column."""
    main_header, main_rows = _main_rows(summary)
    bench_header, bench_rows = _benchmark_rows(table, ranking(summary))
    lines = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             "<title>hdbench leaderboard</title>", f"<style>{_HTML_STYLE}</style>", "</head>",
             "<body>", "<h1>hdbench leaderboard: models vs biology</h1>", "<dl>"]
    lines += [f"<dt>{html.escape(str(k))}</dt><dd>{html.escape(str(v))}</dd>"
              for k, v in header.items()]
    lines += ["</dl>", f"<p>{html.escape(NORMALISATION_NOTE)}</p>",
              "<p>Click a column header to sort.</p>"]
    lines += _html_table(main_header, main_rows)
    lines += ["<h2>Per benchmark</h2>",
              "<p>Normalised score per model (mean over seeds) and its raw value.</p>"]
    lines += _html_table(bench_header, bench_rows)
    lines += [f"<script>{_HTML_SCRIPT}</script>", "</body>", "</html>"]
    return "\n".join(lines) + "\n"


def write_leaderboard(table, out_dir, header: dict, benches=None, summary=None) -> dict:
    """Write ``leaderboard.csv``, ``.md`` and ``.html`` into ``out_dir`` (atomically)."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise HdbenchError(f"cannot create output folder {out_dir}: {err.strerror}") from None
    summary = summarise(table, benches) if summary is None else summary
    paths = {"csv": out_dir / "leaderboard.csv", "md": out_dir / "leaderboard.md",
             "html": out_dir / "leaderboard.html"}
    atomic_write_text(paths["csv"], render_csv(table, header))
    atomic_write_text(paths["md"], render_markdown(table, summary, header))
    atomic_write_text(paths["html"], render_html(table, summary, header))
    return paths


def read_table(path):
    """The tidy table back from a ``leaderboard.csv``."""
    import pandas as pd

    return pd.read_csv(path, comment="#")

