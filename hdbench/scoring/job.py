"""One scoring job: every requested benchmark of one reference for one subject.

The subject and the reference are simulated at most once per trial set (a shared
:class:`~hdbench.scoring.bundle.Bundle` each), however many benchmarks read them. The job is a
pure function of its frozen :class:`ScoreJob`; it returns values and writes nothing.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass

from hdbench.scoring.benchmark import Benchmark
from hdbench.scoring.bundle import Bundle, EvalProtocol, task_for_reference
from hdbench.scoring.subjects import ReferenceSpec, Subject


@dataclass(frozen=True)
class ScoreJob:
    """Score ``subject`` on ``benchmarks`` (all of ``reference``) under ``protocol``.

    The reference side of every comparison is instance ``reference_instance`` of the circuit.
    """

    subject: Subject
    reference: ReferenceSpec
    benchmarks: tuple[Benchmark, ...]
    protocol: EvalProtocol = EvalProtocol()
    reference_instance: int = 0


def error_info(err: BaseException) -> dict:
    """JSON-ready description of an exception: type, message, traceback text."""
    return {"type": type(err).__name__, "message": str(err),
            "traceback": "".join(traceback.format_exception(err))}


def run_score_job(job: ScoreJob) -> dict:
    """``{"values": {id: {"value", "error"}}, "failures": {id: error_info}, "task", ...}``.

    A benchmark that raises is reported under ``failures`` and does not stop the others;
    failing to build the subject or the reference raises (the whole job fails).
    """
    reference_system = job.reference.load(job.reference_instance)
    spec = task_for_reference(job.reference.name, reference_system)
    reference = Bundle(reference_system, spec, job.protocol,
                       label=f"{job.reference.name} instance {job.reference_instance}")
    subject = Bundle(job.subject.load(), spec, job.protocol, label=job.subject.describe())
    values, failures = {}, {}
    for bench in job.benchmarks:
        if bench.reference != job.reference.name:
            failures[bench.id] = {"type": "HdbenchError", "traceback": "",
                                  "message": f"benchmark {bench.id} does not belong to "
                                             f"reference {job.reference.name!r}"}
            continue
        try:
            value, error = bench(subject, reference)
        except Exception as err:  # recorded per benchmark; the others go on
            failures[bench.id] = error_info(err)
            continue
        values[bench.id] = {"value": value, "error": error}
    return {"values": values, "failures": failures, "task": spec.name,
            "simulations": {"subject": subject.n_simulations,
                            "reference": reference.n_simulations}}
