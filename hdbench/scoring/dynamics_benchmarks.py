"""Dynamics-family benchmarks: attractor structure, perturbation responses, dynamical similarity.

Slow points and silencing follow :mod:`hdbench.analysis.dynamics` on the reference's task, with
the small sizes of :data:`hdbench.scoring.measures.EFFORT` under the quick protocol. Since
version 2 a silencing effect counts only when it is specific: beyond the range of matched
controls that silence as many random HD-tuned units (issue 17). Slow points
need a vector field (CTRNNs and the reference circuits have one); for other systems the ring
coverage is not computable (missing coverage), not a failure.
"""

from __future__ import annotations

import numpy as np

from hdbench.errors import NotComputableError
from hdbench.scoring.benchmark import Benchmark, register
from hdbench.scoring.measures import dmd_model, has_vector_field, silencing, slow_points
from hdbench.scoring.task_benchmarks import CUEVA_2020

SUSSILLO_2013 = ("Sussillo & Barak (2013) Opening the black box: low-dimensional dynamics in "
                 "high-dimensional recurrent neural networks. Neural Comput 25:626-649.")
OSTROW_2023 = ("Ostrow, Eisen, Kozachkov & Fiete (2023) Beyond geometry: comparing the "
               "temporal structure of computation in neural circuits with dynamical similarity "
               "analysis. NeurIPS.")


def ring_coverage(subject, reference) -> float:
    """Fraction of heading bins holding a slow point of the subject (1 = a full ring)."""
    if not has_vector_field(subject):
        raise NotComputableError("not computable: the system has no vector field (slow points "
                                 "need a CTRNN or vector_field(a))")
    return float(slow_points(subject)["ring_coverage"])


def silencing_agreement(subject, reference) -> float:
    """Fraction of the silencing effects the reference shows that the subject shows too.

    Only the reference's positive checks count: a network without a bump or without
    integration "agrees" trivially with every effect the reference lacks (e.g. a bump that
    does not re-form), which would reward an untrained network.
    """
    ref, sub = silencing(reference), silencing(subject)
    shown = [key for key, value in ref.items() if value is True]
    if not shown:
        raise NotComputableError(f"not applicable: reference {reference.label!r} shows none "
                                 "of the silencing effects")
    return float(np.mean([sub.get(key) is True for key in shown]))


def dsa_distance(subject, reference) -> float:
    """2-Wasserstein distance between the DMD eigenvalues of the two systems' trajectories."""
    from hdbench.metrics import compare_dmd

    return compare_dmd(dmd_model(subject), dmd_model(reference), method="wasserstein")


DYNAMICS_BENCHMARKS = (
    Benchmark(family="dynamics", name="ring-coverage", score_fn=ring_coverage,
              higher_is_better=True, version=2,
              measurement="slow points (q < 1% of the median speed on task trajectories) found "
                          "from states spread over heading, by Levenberg-Marquardt descent",
              comparison="the system's own fraction of heading bins holding a slow point "
                         "(ceiling: the reference circuit's)",
              citation=SUSSILLO_2013),
    Benchmark(family="dynamics", name="silencing", score_fn=silencing_agreement,
              higher_is_better=True, version=2,
              measurement="silencing signature: drift at zero AV with CW / CCW shifters "
                          "silenced, integration with all shifters silenced, loss of the bump "
                          "with compass units silenced, each counted only when beyond the "
                          "5-95 % range of as many random HD-tuned units silenced; recovery "
                          "of the bump",
              comparison="fraction of the effects the reference shows that the system shows",
              citation=CUEVA_2020),
    Benchmark(family="dynamics", name="dsa", score_fn=dsa_distance, higher_is_better=False,
              measurement="HAVOK/DMD operator (5 delays, rank 10, AV as control input) of the "
                          "test trajectories on their top 10 principal components",
              comparison="2-Wasserstein distance between the operators' eigenvalues",
              citation=OSTROW_2023),
)

for _bench in DYNAMICS_BENCHMARKS:
    register(_bench, replace=True)
