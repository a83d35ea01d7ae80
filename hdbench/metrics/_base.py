"""What every metric object shares: scikit-learn parameters, netrep's fit / score shape, and
:func:`pairwise_distances` over a set of systems.

A metric object is a distance between two systems (lower = more similar). Its parameters are
stored unchanged by ``__init__`` and validated when it is used, so ``sklearn.base.clone``,
``get_params`` and ``set_params`` work as for any estimator; fitted attributes end with ``_``.
``score(X, Y)`` is a distance, like netrep's; scikit-learn's model-selection tools maximise
scores, so pass ``scoring=neg_distance_scorer`` when a tool must pick the smallest distance.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs
from sklearn.base import BaseEstimator
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from hdbench.errors import HdbenchError

# pairwise_distances shows a progress bar by default from this many pairs on
_PROGRESS_PAIRS = 500


class Metric(BaseEstimator):
    """Base of the metric objects (:class:`~hdbench.metrics.LinearMetric`, ``CKA``, ...).

    Subclasses define how one system is checked (``_check_system``, ``_conditions``), brought to
    the form a comparison needs (``_prepare``, computed once per system by
    :func:`pairwise_distances`) and how two prepared systems are compared (``_between``).
    Metrics that learn nothing that transfers to other data (CKA, RSA, DSA) compute ``score`` on
    the data given; the shape metrics override ``_pair`` to fit on one split and score another.
    """

    def _validate_params(self) -> None:
        """Raise an :class:`HdbenchError` naming the first bad parameter."""

    def _check_system(self, X, name: str) -> np.ndarray:
        raise NotImplementedError

    def _conditions(self, X: np.ndarray) -> int | None:
        """Number of conditions (rows) that every compared system must share; None: no rule."""
        return X.shape[0]

    def _prepare(self, X: np.ndarray, name: str):
        raise NotImplementedError

    def _prepare_test(self, X: np.ndarray, name: str):
        return self._prepare(X, name)

    def _between(self, px, py) -> float:
        raise NotImplementedError

    def _pair(self, px, py, tx=None, ty=None) -> tuple[float, float]:
        """(distance of the fit data, distance of the test data or NaN without test data)."""
        return self._between(px, py), (np.nan if tx is None else self._between(tx, ty))

    def _check_pair(self, X, Y, xname: str = "X", yname: str = "Y"):
        X, Y = self._check_system(X, xname), self._check_system(Y, yname)
        if self._conditions(X) is not None and self._conditions(X) != self._conditions(Y):
            raise HdbenchError(
                f"{xname} and {yname} must have the same number of conditions; got "
                f"{self._conditions(X)} and {self._conditions(Y)}"
            )
        return X, Y

    def _check_set(self, Xs, name: str) -> list[np.ndarray]:
        if isinstance(Xs, np.ndarray):
            Xs = list(Xs)
        if not isinstance(Xs, Sequence) or isinstance(Xs, (str, bytes)):
            raise HdbenchError(f"{name} must be a list of systems (arrays)")
        if len(Xs) == 0:
            raise HdbenchError(f"{name} is empty; give at least one system")
        systems = [self._check_system(X, f"{name}[{i}]") for i, X in enumerate(Xs)]
        counts = [self._conditions(X) for X in systems]
        for i, count in enumerate(counts[1:], start=1):
            if count != counts[0]:
                raise HdbenchError(
                    f"{name}[0] and {name}[{i}] must have the same number of conditions; "
                    f"got {counts[0]} and {count}"
                )
        return systems

    def fit_score(self, X, Y) -> float:
        """``fit(X, Y)`` and the distance of the fitted pair."""
        return self.fit(X, Y).score(X, Y)

    def pairwise_distances(self, Xs, test_data=None, *, n_jobs: int | None = -1,
                           verbose: bool | None = None):
        """All pairwise distances of a set of systems; see :func:`pairwise_distances`."""
        return pairwise_distances(self, Xs, test_data, n_jobs=n_jobs, verbose=verbose)


def neg_distance_scorer(metric: Metric, X, Y) -> float:
    """``-metric.score(X, Y)``: a scikit-learn ``scoring`` callable (higher = more similar).

    For tools that maximise a score, e.g.
    ``GridSearchCV(LinearMetric(), {"alpha": [0, 0.5, 1]}, scoring=neg_distance_scorer)``.
    """
    return -metric.score(X, Y)


def _chunk(metric: Metric, prepared, test, chunk):
    return [metric._pair(prepared[i], prepared[j], *((None, None) if test is None
                                                     else (test[i], test[j])))
            for i, j in chunk]


def pairwise_distances(metric: Metric, Xs=None, test_data=None, *, n_jobs: int | None = -1,
                       verbose: bool | None = None):
    """Symmetric matrix of the distances between every pair of systems (netrep's order).

    Each system is brought to the form its metric compares once (normal form, kernel, RDM or
    DMD model); pairs are then scored in parallel threads (joblib; the linear algebra releases
    the GIL) with single-threaded BLAS, because many small products parallelise better across
    pairs than inside BLAS. A tqdm progress bar is shown for large sets.

    Parameters
    ----------
    metric : LinearMetric, PermutationMetric, CKA, RSA or DSA
        First, as in netrep (``pairwise_distances(metric, Xs)``); the reversed order of
        earlier hdbench versions is refused with an error that says so.
    Xs : list of K systems
        What the metric compares: ``[conditions, units_k]`` responses to the same conditions
        (shape metrics, CKA, RSA; ``[splits, conditions, units_k]`` for cross-validated RDMs),
        or ``[trials, time, units_k]`` trajectories (DSA). Unit counts may differ.
    test_data : list of K systems, optional
        Held-out data of the same systems (e.g. the other trial split). Shape metrics are fitted
        on ``Xs`` and scored on ``test_data``; the other metrics learn nothing that transfers,
        so their ``D_test`` compares the test data alone.
    n_jobs : int or None
        joblib worker threads; -1 (default) uses all cores.
    verbose : bool or None
        Show a progress bar; None (default) shows one from 500 pairs on.

    Returns
    -------
    D : float64 array ``[K, K]``
        Distances of the fit data, zero diagonal.
    D_test : float64 array ``[K, K]``
        Only when ``test_data`` is given (then ``(D, D_test)`` is returned):
        ``D_test[i, j] = metric.fit_score(Xs[i], Xs[j], test_data[i], test_data[j])`` for shape
        metrics, ``metric.score(test_data[i], test_data[j])`` otherwise. The diagonal is 0:
        a system fitted to itself is aligned by the identity, so its cross-validated distance to
        itself vanishes (up to rounding) whatever the test data. It is therefore *not* a noise
        floor; for shape metrics the distance between a system's two samples of the same
        conditions, ``metric.fit(Xs[i], Xs[i]).score(Xs[i], test_data[i])``, is one.
    """
    if not isinstance(metric, Metric):
        if isinstance(Xs, Metric) or Xs is None:
            raise HdbenchError(
                "pairwise_distances takes the metric first, as netrep does: "
                f"pairwise_distances(metric, Xs); got a {type(metric).__name__} first"
            )
        raise HdbenchError(
            "metric must be an hdbench metric (LinearMetric, PermutationMetric, CKA, RSA, DSA); "
            f"got {type(metric).__name__}"
        )
    if Xs is None:
        raise HdbenchError("pairwise_distances(metric, Xs) needs the systems Xs")
    metric._validate_params()
    fit = metric._check_set(Xs, "Xs")
    test = None
    if test_data is not None:
        test = metric._check_set(test_data, "test_data")
        if len(test) != len(fit):
            raise HdbenchError(
                f"test_data has {len(test)} systems but Xs has {len(fit)}; they must match"
            )
    K = len(fit)
    pairs = list(combinations(range(K), 2))
    workers = effective_n_jobs(n_jobs)
    size = max(1, -(-len(pairs) // (8 * workers)))
    chunks = [pairs[k:k + size] for k in range(0, len(pairs), size)]
    show = len(pairs) >= _PROGRESS_PAIRS if verbose is None else verbose
    D, D_test = np.zeros((K, K)), np.zeros((K, K))
    with (threadpool_limits(limits=1, user_api="blas"),
          Parallel(n_jobs=workers, prefer="threads", return_as="generator") as parallel):
        prepared = list(parallel(delayed(metric._prepare)(X, f"Xs[{i}]")
                                 for i, X in enumerate(fit)))
        if test is not None:
            test = list(parallel(delayed(metric._prepare_test)(X, f"test_data[{i}]")
                                 for i, X in enumerate(test)))
        jobs = (delayed(_chunk)(metric, prepared, test, chunk) for chunk in chunks)
        with tqdm(total=len(pairs), disable=not show, desc="distances", unit="pair") as bar:
            for chunk, values in zip(chunks, parallel(jobs), strict=True):
                for (i, j), (d_fit, d_test) in zip(chunk, values, strict=True):
                    D[i, j] = D[j, i] = d_fit
                    D_test[i, j] = D_test[j, i] = d_test
                bar.update(len(chunk))
    return D if test is None else (D, D_test)
