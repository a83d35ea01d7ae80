"""Scoring: benchmarks = (reference circuit, measurement, comparison), ceilings, floors, Scores.

Importing this package registers the built-in benchmarks of every family (task, tuning,
representation, connectivity, dynamics, properties).
"""

# importing these modules registers their benchmarks
from hdbench.scoring import connectivity_benchmarks as _connectivity  # noqa: F401
from hdbench.scoring import dynamics_benchmarks as _dynamics  # noqa: F401
from hdbench.scoring import property_benchmarks as _properties  # noqa: F401
from hdbench.scoring import representation_benchmarks as _representation  # noqa: F401
from hdbench.scoring import task_benchmarks as _task  # noqa: F401
from hdbench.scoring import tuning_benchmarks as _tuning  # noqa: F401
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
    score_key,
)

__all__ = [
    "FAMILIES", "QUICK_PROTOCOL", "TRIAL_SETS", "Aggregate", "Benchmark", "Bundle",
    "DegenerateScoreError", "EvalProtocol", "ReferenceSpec", "ReferenceSubject", "Score",
    "ScoreJob", "TrainedSubject", "UntrainedSubject", "aggregate", "all_benchmarks",
    "format_score", "get", "normalise", "register", "run_score_job", "score_key",
    "unregister",
]
