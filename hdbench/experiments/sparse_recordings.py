"""``hdbench experiment sparse-recordings``: how much of a circuit do sparse recordings teach?

Salatiello & Giese (2020) claim that an RNN trained on its outputs *plus* the activity of a small
random sample of a teacher circuit's neurons (i) reproduces the teacher's internal dynamics, the
unrecorded neurons included, and (ii) generalises better than one trained on outputs alone. Here
the teacher is a reference circuit (``fly``, ``rodent``) or a trained run, and the students are
CTRNNs trained with :mod:`hdbench.training.recordings` for each recorded fraction p (p = 0:
output-only on the same teacher trials) and seed. Every student is then measured against the
teacher (noise-free, instance 0) on the teacher's task:

- ``unrecorded.*`` / ``population.*``: the student's whole population against the teacher's
  unrecorded neurons / all its neurons: cross-validated angular Procrustes distance and debiased
  linear CKA of the mean rates in 24 heading x 3 AV conditions (as the representation
  benchmarks), and ``unrecorded.r2``: cross-validated R² of each unrecorded teacher neuron
  predicted from the student's rates (ridge regression, fitted on even trials and tested on odd
  ones and vice versa; mean over neurons). ``recorded.activity_mse`` is the activity loss on
  the test trials. (No ``unrecorded.*`` rows at p = 1.)
- ``type_fraction_distance`` (total variation between cell-type fractions, both classified by
  the same rule), ``connectivity_profile_corr`` (weight-profile correlation over the teacher's
  wired type pairs), ``silencing_agreement`` (fraction of the teacher's silencing effects the
  student shows): the tuning, connectivity and dynamics benchmarks' measures.
- ``test_ne`` and, on held-out conditions, ``generalisation_ne.<c>`` and
  ``decode_error_deg.<c>`` (circular RMS error of the decoded heading after the cue):
  ``speed2x`` (AV innovation SD x 2), ``long2x`` (trials 2x longer), ``hold`` (zero AV for 4x
  the trial length); ``decode_error_deg.test`` on the test trials.

Training and measuring run through the runner (:mod:`hdbench.scoring.runner`) like the
leaderboard's jobs; trained runs and measurements are kept in the run store (:mod:`hdbench.store`),
keyed by everything they depend on, so a rerun computes only what is missing. The tidy
table goes to ``<out>/experiments/sparse-recordings-<teacher>.csv``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hdbench.errors import HdbenchError
from hdbench.training.config import TrainConfig

EXPERIMENT = "sparse-recordings"
RECORD_FRACTIONS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
SEEDS = (0, 1, 2)
QUICK_RECORD_FRACTIONS = (0.0, 0.1, 1.0)
QUICK_SEEDS = (0, 1)
# The students' schedule: the quick zoo's (cosine, large input learning rate, small validation
# sets) with lr 3e-3 and 60x that on the input weights. The fly's AV (SD 54°/s) is half the
# cueva-1x SD, so its input weights must grow twice as far; measured on one core (output-only,
# seed 0): lr 3e-3 reaches fly test NE 0.09 after 600 updates, the quick zoo's lr 2e-3 x 30 only
# 0.31 after 700, lr 1.5e-3 x 60 0.35 after 400. The rodent's 192-unit students are unstable at
# lr 3e-3 (still NE 0.75 after 600 updates with p = 0.1) and stay on the plateau with 2e-3 x 30
# (NE 0.69 after 300), but leave it after ~150 updates at 1.5e-3 x 60 (NE 0.09 after 300).
# Lengths fit both teachers' sweeps (42 students) into about an hour of one busy core.
SCHEDULE = dict(batch_size=64, lr=3e-3, input_lr_factor=60.0, lr_schedule="cosine",
                val_every=50, val_trials=64, test_trials=128, checkpoint_every=50)
UPDATES = 500
TEACHER_SCHEDULES = {"rodent": {"lr": 1.5e-3, "updates": 350}}
QUICK_UPDATES = 300
# Student size: fixed across p (so p alone varies) and >= the teacher's N (so p = 1 fits).
DEFAULT_STUDENT_UNITS = 100
STUDENT_UNITS = {"fly": 100, "rodent": 192}
# Evaluation: trials of the teacher's task (the scoring stream) and of each held-out condition.
EVAL_TRIALS, QUICK_EVAL_TRIALS = 256, 64
GENERALISATION_TRIALS, QUICK_GENERALISATION_TRIALS = 128, 32
EVAL_SEED = 0
GENERALISATION_STREAM = 24
# Bump whenever the measurements change: stored measurements of older versions are recomputed.
VERSION = 1
STORE_ID = f"experiment.{EXPERIMENT}"
COLUMNS = ("teacher", "record_fraction", "seed", "measure", "value")
CONDITIONS = ("speed2x", "long2x", "hold")
SUMMARY_MEASURES = ("unrecorded.shape_distance", "unrecorded.cka", "unrecorded.r2",
                    "population.shape_distance", "population.cka", "test_ne",
                    "generalisation_ne.speed2x", "generalisation_ne.long2x",
                    "generalisation_ne.hold", "type_fraction_distance",
                    "connectivity_profile_corr", "silencing_agreement")


def student_units(teacher: str) -> int:
    """Units of the students of ``teacher``: :data:`STUDENT_UNITS` or max(100, N)."""
    if teacher in STUDENT_UNITS:
        return STUDENT_UNITS[teacher]
    from hdbench.training.recordings import load_teacher

    return max(DEFAULT_STUDENT_UNITS, load_teacher(teacher).n_units)


def teacher_task(teacher: str) -> str:
    """The task preset a teacher was built for (a reference's own preset, a run's task)."""
    from hdbench.task import PRESETS

    if teacher in PRESETS:
        return teacher
    from hdbench.training.recordings import load_teacher

    return load_teacher(teacher).task


def student_config(teacher: str, record_fraction: float, seed: int = 0, *, quick: bool = False,
                   updates: int | None = None) -> TrainConfig:
    """The training config of one student of the experiment (also used by the zoo).

    Length: ``updates`` if given, else :data:`QUICK_UPDATES` with ``quick``, else the
    teacher's (:data:`TEACHER_SCHEDULES`) or :data:`UPDATES`.
    """
    schedule = {**SCHEDULE, "updates": UPDATES, **TEACHER_SCHEDULES.get(teacher, {})}
    if quick:
        schedule["updates"] = QUICK_UPDATES
    if updates is not None:
        schedule["updates"] = int(updates)
    return TrainConfig(model="ctrnn", model_options={"n_units": student_units(teacher)},
                       task=teacher_task(teacher), seed=seed, teacher=teacher,
                       record_fraction=float(record_fraction), **schedule)


# -- measurements (run in workers) ---------------------------------------------------------------

@dataclass(frozen=True)
class EvalJob:
    """Measure the finished student at ``path`` (trained with ``config``) against its teacher."""

    config: TrainConfig
    path: str
    eval_trials: int = EVAL_TRIALS
    generalisation_trials: int = GENERALISATION_TRIALS
    seed: int = EVAL_SEED

    def key(self) -> str:
        """Everything the measurements depend on: the student (run hash and weights), the
        teacher, the trials and the measuring code's versions."""
        from hdbench.scoring.bundle import hash_of
        from hdbench.scoring.subjects import ReferenceSpec, weights_digest
        from hdbench.versions import measurement_identity

        teacher = self.config.teacher
        if teacher in STUDENT_UNITS:
            teacher = ReferenceSpec(teacher).identity()
        else:
            teacher = {"run": weights_digest(Path(teacher) / "model.pt")}
        return hash_of({"run": self.config.run_hash(),
                        "weights": weights_digest(Path(self.path) / "model.pt"),
                        "teacher": teacher, "eval_trials": self.eval_trials,
                        "generalisation_trials": self.generalisation_trials,
                        "seed": self.seed, "code": measurement_identity()})


