"""Representational and dynamical similarity between systems (models and reference circuits).

- :mod:`~hdbench.metrics.shape`: :class:`LinearMetric` (Procrustes … CCA by partial whitening),
  :class:`PermutationMetric` and :func:`pairwise_distances` (Williams et al. 2021);
- :mod:`~hdbench.metrics.kernel_alignment`: :func:`cka` (linear/RBF, biased/debiased) and
  :func:`cka_distance` (arccos CKA);
- :mod:`~hdbench.metrics.rsa`: RDMs and their comparisons (``rsa.rdm``, ``rsa.compare``);
- :mod:`~hdbench.metrics.dynamics`: :func:`dynamical_similarity` (DSA, Ostrow et al. 2023);
- :mod:`~hdbench.metrics.conditions`: Activity → trial-split tuning matrices, trajectories,
  dimensionality alignment.

All metrics compute in float64 and raise :class:`~hdbench.errors.HdbenchError` on degenerate
input (NaN/inf, constant systems, mismatched condition counts) instead of returning NaN.
"""

from hdbench.metrics import conditions, rsa
from hdbench.metrics.dynamics import compare_dmd, dynamical_similarity, havok_dmd
from hdbench.metrics.kernel_alignment import cka, cka_distance
from hdbench.metrics.shape import LinearMetric, PermutationMetric, pairwise_distances

__all__ = [
    "LinearMetric",
    "PermutationMetric",
    "pairwise_distances",
    "cka",
    "cka_distance",
    "rsa",
    "dynamical_similarity",
    "havok_dmd",
    "compare_dmd",
    "conditions",
]
