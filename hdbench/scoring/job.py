"""One scoring job: every requested benchmark of one reference for one subject.

The subject and the reference are simulated at most once per trial set (a shared
:class:`~hdbench.scoring.bundle.Bundle` each), however many benchmarks read them. The job is a
pure function of its frozen :class:`ScoreJob`; it returns values and writes nothing.

BLAS runs single-threaded inside a job: its matrices are small (units x conditions), and
multi-threaded OpenBLAS next to other busy processes is up to 10x slower (an SVD of 4000 x 200
took 2 s with 2 threads on a loaded 2-core machine, 0.2 s with one).

The reference side of a job (instance ``reference_instance`` of the circuit on the protocol's
trials) is the same for every subject, so its bundle is kept per process
(:func:`reference_bundle`): its simulations and derived measurements (cell types, silencing,
slow points, ...) are computed once per process, not once per subject.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from threadpoolctl import threadpool_limits

from hdbench.engine import error_info
from hdbench.errors import NotComputableError
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


@functools.lru_cache(maxsize=4)
def reference_bundle(reference: ReferenceSpec, instance: int, protocol: EvalProtocol) -> Bundle:
    """The bundle of instance ``instance`` of ``reference``, shared by this process's jobs."""
    system = reference.load(instance)
    return Bundle(system, task_for_reference(reference.name, system), protocol,
                  label=f"{reference.name} instance {instance}")


def run_score_job(job: ScoreJob) -> dict:
    """``{"values": {id: {"value", "error"}}, "failures": {id: error_info},
    "not_computable": {id: reason}, "task", ...}``.

    A benchmark that raises is reported under ``failures`` and does not stop the others; one
    that raises :class:`~hdbench.errors.NotComputableError` (e.g. recorded activity cannot be
    re-simulated) is reported under ``not_computable``. Failing to build the subject or the
    reference raises (the whole job fails).
    """
    reference = reference_bundle(job.reference, job.reference_instance, job.protocol)
    spec = reference.spec
    subject = Bundle(job.subject.load(), spec, job.protocol, label=job.subject.describe())
    simulated = reference.n_simulations
    values, failures, not_computable = {}, {}, {}
    with threadpool_limits(limits=1, user_api="blas"):
        for bench in job.benchmarks:
            if bench.reference != job.reference.name:
                failures[bench.id] = {"type": "HdbenchError", "traceback": "",
                                      "message": f"benchmark {bench.id} does not belong to "
                                                 f"reference {job.reference.name!r}"}
                continue
            try:
                value, error = bench(subject, reference)
            except NotComputableError as err:
                not_computable[bench.id] = str(err)
                continue
            except Exception as err:  # recorded per benchmark; the others go on
                failures[bench.id] = error_info(err)
                continue
            values[bench.id] = {"value": value, "error": error}
    return {"values": values, "failures": failures, "not_computable": not_computable,
            "task": spec.name,
            "simulations": {"subject": subject.n_simulations,
                            "reference": reference.n_simulations - simulated}}