def _spec_and_protocol(job: EvalJob):
    from hdbench.scoring.bundle import EvalProtocol
    from hdbench.task import get_spec

    return get_spec(job.config.task), EvalProtocol(n_trials=job.eval_trials, seed=job.seed)


@functools.lru_cache(maxsize=4)
def _teacher_bundle(teacher: str, spec, protocol):
    """The teacher's bundle, kept per worker process (its measurements are computed once)."""
    from hdbench.scoring.bundle import Bundle
    from hdbench.training.recordings import load_teacher

    return Bundle(load_teacher(teacher).system, spec, protocol, label=f"teacher {teacher}")


def prediction_r2(source: np.ndarray, target: np.ndarray, *, ridge: float = 1e-3) -> np.ndarray:
    """Cross-validated R² of each target column predicted linearly from ``source``.

    ``source`` [trials, samples, p] and ``target`` [trials, samples, q]; ridge regression on
    z-scored sources (penalty ``ridge`` x samples) with an intercept, fitted on even trials and
    tested on odd ones and the reverse. Returns [q]: the mean over both folds of
    1 − SSE/SST on the test trials (NaN for a column constant on a test fold).
    """
    folds = (np.arange(source.shape[0]) % 2 == 0, np.arange(source.shape[0]) % 2 == 1)
    scores = []
    for train, test in (folds, folds[::-1]):
        X = source[train].reshape(-1, source.shape[-1]).astype(np.float64)
        Y = target[train].reshape(-1, target.shape[-1]).astype(np.float64)
        Xt = source[test].reshape(-1, source.shape[-1]).astype(np.float64)
        Yt = target[test].reshape(-1, target.shape[-1]).astype(np.float64)
        mu, sd = X.mean(0), X.std(0)
        sd = np.where(sd > 1e-8, sd, 1.0)
        X, Xt = (X - mu) / sd, (Xt - mu) / sd
        y0 = Y.mean(0)
        beta = np.linalg.solve(X.T @ X + ridge * X.shape[0] * np.eye(X.shape[1]), X.T @ (Y - y0))
        sse = ((Xt @ beta + y0 - Yt) ** 2).sum(0)
        sst = ((Yt - Yt.mean(0)) ** 2).sum(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            scores.append(np.where(sst > 1e-12, 1.0 - sse / sst, np.nan))
    return np.mean(scores, axis=0)


def _similarity(student, teacher, recording, skip: int) -> dict:
    """Shape distance, CKA and prediction R² against a teacher subpopulation."""
    from hdbench.metrics import LinearMetric, cka
    from hdbench.scoring.measures import tuning_conditions

    S, T = tuning_conditions(student), tuning_conditions(teacher)
    s_rates = student.activity("test").rates[:, skip::5]
    t_rates = teacher.activity("test").rates[:, skip::5]
    metric = LinearMetric(alpha=1.0, score_method="angular")
    values = {}
    groups = {"unrecorded": recording.unrecorded(),
              "population": np.arange(recording.n_teacher_units)}
    for name, units in groups.items():
        if units.size == 0:
            continue
        values[f"{name}.shape_distance"] = _guard(_cv_shape, metric, S.splits,
                                                  T.splits[:, :, units])
        values[f"{name}.cka"] = _guard(cka, S.mean, T.mean[:, units], debiased=True)
        values[f"{name}.r2"] = float(np.nanmean(prediction_r2(s_rates, t_rates[..., units])))
    if recording.k:
        recorded = np.asarray(recording.teacher_units)
        values["recorded.r2"] = float(np.nanmean(prediction_r2(s_rates, t_rates[..., recorded])))
        target = teacher.activity("test").rates[:, skip:][..., recorded] * \
            np.asarray(recording.scale)
        mine = student.activity("test").rates[:, skip:][..., list(recording.student_units)]
        values["recorded.activity_mse"] = float(((mine - target) ** 2).mean())
    return values


def _cv_shape(metric, X, Y) -> float:
    """Shape distance fitted on one trial split and scored on the other, both ways averaged."""
    return 0.5 * (metric.fit_score(X[0], Y[0], X[1], Y[1])
                  + metric.fit_score(X[1], Y[1], X[0], Y[0]))


def _guard(compute: Callable[..., float], *args, **kwargs) -> float:
    """``compute(*args, **kwargs)``, or NaN when the measure is undefined for this system
    (an HdbenchError, e.g. a silent population)."""
    try:
        return float(compute(*args, **kwargs))
    except HdbenchError:
        return math.nan


def _structure(student, teacher) -> dict:
    import warnings

    from hdbench.analysis import CLASSES, class_counts
    from hdbench.scoring.connectivity_benchmarks import profile_correlation
    from hdbench.scoring.dynamics_benchmarks import silencing_agreement
    from hdbench.scoring.measures import unit_table
    from hdbench.scoring.tuning_benchmarks import cell_type_distance

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        values = {"type_fraction_distance": _guard(cell_type_distance, student, teacher),
                  "connectivity_profile_corr": _guard(profile_correlation, student, teacher),
                  "silencing_agreement": _guard(silencing_agreement, student, teacher)}
    table = unit_table(student)
    counts = class_counts(table)
    values.update({f"type_fraction.{c}": counts[c] / len(table) for c in CLASSES})
    return values


def _conditions(spec) -> dict:
    return {"speed2x": spec.replace(sigma=2.0 * spec.sigma),
            "long2x": spec.replace(n_steps=2 * spec.n_steps),
            "hold": spec.replace(sigma=0.0, zero_av_epochs=False, n_steps=4 * spec.n_steps)}


def _decode_error_deg(activity, trials) -> float:
    error = np.angle(np.exp(1j * (activity.decoded_heading() - trials.heading)))
    return float(np.degrees(np.sqrt((error[:, trials.spec.cue_steps:] ** 2).mean())))


def _task_measures(bundle, spec, n_trials: int, seed: int) -> dict:
    """NE and decode error on the test trials and on the held-out conditions."""
    from hdbench.task import make_trials
    from hdbench.training.losses import normalized_error

    trials, activity = bundle.trials("test"), bundle.activity("test")
    values = {"test_ne": normalized_error(activity.outputs, trials.targets, trials.mask),
              "decode_error_deg.test": _decode_error_deg(activity, trials)}
    for k, (name, s) in enumerate(_conditions(spec).items()):
        n = max(2, n_trials // 4) if name == "hold" else n_trials
        held = make_trials(s, n, [GENERALISATION_STREAM, seed, k])
        act = bundle.system.simulate(held, seed=seed)
        values[f"generalisation_ne.{name}"] = normalized_error(act.outputs, held.targets,
                                                               held.mask)
        values[f"decode_error_deg.{name}"] = _decode_error_deg(act, held)
    return values


@functools.lru_cache(maxsize=4)
def teacher_measures(teacher: str, spec, protocol, n_trials: int) -> dict:
    """The teacher's own task measures and cell-type fractions (the header's reference)."""
    from hdbench.analysis import CLASSES, class_counts
    from hdbench.scoring.measures import unit_table

    bundle = _teacher_bundle(teacher, spec, protocol)
    values = _task_measures(bundle, spec, n_trials, protocol.seed)
    counts = class_counts(unit_table(bundle))
    values.update({f"type_fraction.{c}": counts[c] / bundle.n_units for c in CLASSES})
    return values


def evaluate_student(job: EvalJob) -> dict:
    """Every measure of the module doc for one student: ``{"values", "teacher"}``."""
    from hdbench.runs import load_model
    from hdbench.scoring.bundle import Bundle
    from hdbench.training.recordings import load_teacher, recording_for

    config = job.config
    spec, protocol = _spec_and_protocol(job)
    recording = recording_for(config, load_teacher(config.teacher))
    student = Bundle(load_model(job.path), spec, protocol,
                     label=f"student p={config.record_fraction:g}")
    teacher = _teacher_bundle(config.teacher, spec, protocol)
    values = _similarity(student, teacher, recording, spec.cue_steps)
    values.update(_structure(student, teacher))
    values.update(_task_measures(student, spec, job.generalisation_trials, job.seed))
    return {"values": values,
            "teacher": teacher_measures(config.teacher, spec, protocol,
                                        job.generalisation_trials),
            "recording": recording.to_dict()}


# -- the driver ----------------------------------------------------------------------------------

@dataclass
class Student:
    record_fraction: float
    seed: int
    config: TrainConfig
    path: Path | None = None


@dataclass
class ExperimentRun:
    """What :func:`run_sparse_recordings` did."""

    table: object = None  # tidy DataFrame (COLUMNS)
    summary: object = None  # per-p mean ± SD DataFrame
    path: Path | None = None
    report: object = None  # hdbench.scoring.runner.Report

    @property
    def failures(self) -> list:
        return self.report.failures if self.report is not None else []

    @property
    def planned(self) -> list:
        return self.report.planned if self.report is not None else []


def _check_fractions(fractions) -> tuple[float, ...]:
    fractions = tuple(float(p) for p in fractions)
    bad = [p for p in fractions if not 0.0 <= p <= 1.0]
    if bad or not fractions:
        raise HdbenchError(f"record fractions must lie in [0, 1]; got {list(fractions)}")
    return tuple(sorted(set(fractions)))


def run_sparse_recordings(teacher: str = "fly", *, quick: bool = False,
                          seeds: Sequence[int] | None = None,
                          fractions: Sequence[float] | None = None, updates: int | None = None,
                          out_dir="results", runner=None, log: Callable[[str], None] = print,
                          **runner_options) -> ExperimentRun:
    """Train the students of every (p, seed), measure them, write the tidy CSV, print a summary.

    Parameters
    ----------
    teacher : str
        Reference circuit name or finished run directory.
    quick : bool
        :data:`QUICK_RECORD_FRACTIONS`, :data:`QUICK_SEEDS`, :data:`QUICK_UPDATES` updates and
        fewer evaluation trials.
    seeds, fractions, updates : optional
        Override the seeds, the recorded fractions p and the training length.
    out_dir : path
        The CSV goes to ``<out_dir>/experiments/sparse-recordings-<teacher>.csv``.
    runner : Runner, optional
        Or ``runner_options`` for a new one (``store``, ``jobs``, ``dask_scheduler``, ``force``,
        ``retry_failed``, ``dry_run``, ``progress``).
    """
    from hdbench.atomic import check_out_dir
    from hdbench.scoring.runner import Runner
    from hdbench.training.recordings import load_teacher

    out_dir = check_out_dir(out_dir)
    runner = runner or Runner(log=log, **runner_options)
    resolved = load_teacher(teacher)
    fractions = _check_fractions(fractions if fractions is not None else
                                 (QUICK_RECORD_FRACTIONS if quick else RECORD_FRACTIONS))
    seeds = tuple(dict.fromkeys(int(s) for s in (seeds if seeds is not None else
                                                 (QUICK_SEEDS if quick else SEEDS))))
    if not seeds:
        raise HdbenchError("give at least one seed")
    n_units = student_units(teacher)
    if n_units < resolved.n_units and max(fractions) * resolved.n_units > n_units:
        raise HdbenchError(f"students of {teacher!r} have {n_units} units, fewer than the "
                           f"{resolved.n_units} teacher neurons recorded at p = 1")
    eval_trials = QUICK_EVAL_TRIALS if quick else EVAL_TRIALS
    gen_trials = QUICK_GENERALISATION_TRIALS if quick else GENERALISATION_TRIALS
    students = [Student(p, s, student_config(teacher, p, s, quick=quick, updates=updates))
                for p in fractions for s in seeds]
    outcome = ExperimentRun()

    def label(st: Student) -> str:
        return f"{teacher} p={st.record_fraction:g} seed {st.seed}"

    found = runner.train([(label(st), st.config, None) for st in students])
    requests = []
    for st in students:
        st.path = found.get(label(st))
        if st.path is None:
            if runner.dry_run:
                runner.report.planned.append(f"measure {label(st)} (after training)")
            continue
        requests.append(_eval_request(EvalJob(st.config, str(st.path), eval_trials,
                                              gen_trials), f"measure {label(st)}"))
    runner.measure(requests, desc=f"measure students of {teacher}")
    outcome.report = runner.report
    if runner.dry_run:
        runner.finish()
        return outcome
    outcome.table, teacher_values, recordings = _collect(runner, students, teacher, eval_trials,
                                                         gen_trials)
    outcome.summary = summarise(outcome.table)
    header = _provenance(teacher, resolved, quick, fractions, seeds, students, eval_trials,
                         gen_trials, teacher_values, recordings)
    outcome.path = write_table(outcome.table, header, out_dir, teacher)
    log(format_summary(outcome.summary, teacher, teacher_values))
    log(f"{len(outcome.table)} rows -> {outcome.path}")
    runner.finish()
    return outcome


def _eval_request(job: EvalJob, label: str):
    from hdbench.scoring.runner import MeasureRequest

    context = {"config": job.config.to_dict(), "run_hash": job.config.run_hash(),
               "protocol": {"eval_trials": job.eval_trials,
                            "generalisation_trials": job.generalisation_trials,
                            "seed": job.seed}}
    return MeasureRequest(STORE_ID, VERSION, job.key(), evaluate_student, job, label, context)


def _collect(runner, students, teacher, eval_trials, gen_trials):
    import pandas as pd

    rows, teacher_values, recordings = [], {}, {}
    for st in students:
        if st.path is None:
            continue
        job = EvalJob(st.config, str(st.path), eval_trials, gen_trials)
        record = runner.measure_record(_eval_request(job, ""))
        if record is None:
            continue
        teacher_values = record.get("teacher") or teacher_values
        recordings[(st.record_fraction, st.seed)] = record.get("recording", {})
        for measure, value in sorted(record["values"].items()):
            if value is None or not math.isfinite(value):
                continue
            rows.append({"teacher": teacher, "record_fraction": st.record_fraction,
                         "seed": st.seed, "measure": measure, "value": float(value)})
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    return table, teacher_values, recordings


def summarise(table):
    """Per (p, measure): mean, SD over seeds and the number of seeds."""
    import pandas as pd

    if table.empty:
        return pd.DataFrame(columns=["record_fraction", "measure", "mean", "sd", "n"])
    grouped = table.groupby(["record_fraction", "measure"])["value"]
    out = grouped.agg(mean="mean", sd="std", n="count").reset_index()
    return out


def format_summary(summary, teacher: str, teacher_values: dict | None = None,
                   measures: Sequence[str] = SUMMARY_MEASURES) -> str:
    """A per-p table of mean ± SD over seeds for the main measures."""
    if summary is None or summary.empty:
        return f"sparse recordings of {teacher}: no measurements"
    present = [m for m in measures if m in set(summary["measure"])]
    short = {m: m.replace("generalisation_ne.", "gen_ne.").replace("unrecorded.", "unrec.")
             .replace("population.", "pop.").replace("_distance", "_dist")
             .replace("connectivity_profile_corr", "conn_corr")
             .replace("silencing_agreement", "silencing") for m in present}
    lines = [f"sparse recordings of {teacher}: mean ± SD over seeds"]
    header = ["p", "n"] + [short[m] for m in present]
    rows = []
    for p, group in summary.groupby("record_fraction"):
        by = group.set_index("measure")
        n = int(by["n"].max())
        cells = [f"{p:g}", str(n)]
        for m in present:
            if m in by.index:
                sd = by.loc[m, "sd"]
                cells.append(f"{by.loc[m, 'mean']:.3f}±{0.0 if not np.isfinite(sd) else sd:.3f}")
            else:
                cells.append("—")
        rows.append(cells)
    if teacher_values:
        rows.append(["teacher", "", *[f"{teacher_values[m]:.3f}" if m in teacher_values
                                      else "" for m in present]])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines.append("  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def _provenance(teacher, resolved, quick, fractions, seeds, students, eval_trials, gen_trials,
                teacher_values, recordings) -> dict:
    from datetime import UTC, datetime

    from hdbench._version import __version__
    from hdbench.store import git_state
    from hdbench.training.recordings import RATE_PEAK

    git = git_state()
    config = students[0].config.to_dict()
    schedule = {k: config[k] for k in ("updates", "batch_size", "lr", "input_lr_factor",
                                       "lr_schedule", "activity_weight", "bank_trials",
                                       "bank_refresh", "noise_std")}
    header = {
        "experiment": f"{EXPERIMENT} (Salatiello & Giese 2020), measurements v{VERSION}",
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "hdbench_version": __version__,
        "git_commit": (git["commit"] + (" (dirty)" if git["dirty"] else "")) if git else "unknown",
        "quick": quick,
        "teacher": f"{teacher} ({resolved.kind}, {resolved.n_units} neurons, task "
                   f"{resolved.task}, noise-free, instance 0)",
        "record_fractions": ", ".join(f"{p:g}" for p in fractions),
        "recorded_neurons_k": ", ".join(
            f"{p:g}:{next((r['k'] for (q, _), r in recordings.items() if q == p), '?')}"
            for p in fractions),
        "seeds": ", ".join(str(s) for s in seeds),
        "student": f"ctrnn, {config['model_options']['n_units']} units; recorded neuron i -> "
                   f"student unit i; teacher rates scaled per neuron to peak {RATE_PEAK}",
        "training": ", ".join(f"{k}={v}" for k, v in schedule.items()),
        "evaluation": f"{eval_trials} test trials of {resolved.task}; {gen_trials} trials per "
                      f"held-out condition (hold: a quarter, 4x long); conditions "
                      f"{', '.join(CONDITIONS)}",
        "note": "unrecorded.* rows are absent at record_fraction 1 (no unrecorded neurons); "
                "undefined measures are left out",
    }
    if teacher_values:
        header["teacher_values"] = ", ".join(f"{k}={v:.4g}" for k, v in
                                             sorted(teacher_values.items()))
    return header


def table_path(out_dir, teacher: str) -> Path:
    label = Path(teacher).name if teacher not in STUDENT_UNITS else teacher
    return Path(out_dir) / "experiments" / f"{EXPERIMENT}-{label}.csv"


def write_table(table, header: dict, out_dir, teacher: str) -> Path:
    """The tidy CSV and its provenance sidecar (:func:`hdbench.tables.write_tidy`)."""
    from hdbench.tables import write_tidy

    return write_tidy(table_path(out_dir, teacher), table, header, COLUMNS)


def read_table(path):
    """The tidy table back from the CSV."""
    import pandas as pd

    return pd.read_csv(path, comment="#")
