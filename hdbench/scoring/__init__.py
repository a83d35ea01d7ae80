"""Scoring: benchmarks = (reference circuit, measurement, comparison), ceilings, floors, Scores.

Importing this package registers the built-in benchmarks (the task family).
"""

from hdbench.scoring import task_benchmarks as _task_benchmarks  # noqa: F401 - registers
from hdbench.scoring.benchmark import (
    FAMILIES,
    Benchmark,
    all_benchmarks,
    get,
    register,
    unregister,
)
from hdbench.scoring.bundle import QUICK_PROTOCOL, TRIAL_SETS, Bundle, EvalProtocol
from hdbench.scoring.job import ScoreJob, run_score_job
from hdbench.scoring.score import (
    Aggregate,
    DegenerateScoreError,
    Score,
    aggregate,
    format_score,
    normalise,
)
from hdbench.scoring.subjects import (
    ReferenceSpec,
    ReferenceSubject,
    TrainedSubject,
    UntrainedSubject,
    subject_key,
)

__all__ = [
    "FAMILIES", "QUICK_PROTOCOL", "TRIAL_SETS", "Aggregate", "Benchmark", "Bundle",
    "DegenerateScoreError", "EvalProtocol", "ReferenceSpec", "ReferenceSubject", "Score",
    "ScoreJob", "TrainedSubject", "UntrainedSubject", "aggregate", "all_benchmarks",
    "format_score", "get", "normalise", "register", "run_score_job", "subject_key",
    "unregister",
]
