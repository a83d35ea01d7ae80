"""Centred kernel alignment (CKA; Kornblith et al. 2019) and its angular form.

CKA is the cosine between the centred Gram matrices of two systems over the same conditions:
``HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))``. It is invariant to rotations and isotropic
scaling of either system (not to general linear maps).

Two estimators of HSIC are offered:

- biased (Gretton et al. 2005), the classic CKA: always in [0, 1], but inflated for few
  conditions — independent noise of 60 conditions × 40 units already scores about 0.4;
- debiased (the unbiased U-statistic HSIC of Song et al. 2012, i.e. Kornblith et al.'s
  ``debiased=True``): near 0 for independent systems; it can be slightly negative.

``arccos(CKA)`` (:func:`cka_distance`) is a distance; ``1 - CKA`` is not a metric.
:class:`CKA` is the same distance as a metric object (``fit`` / ``score`` /
:func:`~hdbench.metrics.pairwise_distances`, scikit-learn parameters); :func:`cka` stays the
thin core.
"""

from __future__ import annotations

import numpy as np

from hdbench.errors import HdbenchError
from hdbench.metrics._base import Metric
from hdbench.metrics._validate import (
    angle,
    as_matrix,
    check_bool,
    check_choice,
    is_constant,
    same_rows,
)

KERNELS = ("linear", "rbf")


def _centred(X: np.ndarray, name: str) -> np.ndarray:
    centred = X - X.mean(axis=0)
    if is_constant(centred, X):
        raise HdbenchError(
            f"{name} is constant across conditions (all-zero or constant activity); "
            "CKA is undefined for it"
        )
    return centred


def _gram(Xc: np.ndarray, kernel: str, bandwidth: float, name: str) -> np.ndarray:
    """Gram matrix ``[conditions, conditions]`` of centred data."""
    gram = Xc @ Xc.T
    if kernel == "linear":
        return gram
    sq = np.diag(gram)
    sqdist = np.maximum(sq[:, None] + sq[None, :] - 2.0 * gram, 0.0)
    np.fill_diagonal(sqdist, 0.0)
    median = float(np.median(sqdist))
    if median <= 0.0:
        raise HdbenchError(
            f"{name}: the median squared distance between conditions is 0 (more than half of "
            "the condition pairs are identical), so the RBF bandwidth rule fails"
        )
    return np.exp(-sqdist / (2.0 * bandwidth**2 * median))


def _double_centred(K: np.ndarray) -> np.ndarray:
    """H K H with H the centring matrix (biased HSIC uses <HKH, HLH>)."""
    row = K.mean(axis=0)
    return K - row[None, :] - row[:, None] + row.mean()


def _u_centred(K: np.ndarray) -> np.ndarray:
    """Song et al.'s U-centring: <U(K), U(L)> / (m (m - 3)) is the unbiased HSIC."""
    m = K.shape[0]
    K0 = K.copy()
    np.fill_diagonal(K0, 0.0)
    rows = K0.sum(axis=1)
    out = K0 - rows[:, None] / (m - 2) - rows[None, :] / (m - 2) + rows.sum() / ((m - 1) * (m - 2))
    np.fill_diagonal(out, 0.0)
    return out


def _check_settings(kernel, debiased, bandwidth) -> None:
    check_choice(kernel, "kernel", KERNELS)
    check_bool(debiased, "debiased")
    if (isinstance(bandwidth, bool) or not isinstance(bandwidth, (int, float, np.number))
            or not (np.isfinite(bandwidth) and bandwidth > 0)):
        raise HdbenchError(f"bandwidth must be a positive number; got {bandwidth!r}")


def _centred_kernel(X: np.ndarray, kernel: str, debiased: bool, bandwidth: float,
                    name: str) -> tuple[np.ndarray, float]:
    """The centred (debiased: U-centred) Gram matrix of ``X`` and its squared norm: CKA is the
    cosine of two of them."""
    centre = _u_centred if debiased else _double_centred
    Kt = centre(_gram(_centred(X, name), kernel, bandwidth, name))
    sqnorm = float(np.sum(Kt * Kt))
    if sqnorm <= 0.0:
        # the unbiased HSIC(K, K) is <U(K), U(K)> / (m (m - 3)) > 0 unless U(K) vanishes
        raise HdbenchError(f"{name}: the unbiased kernel self-similarity is not positive")
    return Kt, sqnorm


