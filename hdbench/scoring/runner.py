"""The one runner of cached work: plan, ask the store what is missing, execute, store, report.

Everything hdbench computes and keeps goes through a :class:`Runner`: training runs
(:meth:`Runner.train`), benchmark scores (:meth:`Runner.score`) and the measurements of
experiments (:meth:`Runner.measure`). For each request the runner

1. asks the store (:mod:`hdbench.store`) whether the result exists under its key (keys cover
   everything that determines a result; ``force=True`` recomputes scores and measurements);
2. takes the job's lock, so that a second process computing the same result waits for this one
   and then reads it instead of computing it again;
3. runs what is missing on the engine (:mod:`hdbench.engine`: in this process, local worker
   processes or a Dask cluster);
4. stores each result as it arrives (only the driver writes), or records its failure;
5. reports what it computed, reused and what failed (:class:`Report`): every failed job *and*
   every failed benchmark inside a job is a :class:`Failure` with a one-line description, so a
   caller can exit non-zero and name it.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hdbench.atomic import atomic_write_bytes
from hdbench.engine import Job, JobResult, run_jobs
from hdbench.errors import HdbenchError
from hdbench.locks import LockHeld
from hdbench.runs import RUN_FILES, Run, holds_files
from hdbench.scoring.benchmark import Benchmark
from hdbench.scoring.bundle import EvalProtocol, hash_of
from hdbench.scoring.job import ScoreJob, run_score_job
from hdbench.scoring.subjects import REFERENCE_INSTANCE, ReferenceSpec, score_key
from hdbench.store import Store, provenance
from hdbench.training.config import TrainConfig

# -- jobs ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainJob:
    """Train ``config`` in the private working directory ``scratch`` (resumable).

    When ``scratch`` is None or cannot be created (e.g. a remote worker), a temporary directory
    is used instead and an interrupted job starts over.
    """

    config: TrainConfig
    scratch: str | None = None


def run_train_job(job: TrainJob) -> dict:
    """Train and return ``{"metrics": ..., "files": {name: bytes}}``; the driver stores them."""
    from hdbench.training.trainer import train

    temporary = None
    run_dir = Path(job.scratch) if job.scratch else None
    if run_dir is not None:
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError:
            run_dir = None
    if run_dir is None:
        temporary = run_dir = Path(tempfile.mkdtemp(prefix="hdbench-train-"))
    try:
        metrics = train(job.config, run_dir, resume=True, progress=False)
        files = {name: (run_dir / name).read_bytes() for name in RUN_FILES}
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
    return {"metrics": metrics, "files": files}


def _training_cost(config: TrainConfig) -> float:
    """Relative cost of a training run (to schedule the longest first)."""
    per_step = {"lstm": 2.8, "gru": 2.2}.get(config.model, 1.0)
    units = config.model_options.get("n_units", 100)
    return config.updates * config.batch_size * per_step * units / 100


@dataclass(frozen=True)
class ScoreRequest:
    """Score ``subject`` on ``benchmarks`` of ``reference`` under ``protocol``."""

    subject: Any
    reference: ReferenceSpec
    benchmarks: tuple[Benchmark, ...]
    protocol: EvalProtocol
    label: str


@dataclass(frozen=True)
class MeasureRequest:
    """A measurement of an experiment: ``fn(config)`` returns a JSON-ready dict, stored as
    record ``key`` of ``namespace`` at ``version`` (next to ``context``)."""

    namespace: str
    version: int
    key: str
    fn: Callable[[Any], dict]
    config: Any
    label: str
    context: dict = field(default_factory=dict)


# -- what happened -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Failure:
    """One failed job, or one failed benchmark inside a scoring job."""

    label: str
    error_type: str
    message: str

    def line(self) -> str:
        first = self.message.strip().splitlines()[0] if self.message.strip() else ""
        return f"{self.label}: {self.error_type}: {first}"


@dataclass
class Report:
    """What a runner did: jobs computed and reused, failures, what a dry run would compute."""

    computed: int = 0
    reused: int = 0
    failures: list[Failure] = field(default_factory=list)
    planned: list[str] = field(default_factory=list)
    results: list[JobResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary_line(self, limit: int = 3) -> str:
        """``N jobs computed, M reused; K failed: a; b; ...`` (the first ``limit`` failures)."""
        line = f"{self.computed} jobs computed, {self.reused} reused from the cache"
        if not self.failures:
            return line + "; none failed"
        shown = "; ".join(f.line() for f in self.failures[:limit])
        more = f"; and {len(self.failures) - limit} more" if len(self.failures) > limit else ""
        return f"{line}; {len(self.failures)} FAILED: {shown}{more}"


# -- the runner ----------------------------------------------------------------------------------

class Runner:
    """Plan → store → execute → report, for every kind of cached work.

    Parameters
    ----------
    store : Store or path, optional
        The cache (default ``$HDBENCH_HOME``).
    jobs : int
        Local worker processes (1 = in this process).
    dask_scheduler : str, optional
        Run the jobs on this Dask scheduler instead.
    force : bool
        Recompute scores and measurements even when stored (training runs are keyed by their
        config and the training code's versions; remove a run from the cache to retrain it).
    retry_failed : bool
        Retry jobs whose failure is recorded (default); False skips them (and reports them).
    dry_run : bool
        Log what would run; compute and write nothing.
    progress : bool
        Progress bars.
    log : callable
        Where messages go (default ``print``).
    """

    def __init__(self, store=None, *, jobs: int = 1, dask_scheduler: str | None = None,
                 force: bool = False, retry_failed: bool = True, dry_run: bool = False,
                 progress: bool = True, log: Callable[[str], None] = print):
        self.store = store if isinstance(store, Store) else Store(store)
        self.engine = dict(n_jobs=jobs, dask_scheduler=dask_scheduler, progress=progress)
        self.force, self.retry_failed, self.dry_run = force, retry_failed, dry_run
        self.log = log
        self.report = Report()

    # -- execution ---------------------------------------------------------------------------
    def _execute(self, jobs: dict[str, tuple[Job, Callable[[JobResult], None],
                                             Callable[[], bool]]], desc: str) -> None:
        """Run ``{key: (job, store_result, done)}`` under their locks.

        A job whose lock another process holds is deferred: once this runner's own jobs are
        done it waits for that lock, and computes the job only if the result is still missing.
        """
        if self.dry_run:
            self.report.planned += [job.describe() for job, _, _ in jobs.values()]
            return
        locks, mine, deferred = {}, [], []
        try:
            for key, (job, _, _) in jobs.items():
                lock = self.store.lock(key, job.describe())
                try:
                    lock.acquire(timeout=0)
                except LockHeld:
                    deferred.append(key)
                    continue
                locks[key] = lock
                mine.append(key)
            self._run_locked([jobs[k] for k in mine], locks, desc)
            for key in deferred:
                job, _, done = jobs[key]
                self.log(f"waiting for another hdbench process computing: {job.describe()}")
                lock = self.store.lock(key, job.describe())
                lock.acquire(timeout=None)
                locks[key] = lock
                if done():
                    self.report.reused += 1
                    lock.release()
                    continue
                self._run_locked([jobs[key]], locks, desc)
        finally:
            for lock in locks.values():
                with contextlib.suppress(Exception):
                    lock.release()

    def _run_locked(self, entries, locks, desc) -> None:
        if not entries:
            return
        by_key = {job.key: (job, store_result) for job, store_result, _ in entries}

        def on_result(result: JobResult) -> None:
            job, store_result = by_key[result.key]
            store_result(result)
            if result.ok:
                self.report.computed += 1
            else:
                self.report.failures.append(Failure(job.describe(), result.error["type"],
                                                    result.error["message"]))
            lock = locks.pop(result.key, None)
            if lock is not None:
                lock.release()

        self.report.results += run_jobs([job for job, _ in by_key.values()],
                                        on_result=on_result, desc=desc, **self.engine)

    def _known_failure(self, path: Path, label: str) -> bool:
        """A recorded failure that must not be retried (``retry_failed=False``)."""
        if self.retry_failed:
            return False
        failure = self.store.read_failure(path)
        if failure is None:
            return False
        error = failure.get("error") or {}
        self.report.failures.append(Failure(f"{label} (failed before; not retried)",
                                            error.get("type", "Error"),
                                            error.get("message", "")))
        return True

    # -- training ----------------------------------------------------------------------------
    def find_run(self, config: TrainConfig, zoo_dir=None) -> Path | None:
        """A finished run of ``config`` made by today's code: in the cache, or in ``zoo_dir``
        (a committed run directory) when its stored run hash matches."""
        run_hash = config.run_hash()
        if self.store.has_run(run_hash):
            return self.store.run_dir(run_hash)
        if zoo_dir is not None and (Path(zoo_dir) / "config.json").is_file():
            with contextlib.suppress(HdbenchError):
                run = Run.load(zoo_dir)
                if run.config == config and run.matches_code() and run.finished:
                    return Path(zoo_dir)
        return None

    def stale_message(self, config: TrainConfig, zoo_dir) -> str:
        """Why a committed run in ``zoo_dir`` is not reused ('' when there is none)."""
        if zoo_dir is None or not (Path(zoo_dir) / "config.json").is_file():
            return ""
        try:
            run = Run.load(zoo_dir)
        except HdbenchError as err:
            return str(err)
        if run.config != config:
            return f"{zoo_dir} holds a run of another config"
        return run.code_mismatch()

    def train(self, requests: Iterable[tuple[str, TrainConfig, Path | None]],
              allowed: bool = True, export: bool = False) -> dict[str, Path | None]:
        """Make sure every ``(label, config, zoo_dir)`` is trained; return its run directory
        (None when it is not trained: ``allowed=False``, or its training failed).

        With ``export``, each run is copied into its ``zoo_dir`` as soon as it is stored (so a
        long zoo training can be committed as it goes; :meth:`export_run`).
        """
        requests = list(requests)
        found, jobs = {}, {}
        for label, config, zoo_dir in requests:
            found[label] = self.find_run(config, zoo_dir)
            if found[label] is not None:
                self.report.reused += 1
                continue
            stale = self.stale_message(config, zoo_dir)
            if not allowed:
                self.log(f"not training {label}: "
                         f"{stale + '; retrain it' if stale else 'no checkpoint'}")
                continue
            if stale:
                self.log(f"retraining {label}: {stale}")
            run_hash = config.run_hash()
            if self._known_failure(self.store.run_dir(run_hash), f"train {label}"):
                continue
            key = f"train-{run_hash}"
            if key in jobs:
                continue
            job = Job(key=key, fn=run_train_job, label=f"train {label} ({config.updates} updates)",
                      config=TrainJob(config, str(self.store.scratch_dir(run_hash))))
            target = Path(zoo_dir) if export and zoo_dir is not None else None
            jobs[key] = (job, self._train_storer(job, target),
                         lambda h=run_hash: self.store.has_run(h))
        # longest first, so that workers finish together (gated models cost 3-4x a CTRNN)
        jobs = dict(sorted(jobs.items(),
                           key=lambda item: -_training_cost(item[1][0].config.config)))
        self._execute(jobs, "train")
        for label, config, _ in requests:
            if found.get(label) is None and not self.dry_run:
                found[label] = self.find_run(config)
        return found

    def _train_storer(self, job: Job, export_to: Path | None = None):
        config = job.config.config

        def store_result(result: JobResult) -> None:
            common = {"job": job.describe(), "wall_s": result.wall_s}
            if result.ok:
                run = self.store.write_run(config.run_hash(), result.value["files"], {
                    "kind": "train", "config": config.to_dict(),
                    "metrics": result.value["metrics"],
                    "provenance": provenance(seeds={"train": config.seed}, worker=result.worker,
                                             **common)})
                if export_to is not None:
                    self.export_run(run, config, export_to)
            else:
                self.store.write_failure(self.store.run_dir(config.run_hash()), {
                    "kind": "train", "config": config.to_dict(), "error": result.error,
                    "provenance": provenance(**common)})
        return store_result

    def export_run(self, source: Path, config: TrainConfig, target: Path) -> bool:
        """Copy a finished run into ``target`` (a committed zoo folder), replacing a run of the
        same config made by other code; a folder holding anything else is left alone."""
        source, target = Path(source), Path(target)
        if source.resolve() == target.resolve() or self.find_run(config, target) == target:
            return False
        if holds_files(target):
            try:
                same = Run.load(target).config == config
            except HdbenchError:
                same = False
            if not same:
                self.log(f"not exporting to {target}: it holds something else; remove it to "
                         "export")
                return False
        target.mkdir(parents=True, exist_ok=True)
        with self.store.lock("export-" + hash_of(str(target.resolve())), f"export to {target}"):
            for name in RUN_FILES:
                atomic_write_bytes(target / name, (source / name).read_bytes())
            for leftover in ("checkpoint.pt", "recorded.json"):
                (target / leftover).unlink(missing_ok=True)
        return True

    # -- scoring -----------------------------------------------------------------------------
    def score_record(self, subject, reference: ReferenceSpec, bench: Benchmark,
                     protocol: EvalProtocol) -> dict | None:
        return self.store.read_score(bench.id, bench.version,
                                     score_key(subject, reference, protocol))

    def score_failure(self, subject, reference: ReferenceSpec, bench: Benchmark,
                      protocol: EvalProtocol) -> dict | None:
        key = score_key(subject, reference, protocol)
        return self.store.read_failure(self.store.score_path(bench.id, bench.version, key))

    def _missing(self, request: ScoreRequest) -> list[Benchmark]:
        key = score_key(request.subject, request.reference, request.protocol)
        missing = []
        for bench in request.benchmarks:
            if not self.force and self.store.read_score(bench.id, bench.version, key) \
                    is not None:
                continue
            if self._known_failure(self.store.score_path(bench.id, bench.version, key),
                                   f"{request.label}: {bench.id}"):
                continue
            missing.append(bench)
        return missing

    def score(self, requests: Iterable[ScoreRequest], desc: str = "score") -> None:
        """Score every request's missing benchmarks (one job per subject and reference)."""
        jobs = {}
        for request in requests:
            missing = self._missing(request)
            if not missing:
                self.report.reused += 1
                continue
            key = "score-" + hash_of({
                "subject": score_key(request.subject, request.reference, request.protocol),
                "benchmarks": [[b.id, b.version] for b in missing]})
            if key in jobs:
                continue
            job = Job(key=key, fn=run_score_job,
                      label=f"{request.label}: {len(missing)} benchmarks",
                      config=ScoreJob(subject=request.subject, reference=request.reference,
                                      benchmarks=tuple(missing), protocol=request.protocol,
                                      reference_instance=REFERENCE_INSTANCE))
            def done(r=request, m=tuple(missing)):
                return all(self.score_record(r.subject, r.reference, b, r.protocol) is not None
                           for b in m)

            jobs[key] = (job, self._score_storer(job, request.label), done)
        self._execute(jobs, desc)

    def _score_storer(self, job: Job, label: str):
        score_job: ScoreJob = job.config
        key = score_key(score_job.subject, score_job.reference, score_job.protocol)

        def store_result(result: JobResult) -> None:
            subject = score_job.subject
            seeds = {"protocol": score_job.protocol.seed,
                     "reference_instance": score_job.reference_instance}
            if hasattr(subject, "config"):
                seeds["model"] = subject.config.seed
            record = {**subject.identity(), "label": subject.describe()}
            if hasattr(subject, "config"):
                record["config"] = subject.config.to_dict()
            base = {"kind": "score", "subject": record,
                    "reference": score_job.reference.identity(),
                    "protocol": score_job.protocol.to_dict()}
            common = {"job": job.describe(), "wall_s": result.wall_s}
            value = result.value if result.ok else {}
            values, failures = value.get("values", {}), value.get("failures", {})
            not_computable = value.get("not_computable", {})
            for bench in score_job.benchmarks:
                path = self.store.score_path(bench.id, bench.version, key)
                facts = {**base, "benchmark": bench.describe(),
                         "provenance": provenance(seeds=seeds, worker=result.worker, **common)}
                if bench.id in not_computable:  # a fact about the subject, kept like a score
                    self.store.write_score(bench.id, bench.version, key, {
                        **facts, "value": None, "error": None,
                        "not_computable": not_computable[bench.id], "task": value["task"]})
                elif bench.id in values:
                    self.store.write_score(bench.id, bench.version, key, {
                        **facts, **values[bench.id], "task": value["task"]})
                else:
                    error = failures.get(bench.id, result.error)
                    self.store.write_failure(path, {**facts, "error": error})
                    if result.ok:  # whole-job failures are reported by _run_locked
                        self.report.failures.append(Failure(f"{label}: {bench.id}",
                                                            error["type"], error["message"]))
        return store_result

    # -- measurements --------------------------------------------------------------------------
    def measure_record(self, request: MeasureRequest) -> dict | None:
        return self.store.read_score(request.namespace, request.version, request.key)

    def measure(self, requests: Iterable[MeasureRequest], desc: str = "measure") -> None:
        """Compute every request's record that is not stored (or all with ``force``)."""
        jobs = {}
        for request in requests:
            path = self.store.score_path(request.namespace, request.version, request.key)
            if not self.force and self.measure_record(request) is not None:
                self.report.reused += 1
                continue
            if self._known_failure(path, request.label):
                continue
            key = f"measure-{hash_of([request.namespace, request.version, request.key])}"
            job = Job(key=key, fn=request.fn, config=request.config, label=request.label)
            jobs[key] = (job, self._measure_storer(job, request),
                         lambda r=request: self.measure_record(r) is not None)
        self._execute(jobs, desc)

    def _measure_storer(self, job: Job, request: MeasureRequest):
        def store_result(result: JobResult) -> None:
            base = {"benchmark": {"id": request.namespace, "version": request.version},
                    **request.context}
            common = provenance(job=job.describe(), wall_s=result.wall_s, worker=result.worker)
            if result.ok:
                self.store.write_score(request.namespace, request.version, request.key,
                                       {**base, **result.value, "provenance": common})
            else:
                self.store.write_failure(
                    self.store.score_path(request.namespace, request.version, request.key),
                    {**base, "error": result.error, "provenance": common})
        return store_result

    # -- reporting ----------------------------------------------------------------------------
    def finish(self) -> Report:
        """Log the one-line summary (and every failure) and return the report."""
        if self.dry_run:
            self.log(f"dry run: {len(self.report.planned)} jobs would run (cache "
                     f"{self.store.root})")
            for line in self.report.planned:
                self.log(f"  would run: {line}")
            return self.report
        for failure in self.report.failures[3:]:
            self.log(f"  failed: {failure.line()}")
        self.log(self.report.summary_line())
        return self.report
