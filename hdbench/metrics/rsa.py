"""Representational similarity analysis: dissimilarity matrices (RDMs) and their comparison.

An RDM holds the dissimilarity of every pair of conditions (e.g. head-direction bins) in one
system; two systems are compared through their RDMs, so unit counts and unit identities never
need to match. For HD systems the RDM as a function of the heading difference is directly
interpretable (a ring gives a cosine-shaped band).

Conventions follow rsatoolbox 0.3.2 and give the same numbers (tests check this when it is
installed): Euclidean-type RDMs are divided by the number of units, so systems of different
sizes get comparable scales. Method names map to rsatoolbox's as
``squared_euclidean`` = ``euclidean``, ``cv_euclidean`` = ``crossnobis`` without noise,
``pearson`` = ``corr``, ``tau_a`` = ``tau-a``, ``whitened_cosine`` = ``cosine_cov``.

Usage::

    from hdbench.metrics import rsa
    D_model = rsa.rdm(model_tuning, "correlation")
    D_ref = rsa.rdm(ref_splits, "cv_euclidean")    # [splits, conditions, units]
    rsa.compare(D_model, D_ref, "whitened_cosine")

:class:`RSA` wraps the pair as a metric object (``fit`` / ``score`` /
:func:`~hdbench.metrics.pairwise_distances`, scikit-learn parameters), scored as the angle
``arccos(compare(...))``.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import kendalltau, rankdata

from hdbench.errors import HdbenchError
from hdbench.metrics._base import Metric
from hdbench.metrics._validate import angle, as_array, as_matrix, check_choice

RDM_METHODS = ("correlation", "euclidean", "squared_euclidean", "cv_euclidean", "crossnobis")
COMPARE_METHODS = ("pearson", "spearman", "tau_a", "cosine", "whitened_cosine")
_CROSS_VALIDATED = ("cv_euclidean", "crossnobis")


def rdm(patterns, method: str = "correlation", *, noise_precision=None) -> np.ndarray:
    """Representational dissimilarity matrix over conditions.

    Parameters
    ----------
    patterns : array
        ``[conditions, units]`` for ``correlation``, ``euclidean`` and ``squared_euclidean``;
        ``[splits, conditions, units]`` (>= 2 independent trial splits) for the cross-validated
        ``cv_euclidean`` and ``crossnobis``.
    method : str
        - ``"correlation"``: 1 - Pearson correlation of two condition patterns across units;
        - ``"squared_euclidean"``: ``||u_i - u_j||² / units``;
        - ``"euclidean"``: its square root (the RMS difference per unit);
        - ``"cv_euclidean"``: the unbiased squared Euclidean distance, averaged over folds
          ``(u_i - u_j)^(-f) · (u_i - u_j)^(f) / units`` where ``(f)`` is split f and ``(-f)``
          the mean of the other splits. Its expectation is the noise-free squared distance, so
          it can be negative;
        - ``"crossnobis"``: the same with a noise-precision matrix Λ,
          ``(u_i - u_j)^(-f) Λ (u_i - u_j)^(f)ᵀ / units``.
    noise_precision : array ``[units, units]``, required by (and only by) ``"crossnobis"``
        Symmetric inverse noise covariance, e.g. from residuals of the trial-averaged rates.

    Returns
    -------
    float64 array ``[conditions, conditions]``
        Symmetric, zero diagonal.

    Raises
    ------
    HdbenchError
        For an unknown method, NaN/inf, fewer than 2 conditions or splits, a condition
        pattern that is constant across units (``correlation``), or a bad ``noise_precision``.
    """
    check_choice(method, "RDM method", RDM_METHODS)
    if (method == "crossnobis") != (noise_precision is not None):
        raise HdbenchError(
            "noise_precision is required by method='crossnobis' and only by it "
            "(cv_euclidean is crossnobis with the identity)"
        )
    if method in _CROSS_VALIDATED:
        folds = as_array(patterns, "patterns", 3)
        if folds.shape[0] < 2 or folds.shape[1] < 2:
            raise HdbenchError(
                f"{method} needs patterns [splits >= 2, conditions >= 2, units]; "
                f"got shape {folds.shape}"
            )
        precision = None
        if noise_precision is not None:
            precision = _check_precision(noise_precision, folds.shape[2])
        return _symmetric(_crossvalidated(folds, precision))
    U = as_matrix(patterns, "patterns (2-D [conditions, units]; average the splits first)", 2)
    if method == "correlation":
        centred = U - U.mean(axis=1, keepdims=True)
        norms = np.linalg.norm(centred, axis=1)
        flat = norms <= 64 * np.finfo(float).eps * np.max(np.abs(U), axis=1)
        if np.any(flat):
            raise HdbenchError(
                f"condition(s) {np.flatnonzero(flat).tolist()} have the same rate in every unit; "
                "their correlation distance is undefined (use a Euclidean RDM)"
            )
        Z = centred / norms[:, None]
        return _symmetric(1.0 - Z @ Z.T)
    sq = _squared_distances(U, U) / U.shape[1]
    return _symmetric(np.sqrt(np.maximum(sq, 0.0)) if method == "euclidean" else sq)


def _check_precision(noise_precision, n_units: int) -> np.ndarray:
    P = as_array(noise_precision, "noise_precision", 2)
    if P.shape != (n_units, n_units):
        raise HdbenchError(f"noise_precision must be [{n_units}, {n_units}]; got {P.shape}")
    if not np.allclose(P, P.T, rtol=1e-10, atol=0.0):
        raise HdbenchError("noise_precision must be symmetric")
    return P


def _squared_distances(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``(a_i - a_j) · (b_i - b_j)`` for all condition pairs (both ``[conditions, units]``)."""
    cross = A @ B.T
    diag = np.diag(cross)
    return diag[:, None] + diag[None, :] - cross - cross.T