def cka(X, Y, kernel: str = "linear", debiased: bool = False, *, bandwidth: float = 1.0) -> float:
    """Centred kernel alignment between two systems' responses to the same conditions.

    Parameters
    ----------
    X, Y : array ``[conditions, units_x]``, ``[conditions, units_y]``
        Unit counts may differ.
    kernel : {"linear", "rbf"}
        ``"rbf"`` uses ``k(x, y) = exp(-||x - y||² / (2 bandwidth² median))`` where ``median``
        is the median of all squared distances between conditions, zero diagonal included
        (Kornblith et al.'s rule), computed separately for X and Y.
    debiased : bool
        False: the biased (Gretton) estimator, the classic CKA in [0, 1]. True: the unbiased
        HSIC of Song et al.; needs >= 4 conditions and may come out slightly negative.
    bandwidth : float
        RBF width as a fraction of the median distance; ignored by the linear kernel.

    Returns
    -------
    float

    Raises
    ------
    HdbenchError
        For NaN/inf, mismatched condition counts, a constant system, or (debiased) a system
        whose unbiased self-similarity is not positive (too few conditions).
    """
    _check_settings(kernel, debiased, bandwidth)
    min_rows = 4 if debiased else 2
    X, Y = as_matrix(X, "X", min_rows), as_matrix(Y, "Y", min_rows)
    same_rows(X, Y)
    if kernel == "linear" and not debiased:
        # <HKH, HLH> = ||Xc^T Yc||_F^2 for linear kernels: no m x m Gram needed
        Xc, Yc = _centred(X, "X"), _centred(Y, "Y")
        cross = float(np.sum((Xc.T @ Yc) ** 2))
        return cross / float(np.linalg.norm(Xc.T @ Xc) * np.linalg.norm(Yc.T @ Yc))
    Kt, kk = _centred_kernel(X, kernel, debiased, bandwidth, "X")
    Lt, ll = _centred_kernel(Y, kernel, debiased, bandwidth, "Y")
    return float(np.sum(Kt * Lt)) / float(np.sqrt(kk * ll))


def cka_distance(X, Y, kernel: str = "linear", debiased: bool = False, *,
                 bandwidth: float = 1.0) -> float:
    """Angular CKA: ``arccos(cka(X, Y, ...))`` in [0, π] (π/2 or more = unrelated).

    A metric for the biased estimator (Williams et al. 2021); parameters as for :func:`cka`.
    """
    return angle(cka(X, Y, kernel, debiased, bandwidth=bandwidth))


class CKA(Metric):
    """Angular CKA as a metric object: ``score(X, Y) = arccos(cka(X, Y, ...))`` in [0, π].

    Like netrep's ``LinearCKA``, it learns nothing: ``fit`` records the similarity of the fit
    data and ``score`` computes on the data it is given (e.g. held-out conditions in
    ``sklearn.model_selection.cross_validate``). The CKA value itself is ``cos(score)``, or
    ``similarity_`` after ``fit``.

    Parameters
    ----------
    kernel : {"linear", "rbf"}
    debiased : bool
    bandwidth : float
        As for :func:`cka`.

    Attributes
    ----------
    similarity_ : float
        CKA of the fit data.
    """

    def __init__(self, kernel: str = "linear", debiased: bool = False, bandwidth: float = 1.0):
        self.kernel = kernel
        self.debiased = debiased
        self.bandwidth = bandwidth

    def _validate_params(self) -> None:
        _check_settings(self.kernel, self.debiased, self.bandwidth)

    def _check_system(self, X, name: str) -> np.ndarray:
        return as_matrix(X, name, 4 if self.debiased else 2)

    def _prepare(self, X: np.ndarray, name: str) -> np.ndarray:
        Kt, sqnorm = _centred_kernel(X, self.kernel, bool(self.debiased), float(self.bandwidth),
                                     name)
        return Kt / np.sqrt(sqnorm)

    def _between(self, px: np.ndarray, py: np.ndarray) -> float:
        return angle(float(np.sum(px * py)))

    def fit(self, X, Y):
        """Record the CKA of ``X`` and ``Y`` (``[conditions, units]`` each) in ``similarity_``."""
        self._validate_params()
        X, Y = self._check_pair(X, Y)
        self.similarity_ = float(np.sum(self._prepare(X, "X") * self._prepare(Y, "Y")))
        return self

    def score(self, X, Y) -> float:
        """``arccos(CKA)`` of ``X`` and ``Y``: 0 identical up to rotation and scale, π/2 unrelated
        (biased CKA stays below π/2; debiased CKA can exceed it by noise)."""
        self._validate_params()
        X, Y = self._check_pair(X, Y)
        return self._between(self._prepare(X, "X"), self._prepare(Y, "Y"))

    def fit_score(self, X, Y) -> float:
        """``fit(X, Y)`` and ``arccos(similarity_)``."""
        return angle(self.fit(X, Y).similarity_)
