"""Representational and dynamical similarity between systems (models and reference circuits).

Metric objects share netrep's shape — ``fit(X, Y)``, ``score(X, Y)`` (a distance, lower = more
similar), ``fit_score`` — and are scikit-learn estimators (``clone``, ``get_params``,
``set_params``); :func:`pairwise_distances` ``(metric, Xs)`` compares whole sets:

- :class:`LinearMetric` (Procrustes … CCA by partial whitening) and :class:`PermutationMetric`
  (:mod:`~hdbench.metrics.shape`; Williams et al. 2021);
- :class:`CKA` (angular CKA; :mod:`~hdbench.metrics.kernel_alignment`, Kornblith et al. 2019);
- :class:`RSA` (the angle between RDMs; :mod:`~hdbench.metrics.rsa`);
- :class:`DSA` (dynamical similarity; :mod:`~hdbench.metrics.dynamics`, Ostrow et al. 2023).

The free functions stay the thin core: :func:`cka` / :func:`cka_distance`, ``rsa.rdm`` /
``rsa.compare``, :func:`havok_dmd` / :func:`compare_dmd` / :func:`dynamical_similarity`.
:mod:`~hdbench.metrics.conditions` turns an Activity into trial-split tuning matrices,
trajectories and aligned dimensions.

All metrics compute in float64 and raise :class:`~hdbench.errors.HdbenchError` on degenerate
input (NaN/inf, constant systems, mismatched condition counts) instead of returning NaN.
"""

from hdbench.metrics import conditions, rsa
from hdbench.metrics._base import Metric, neg_distance_scorer, pairwise_distances
from hdbench.metrics.dynamics import DSA, compare_dmd, dynamical_similarity, havok_dmd
from hdbench.metrics.kernel_alignment import CKA, cka, cka_distance
from hdbench.metrics.rsa import RSA
from hdbench.metrics.shape import LinearMetric, PermutationMetric

__all__ = [
    "Metric",
    "LinearMetric",
    "PermutationMetric",
    "CKA",
    "RSA",
    "DSA",
    "pairwise_distances",
    "neg_distance_scorer",
    "cka",
    "cka_distance",
    "rsa",
    "dynamical_similarity",
    "havok_dmd",
    "compare_dmd",
    "conditions",
]