def _crossvalidated(folds: np.ndarray, precision: np.ndarray | None) -> np.ndarray:
    n_folds, _, n_units = folds.shape
    total = folds.sum(axis=0)
    out = np.zeros(folds.shape[1:2] * 2)
    for held_out in folds:
        rest = (total - held_out) / (n_folds - 1)
        out += _squared_distances(rest, held_out if precision is None else held_out @ precision)
    return out / (n_folds * n_units)


def _symmetric(D: np.ndarray) -> np.ndarray:
    D = 0.5 * (D + D.T)
    np.fill_diagonal(D, 0.0)
    return D


def _condensed(D, name: str) -> tuple[np.ndarray, int]:
    """Upper-triangle vector of a square RDM (or a vector already), and the condition count."""
    D = as_array(D, name, (1, 2))
    if D.ndim == 2:
        if D.shape[0] != D.shape[1] or D.shape[0] < 3:
            raise HdbenchError(f"{name} must be a square RDM of >= 3 conditions; got {D.shape}")
        if not np.allclose(D, D.T, rtol=1e-8, atol=1e-12):
            raise HdbenchError(f"{name} is not symmetric")
        return D[np.triu_indices(D.shape[0], k=1)], D.shape[0]
    n = int(round((1 + np.sqrt(1 + 8 * D.size)) / 2))
    if n * (n - 1) // 2 != D.size or n < 3:
        raise HdbenchError(
            f"{name} has {D.size} entries, not the upper triangle of a >= 3-condition RDM"
        )
    return D, n


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.clip(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)), -1.0, 1.0))


def _second_moment(v: np.ndarray, n: int) -> np.ndarray:
    """Double-centred second moment ``G = -H D H / 2`` of the RDM with upper triangle ``v``."""
    D = np.zeros((n, n))
    D[np.triu_indices(n, k=1)] = v
    D = D + D.T
    row = D.mean(axis=0)
    return -0.5 * (D - row[None, :] - row[:, None] + row.mean())


def _ties(v: np.ndarray) -> float:
    """Number of tied pairs in ``v``."""
    _, counts = np.unique(v, return_counts=True)
    return float(np.sum(counts * (counts - 1) / 2))


def compare(rdm1, rdm2, method: str = "whitened_cosine") -> float:
    """Similarity of two RDMs over the same conditions (higher = more similar; max 1).

    Parameters
    ----------
    rdm1, rdm2 : array ``[conditions, conditions]`` or their upper triangles (row-major)
    method : str
        - ``"pearson"``: Pearson correlation of the dissimilarities;
        - ``"spearman"``: Pearson correlation of their ranks (ties get the average rank);
        - ``"tau_a"``: Kendall's τ-a, (concordant - discordant) / number of pairs, with no tie
          correction — suited to model RDMs with tied values (Nili et al. 2014);
        - ``"cosine"``: cosine of the dissimilarity vectors;
        - ``"whitened_cosine"``: the whitened unbiased RDM cosine (WUC; Diedrichsen et al.
          2021) with an isotropic pattern covariance: the cosine of the double-centred second
          moments ``-H D H / 2``. On squared-Euclidean RDMs it equals linear CKA; it is the
          recommended comparison for cross-validated RDMs, whose values can be negative.

    Returns
    -------
    float in [-1, 1]

    Raises
    ------
    HdbenchError
        For NaN/inf, non-symmetric or differently sized RDMs, or an RDM for which the measure is
        undefined (constant for pearson/spearman/tau_a, all zero for the cosines).
    """
    check_choice(method, "RDM comparison method", COMPARE_METHODS)
    v1, n1 = _condensed(rdm1, "rdm1")
    v2, n2 = _condensed(rdm2, "rdm2")
    if n1 != n2:
        raise HdbenchError(f"RDMs cover different numbers of conditions: {n1} and {n2}")
    cosines = method in ("cosine", "whitened_cosine")
    for name, v in (("rdm1", v1), ("rdm2", v2)):
        if (not np.any(v)) if cosines else np.ptp(v) == 0.0:
            raise HdbenchError(
                f"the {method} comparison is undefined: {name} is "
                f"{'all zero' if cosines else 'constant'}"
            )
    if method == "cosine":
        return _cosine(v1, v2)
    if method == "whitened_cosine":
        return _cosine(_second_moment(v1, n1).ravel(), _second_moment(v2, n2).ravel())
    if method == "pearson":
        return _cosine(v1 - v1.mean(), v2 - v2.mean())
    if method == "spearman":
        r1, r2 = rankdata(v1), rankdata(v2)
        return _cosine(r1 - r1.mean(), r2 - r2.mean())
    pairs = v1.size * (v1.size - 1) / 2
    t1, t2 = _ties(v1), _ties(v2)
    # τ-b = (C - D) / sqrt((pairs - t1)(pairs - t2)) in O(N log N); τ-a divides by all pairs
    tau_b = kendalltau(v1, v2, variant="b").statistic
    return float(np.clip(tau_b * np.sqrt((pairs - t1) * (pairs - t2)) / pairs, -1.0, 1.0))


