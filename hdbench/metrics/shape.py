"""Shape metrics (Williams et al. 2021): distances between representations up to a transform.

A system is a matrix ``[conditions, units]``. A shape metric maps each system on its own to a
normal form (centre the columns; for :class:`LinearMetric` with ``alpha < 1`` also partially
whiten), aligns the pair with the best orthogonal transform (:class:`LinearMetric`) or unit
permutation (:class:`PermutationMetric`), and scores the aligned pair ``A, B``:

- ``"angular"``: ``arccos(<A, B> / (||A||_F ||B||_F))`` in [0, π]; invariant to isotropic scaling
  and a true metric on the data the metric was fitted on;
- ``"euclidean"``: ``||A - B||_F``; depends on the data scale and grows like sqrt(conditions).

The classes follow netrep's API (``fit`` / ``score`` / ``fit_score`` / ``transform`` /
``pairwise_distances``) and conventions (its whitening and scores), written from the math in
NumPy; the tests compare them with netrep when it is importable. They are scikit-learn estimators
(``clone``, ``get_params``, ``set_params``; parameters are validated by ``fit``). Fitting learns
only the column means and the transforms, so a *cross-validated* distance is
``fit_score(X_a, Y_a, X_b, Y_b)``: fit on one split of the data, score on another. Use it
whenever ``alpha < 1``: in-sample CCA distances are meaningless (0 when units = conditions - 1;
more units than that are refused). Cross-validated distances are not guaranteed to obey the
triangle inequality.

Cross-validation over conditions works with scikit-learn directly, the rows of X and Y being
split together: ``cross_validate(LinearMetric(alpha=0.5), X, Y, cv=KFold(5))["test_score"]``
are the held-out distances (lower = more similar; pass ``scoring=neg_distance_scorer`` to tools
that maximise, e.g. ``GridSearchCV``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from hdbench.errors import HdbenchError
from hdbench.metrics._base import Metric
from hdbench.metrics._validate import angle, as_matrix, check_bool, check_choice, is_constant

SCORE_METHODS = ("angular", "euclidean")
EIGENVALUE_FLOOR = 1e-7  # netrep's floor on covariance eigenvalues before whitening


@dataclass(frozen=True)
class _Prepared:
    """One system in normal form: what a pair fit needs from it, computed once per system."""

    mean: np.ndarray  # [units] column means of the fit data (zeros without centring)
    data: np.ndarray  # [conditions, units] centred, and whitened up to a scalar when alpha < 1
    sqnorm: float  # ||data||_F^2
    whitener: np.ndarray | None  # [units, units]; None means the identity
    eig_sum: float = 0.0  # sum of the floored covariance eigenvalues (variance-preserving scale)
    gain_sum: float = 0.0  # sum of (alpha sqrt(lambda) + 1 - alpha)^2 over those eigenvalues


class _ShapeMetric(Metric):
    """fit / score / pairwise machinery shared by the shape metrics.

    Subclasses define ``_prepare`` (one system to normal form) and ``_align`` (the best
    transform of a pair of prepared systems).
    """

    def __init__(self, center_columns: bool = True, zero_pad: bool = True,
                 score_method: str = "angular"):
        self.center_columns = center_columns
        self.zero_pad = zero_pad
        self.score_method = score_method

    def _validate_params(self) -> None:
        check_bool(self.center_columns, "center_columns")
        check_bool(self.zero_pad, "zero_pad")
        check_choice(self.score_method, "score_method", SCORE_METHODS)

    # -- subclass hooks ------------------------------------------------------------------------

    def _align(self, px: _Prepared, py: _Prepared, width: int, transforms: bool):
        """Return ``(inner, sqnorm_x, sqnorm_y, Wx, Wy)`` of the best alignment.

        ``inner`` is <A, B> of the aligned fit data and the squared norms are ||A||², ||B||².
        ``Wx`` ``[units_x, width]`` and ``Wy`` ``[units_y, width]`` map centred data into the
        common space (None unless ``transforms``).
        """
        raise NotImplementedError

    # -- shared helpers ------------------------------------------------------------------------
    def _centre(self, X: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
        mean = X.mean(axis=0) if self.center_columns else np.zeros(X.shape[1])
        centred = X - mean
        if self.score_method == "angular" and is_constant(centred, X):
            raise HdbenchError(
                f"{name} has no variance left after centring (all-zero or constant activity); "
                "the angular distance is undefined for it"
            )
        return mean, centred

    def _width(self, px: _Prepared, py: _Prepared) -> int:
        nx, ny = px.data.shape[1], py.data.shape[1]
        if nx != ny and not self.zero_pad:
            raise HdbenchError(
                f"X has {nx} units and Y has {ny}; pass zero_pad=True or reduce both to the "
                "same dimension (hdbench.metrics.conditions.align_dimensions)"
            )
        return max(nx, ny)

    def _distance(self, inner: float, sqnorm_x: float, sqnorm_y: float) -> float:
        if self.score_method == "euclidean":
            return float(np.sqrt(max(sqnorm_x + sqnorm_y - 2.0 * inner, 0.0)))
        if sqnorm_x <= 0.0 or sqnorm_y <= 0.0:
            raise HdbenchError("the angular distance is undefined: an aligned matrix is all zero")
        return angle(inner / np.sqrt(sqnorm_x * sqnorm_y))

    def _check_system(self, X, name: str) -> np.ndarray:
        return as_matrix(X, name, min_rows=2)

    def _prepare_test(self, X: np.ndarray, name: str) -> tuple[np.ndarray, str]:
        return X, name

    def _pair(self, px: _Prepared, py: _Prepared, tx=None, ty=None) -> tuple[float, float]:
        """In-sample distance of a prepared pair and, given test data ``(array, name)``, the
        cross-validated one."""
        inner, sx, sy, Wx, Wy = self._align(px, py, self._width(px, py),
                                            transforms=tx is not None)
        d_fit = self._distance(inner, sx, sy)
        if tx is None:
            return d_fit, np.nan
        A = self._aligned(tx[0], px.mean, Wx, tx[1])
        B = self._aligned(ty[0], py.mean, Wy, ty[1])
        return d_fit, self._distance(float(np.sum(A * B)), float(np.sum(A * A)),
                                     float(np.sum(B * B)))

    def _aligned(self, X: np.ndarray, mean: np.ndarray, W: np.ndarray, name: str) -> np.ndarray:
        if X.shape[1] != W.shape[0]:
            raise HdbenchError(
                f"{name} has {X.shape[1]} units but the metric was fitted on {W.shape[0]}"
            )
        centred = X - mean
        if self.score_method == "angular" and is_constant(centred, X):
            raise HdbenchError(
                f"{name} equals the fitted column means in every condition (nothing left after "
                "centring); the angular distance is undefined for it"
            )
        return centred @ W

    # -- public API ----------------------------------------------------------------------------
    def fit(self, X, Y):
        """Learn the column means and the alignment of ``X`` and ``Y``.

        Parameters
        ----------
        X, Y : array ``[conditions, units_x]``, ``[conditions, units_y]``
            Two systems' responses to the same conditions (rows).

        Returns
        -------
        self
        """
        self._validate_params()
        X, Y = self._check_pair(X, Y)
        px, py = self._prepare(X, "X"), self._prepare(Y, "Y")
        _, _, _, Wx, Wy = self._align(px, py, self._width(px, py), transforms=True)
        self.mx_, self.my_, self.Wx_, self.Wy_ = px.mean, py.mean, Wx, Wy
        return self

    def transform(self, X, Y) -> tuple[np.ndarray, np.ndarray]:
        """Map ``X`` and ``Y`` into the fitted common space: ``(X - mx_) Wx_``, ``(Y - my_) Wy_``.

        Returns
        -------
        A, B : float64 arrays ``[conditions, width]``, width = max(units_x, units_y)
        """
        if not hasattr(self, "Wx_"):
            raise HdbenchError(f"{type(self).__name__} is not fitted; call fit(X, Y) first")
        self._validate_params()
        X, Y = self._check_pair(X, Y)
        return (self._aligned(X, self.mx_, self.Wx_, "X"),
                self._aligned(Y, self.my_, self.Wy_, "Y"))

    def score(self, X, Y) -> float:
        """Distance between ``X`` and ``Y`` under the fitted alignment (lower = more similar).

        ``X`` and ``Y`` need the fitted unit counts but may hold other conditions, e.g. a
        held-out trial split.
        """
        A, B = self.transform(X, Y)
        return self._distance(float(np.sum(A * B)), float(np.sum(A * A)), float(np.sum(B * B)))

    def fit_score(self, X, Y, X_test=None, Y_test=None) -> float:
        """Fit on ``(X, Y)`` and score on ``(X_test, Y_test)``, or on the fit data if not given.

        Parameters
        ----------
        X, Y : array ``[conditions, units]``
            Fit data.
        X_test, Y_test : array ``[test conditions, units]``, optional
            Held-out data of the same units (e.g. the other trial split). Give both or neither.

        Returns
        -------
        float
            The cross-validated distance if test data are given, else the in-sample distance
            (computed in closed form, equal to ``fit(X, Y).score(X, Y)``).
        """
        if (X_test is None) != (Y_test is None):
            raise HdbenchError("give both X_test and Y_test, or neither")
        if X_test is not None:
            return self.fit(X, Y).score(X_test, Y_test)
        self._validate_params()
        X, Y = self._check_pair(X, Y)
        return self._pair(self._prepare(X, "X"), self._prepare(Y, "Y"))[0]


class LinearMetric(_ShapeMetric):
    """Shape distance up to rotations/reflections after partial whitening (Williams et al. 2021).

    ``alpha = 1`` is the Procrustes distance; ``alpha = 0`` whitens fully and gives the CCA
    distance (angular = arccos of the mean canonical correlation); values in between interpolate.
    With ``alpha < 1`` each system's covariance eigenvalues are floored at 1e-7 and the whitened
    data are rescaled to keep their total variance (netrep's convention); zero-variance
    directions (constant units, padding) thus contribute nothing to in-sample scores.
    For 0 < alpha < 1 the distance depends on the data scale, angular form included (the
    whitening ``alpha I + (1 - alpha) C^(-1/2)`` mixes terms of different units): scale the
    systems comparably (e.g. rates in the same units, or each divided by its Frobenius norm).

    Parameters
    ----------
    alpha : float in [0, 1]
        Regularisation of the whitening: 1 = none (Procrustes), 0 = full (CCA).
    center_columns : bool
        Subtract each unit's mean over conditions (learned on the fit data).
    zero_pad : bool
        Pad the system with fewer units with zero units; if False, unequal unit counts raise.
    score_method : {"angular", "euclidean"}

    Attributes
    ----------
    mx_, my_ : column means learned by ``fit``.
    Wx_, Wy_ : ``[units_x, width]``, ``[units_y, width]`` maps from centred data to the
        aligned common space (whitening, variance-preserving scale and rotation).

    Raises
    ------
    HdbenchError
        When used (fit, fit_score, pairwise_distances) with ``alpha`` outside [0, 1] or another
        bad parameter; and when ``alpha < 1`` and a system has more units than conditions - 1
        (its covariance is singular, so CCA-type fits are trivial: reduce it to
        k < conditions - 1 dimensions first, e.g. with
        :func:`hdbench.metrics.conditions.align_dimensions`).
    """

    def __init__(self, alpha: float = 1.0, center_columns: bool = True, zero_pad: bool = True,
                 score_method: str = "angular"):
        super().__init__(center_columns, zero_pad, score_method)
        self.alpha = alpha

    def _validate_params(self) -> None:
        super()._validate_params()
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, (int, float, np.number)):
            raise HdbenchError(f"alpha must be a number in [0, 1]; got {self.alpha!r}")
        if not 0.0 <= float(self.alpha) <= 1.0:
            raise HdbenchError(f"alpha must lie in [0, 1]; got {self.alpha}")

    def _whitens(self) -> bool:
        return float(self.alpha) < 1.0 - EIGENVALUE_FLOOR

    def _prepare(self, X: np.ndarray, name: str) -> _Prepared:
        mean, centred = self._centre(X, name)
        if not self._whitens():
            return _Prepared(mean, centred, float(np.sum(centred * centred)), None)
        n_conditions, n_units = X.shape
        dof = n_conditions - 1 if self.center_columns else n_conditions
        if n_units > dof:
            raise HdbenchError(
                f"{name} has {n_units} units but only {dof} degrees of freedom across "
                f"{n_conditions} conditions; alpha={self.alpha} < 1 whitens a singular covariance "
                "and overfits. Reduce to fewer dimensions (conditions.align_dimensions with "
                "method='pca') or use alpha=1"
            )
        alpha = float(self.alpha)
        eigvals, eigvecs = np.linalg.eigh(centred.T @ centred)
        lam = np.maximum(eigvals, EIGENVALUE_FLOOR)
        whitener = (eigvecs * (alpha + (1.0 - alpha) / np.sqrt(lam))) @ eigvecs.T
        data = centred @ whitener
        return _Prepared(mean, data, float(np.sum(data * data)), whitener, float(lam.sum()),
                         float(np.sum((alpha * np.sqrt(lam) + 1.0 - alpha) ** 2)))

    def _scale(self, p: _Prepared, width: int) -> float:
        """Variance-preserving scale of a whitened system zero-padded to ``width`` units."""
        if p.whitener is None:
            return 1.0
        pad, alpha = width - p.whitener.shape[0], float(self.alpha)
        num = p.eig_sum + pad * EIGENVALUE_FLOOR
        den = p.gain_sum + pad * (alpha * np.sqrt(EIGENVALUE_FLOOR) + 1.0 - alpha) ** 2
        return float(np.sqrt(num / den))

    def _align(self, px, py, width, transforms):
        cx, cy = self._scale(px, width), self._scale(py, width)
        cross = px.data.T @ py.data
        sx, sy = cx * cx * px.sqnorm, cy * cy * py.sqnorm
        if not transforms:
            return cx * cy * float(np.linalg.svd(cross, compute_uv=False).sum()), sx, sy, None, None
        nx, ny = cross.shape
        padded = np.zeros((width, width))
        padded[:nx, :ny] = cross
        U, s, Vt = np.linalg.svd(padded)
        Zx = np.eye(nx) if px.whitener is None else px.whitener
        Zy = np.eye(ny) if py.whitener is None else py.whitener
        return cx * cy * float(s.sum()), sx, sy, cx * Zx @ U[:nx], cy * Zy @ Vt.T[:ny]


def _placement(matched: np.ndarray, n_units: int, width: int) -> np.ndarray:
    """0/1 matrix ``[n_units, width]`` sending unit ``matched[k]`` to coordinate k.

    Unmatched units (the larger system's surplus) fill the remaining coordinates in order.
    """
    order = np.concatenate([matched, np.setdiff1d(np.arange(n_units), matched)])
    P = np.zeros((n_units, width))
    P[order, np.arange(n_units)] = 1.0
    return P


class PermutationMetric(_ShapeMetric):
    """Shape distance up to a one-to-one matching of units (Hungarian algorithm).

    After centring, units of ``Y`` are matched to units of ``X`` to maximise <X, Y P>; the
    distance is then scored as for :class:`LinearMetric`. Use it when unit identity matters
    (e.g. comparing two instances of the same circuit) — it is not rotation-invariant.

    Parameters
    ----------
    center_columns, zero_pad, score_method
        As for :class:`LinearMetric`.

    Attributes
    ----------
    mx_, my_ : column means learned by ``fit``.
    Wx_, Wy_ : 0/1 matrices ``[units, width]`` placing matched units on a common coordinate.
    """

    def _prepare(self, X: np.ndarray, name: str) -> _Prepared:
        mean, centred = self._centre(X, name)
        return _Prepared(mean, centred, float(np.sum(centred * centred)), None)

    def _align(self, px, py, width, transforms):
        cross = px.data.T @ py.data
        rows, cols = linear_sum_assignment(cross, maximize=True)
        inner = float(cross[rows, cols].sum())
        if not transforms:
            return inner, px.sqnorm, py.sqnorm, None, None
        return (inner, px.sqnorm, py.sqnorm, _placement(rows, cross.shape[0], width),
                _placement(cols, cross.shape[1], width))