class RSA(Metric):
    """RSA as a metric object: ``score(X, Y) = arccos(compare(rdm(X), rdm(Y)))`` in [0, π].

    The angle is that between the RDM vectors after the comparison's own transform (centred
    for ``pearson``, ranked and centred for ``spearman``, double-centred second moments for
    ``whitened_cosine``); for ``tau_a`` it is the arccos of τ-a. The similarity itself is
    ``cos(score)``, or ``similarity_`` after ``fit``. Nothing is learned: ``score`` computes on
    the data it is given.

    Parameters
    ----------
    rdm_method : str
        An :func:`rdm` method other than ``"crossnobis"`` (whose noise precision belongs to one
        system: call :func:`rdm` and :func:`compare` directly). The cross-validated
        ``"cv_euclidean"`` takes systems as ``[splits, conditions, units]``, the others as
        ``[conditions, units]``.
    compare_method : str
        A :func:`compare` method.

    Attributes
    ----------
    rdm_x_, rdm_y_ : float64 ``[conditions, conditions]``
        The RDMs of the fit data.
    similarity_ : float
        Their comparison.
    """

    def __init__(self, rdm_method: str = "correlation", compare_method: str = "whitened_cosine"):
        self.rdm_method = rdm_method
        self.compare_method = compare_method

    def _validate_params(self) -> None:
        if self.rdm_method == "crossnobis":
            raise HdbenchError(
                "RSA(rdm_method='crossnobis') would need each system's noise precision; use "
                "rsa.rdm(..., noise_precision=...) and rsa.compare, or rdm_method='cv_euclidean'"
            )
        check_choice(self.rdm_method, "rdm_method",
                     tuple(m for m in RDM_METHODS if m not in ("crossnobis",)))
        check_choice(self.compare_method, "compare_method", COMPARE_METHODS)

    def _check_system(self, X, name: str) -> np.ndarray:
        if self.rdm_method in _CROSS_VALIDATED:
            return as_array(X, name, 3)
        return as_matrix(X, f"{name} (2-D [conditions, units] for rdm_method="
                            f"{self.rdm_method!r})", 2)

    def _conditions(self, X: np.ndarray) -> int:
        return X.shape[-2]

    def _prepare(self, X: np.ndarray, name: str) -> np.ndarray:
        return rdm(X, self.rdm_method)

    def _between(self, px: np.ndarray, py: np.ndarray) -> float:
        return angle(compare(px, py, self.compare_method))

    def fit(self, X, Y):
        """Compute and keep the RDMs of ``X`` and ``Y`` and their comparison."""
        self._validate_params()
        X, Y = self._check_pair(X, Y)
        self.rdm_x_, self.rdm_y_ = self._prepare(X, "X"), self._prepare(Y, "Y")
        self.similarity_ = compare(self.rdm_x_, self.rdm_y_, self.compare_method)
        return self

    def score(self, X, Y) -> float:
        """The angle between the RDMs of ``X`` and ``Y`` (0 = identical RDMs up to scale)."""
        self._validate_params()
        X, Y = self._check_pair(X, Y)
        return self._between(self._prepare(X, "X"), self._prepare(Y, "Y"))

    def fit_score(self, X, Y) -> float:
        """``fit(X, Y)`` and ``arccos(similarity_)``."""
        return angle(self.fit(X, Y).similarity_)
