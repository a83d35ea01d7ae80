"""Dynamical similarity analysis (DSA; Ostrow, Eisen, Kozachkov & Fiete, NeurIPS 2023).

Each system's population trajectories are delay-embedded (a Hankel matrix), projected on their
top ``rank`` singular vectors ("eigen-time-delay" coordinates) and fitted with a linear map
``v[t+1] ≈ A v[t] (+ B u[t+1])`` — HAVOK-style dynamic mode decomposition. Two systems are then
compared through their operators:

- ``"wasserstein"``: the 2-Wasserstein distance between the eigenvalue clouds of A (points in
  the complex plane; the smaller set padded with zeros). Deterministic and invariant to any
  change of coordinates; it compares spectra only. dsa-metric reports the *square* of this
  value (W₂², not a metric) under the same name.
- ``"angular"`` / ``"euclidean"``: Procrustes analysis over vector fields, the paper's metric:
  ``min_C ||Â - C B̂ Cᵀ||_F`` over orthogonal C (both determinants), with Â, B̂ = A, B scaled to
  unit norm; angular = ``arccos(<Â, C B̂ Cᵀ>)``, euclidean = the norm itself, in [0, 2]. The
  minimisation has many local minima, so it is restarted from ``n_restarts``
  random rotations, each also reflected: all are descended together cheaply, the best few
  are converged precisely, and the best fit is kept; the seed is explicit.
- ``"controllability"``: for input-driven fits, the angular Procrustes distance between the
  controllability matrices ``K = [B, AB, AᵀB, …, A^(r-1)B, (Aᵀ)^(r-1)B]``, in closed form:
  ``arccos(||K_x K_yᵀ||_* / (||K_x|| ||K_y||))``. dsa-metric 2.0.2's InputDSA uses the
  transpose of the optimal rotation here (so equivalent systems score > 0); computing the
  optimum through the nuclear norm sidesteps that bug.

The delay count, rank and ridge change the scores strongly: fix them per data set and report
them. Trajectories are used as given (no mean subtraction), as in dsa-metric. :class:`DSA` is
the metric object (``fit`` / ``score`` / :func:`~hdbench.metrics.pairwise_distances`,
scikit-learn parameters); :func:`havok_dmd` and :func:`compare_dmd` stay the thin core.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment, minimize
from scipy.stats import ortho_group
from threadpoolctl import threadpool_limits

from hdbench.errors import HdbenchError
from hdbench.metrics._base import Metric
from hdbench.metrics._validate import angle, as_array, check_choice

METHODS = ("wasserstein", "angular", "euclidean", "controllability")
#: Default starting rotations of the angular / euclidean comparison (README: the seed-to-seed
#: spread fell below 1e-4 rad from 50 on every pair measured; 100 leaves a margin).
N_RESTARTS = 100
# top singular values below this fraction of the largest count as absent dimensions
_RANK_TOL = 1e-6
_SCREEN_ITER = 300  # batched descent steps of every start
_POLISHED = 3  # screened starts converged precisely
_MAX_ITER = 500  # L-BFGS iterations per chart
_RECENTRE = 10  # at most this many charts per polished start


@dataclass(frozen=True)
class DMDModel:
    """Linear model of delay-embedded dynamics in eigen-time-delay coordinates.

    Attributes
    ----------
    A : float64 ``[rank, rank]``
        State operator: ``v[t+1] ≈ A v[t] (+ B u)``.
    B : float64 ``[rank, n_inputs]`` or None
        Input operator, when fitted with inputs.
    singular_values : float64 ``[rank]``
        The kept singular values of the Hankel matrix.
    n_delays, delay_interval : int
        The embedding used.
    """

    A: np.ndarray
    B: np.ndarray | None
    singular_values: np.ndarray
    n_delays: int
    delay_interval: int

    @property
    def rank(self) -> int:
        return self.A.shape[0]

    @property
    def eigenvalues(self) -> np.ndarray:
        """Eigenvalues of A (complex); |λ| < 1 is a decaying mode, |λ| ≈ 1 a persistent one."""
        return np.linalg.eigvals(self.A)


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise HdbenchError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def _ridge(value) -> float:
    try:
        ridge = float(value)
    except (TypeError, ValueError):
        raise HdbenchError(f"ridge must be a number >= 0; got {value!r}") from None
    if not (np.isfinite(ridge) and ridge >= 0):
        raise HdbenchError(f"ridge must be a finite number >= 0; got {value!r}")
    return ridge


def _as_inputs(inputs, batched: bool, trials: int, steps: int) -> np.ndarray:
    """Inputs as ``[trials, steps, n_inputs]``; ``batched``: the trajectories had trials."""
    u = as_array(inputs, "inputs", (2, 3) if batched else (1, 2))
    if u.ndim == (2 if batched else 1):
        u = u[..., None]
    if not batched:
        u = u[None]
    if u.shape[:2] != (trials, steps):
        raise HdbenchError(
            f"inputs must cover the trajectories' [trials, time] = [{trials}, {steps}]; "
            f"got shape {u.shape}"
        )
    return u


def havok_dmd(trajectories, *, n_delays: int = 10, rank: int = 10, delay_interval: int = 1,
              ridge: float = 0.0, inputs=None) -> DMDModel:
    """Fit a delay-embedded DMD (HAVOK) model to population trajectories.

    Parameters
    ----------
    trajectories : array ``[time, units]`` or ``[trials, time, units]``
        Rates over time; trials are embedded separately and share one model.
    n_delays : int
        Number of delayed copies in the embedding (1 = plain DMD).
    rank : int
        Number of eigen-time-delay coordinates kept; must not exceed the dimensions present.
    delay_interval : int
        Steps between delayed copies.
    ridge : float
        Ridge penalty of the regression (0 = least squares).
    inputs : array ``[time]``, ``[time, n_inputs]``, ``[trials, time]`` or
             ``[trials, time, n_inputs]``, optional
        Control input (e.g. AV). ``inputs[t]`` drives the state at step t (the hdbench
        convention), so it enters the transition into the embedding row ending at t.

    Returns
    -------
    DMDModel
    """
    data = as_array(trajectories, "trajectories", (2, 3))
    batched = data.ndim == 3
    if not batched:
        data = data[None]
    n_delays = _positive_int(n_delays, "n_delays")
    rank = _positive_int(rank, "rank")
    delay_interval = _positive_int(delay_interval, "delay_interval")
    ridge = _ridge(ridge)
    trials, steps, units = data.shape
    span = (n_delays - 1) * delay_interval
    rows = steps - span
    if rows < 2:
        raise HdbenchError(
            f"{steps} time steps are too few for {n_delays} delays {delay_interval} apart"
        )
    # embedding row t = [x(t + span), x(t + span - interval), ..., x(t)]
    hankel = np.concatenate(
        [data[:, span - k * delay_interval: span - k * delay_interval + rows]
         for k in range(n_delays)], axis=2).reshape(trials * rows, n_delays * units)
    if rank > min(hankel.shape):
        raise HdbenchError(f"rank {rank} exceeds the embedding's size {hankel.shape}")
    # the top singular vectors through the smaller Gram matrix
    on_columns = hankel.shape[0] >= hankel.shape[1]
    eigvals, vecs = np.linalg.eigh(hankel.T @ hankel if on_columns else hankel @ hankel.T)
    top = vecs[:, ::-1][:, :rank]
    sv = np.sqrt(np.maximum(eigvals[::-1][:rank], 0.0))
    if sv[-1] <= _RANK_TOL * sv[0]:
        present = int(np.sum(sv > _RANK_TOL * sv[0]))
        raise HdbenchError(
            f"the delay-embedded data span only {present} dimension(s) (constant or "
            f"low-dimensional activity); use rank <= {present}"
        )
    coords = (hankel @ top / sv if on_columns else top).reshape(trials, rows, rank)
    regressors = coords[:, :-1].reshape(-1, rank)
    targets = coords[:, 1:].reshape(-1, rank)
    n_inputs = 0
    if inputs is not None:
        u = _as_inputs(inputs, batched, trials, steps)[:, span + 1:]
        n_inputs = u.shape[2]
        regressors = np.hstack([regressors, u.reshape(-1, n_inputs)])
    if ridge > 0:
        regressors = np.vstack([regressors, np.sqrt(ridge) * np.eye(regressors.shape[1])])
        targets = np.vstack([targets, np.zeros((regressors.shape[1], rank))])
    coef = np.linalg.lstsq(regressors, targets, rcond=None)[0]
    return DMDModel(A=coef[:rank].T.copy(), B=coef[rank:].T.copy() if n_inputs else None,
                    singular_values=sv, n_delays=n_delays, delay_interval=delay_interval)


def _unit(M: np.ndarray, name: str) -> np.ndarray:
    norm = np.linalg.norm(M)
    if norm == 0.0:
        raise HdbenchError(f"{name} is all zero; its direction is undefined")
    return M / norm


def _eigenvalue_wasserstein(A: np.ndarray, B: np.ndarray) -> float:
    """W₂ between the uniform measures on the eigenvalues (smaller set padded with zeros)."""
    la, lb = np.linalg.eigvals(A), np.linalg.eigvals(B)
    n = max(la.size, lb.size)
    la, lb = np.pad(la, (0, n - la.size)), np.pad(lb, (0, n - lb.size))
    cost = np.abs(la[:, None] - lb[None, :]) ** 2
    rows, cols = linear_sum_assignment(cost)
    return float(np.sqrt(cost[rows, cols].mean()))


def _cayley(X: np.ndarray) -> np.ndarray:
    """Cayley map of skew-symmetric ``X`` (batched): an orthogonal matrix close to expm(X)."""
    eye = np.eye(X.shape[-1])
    return np.linalg.solve(eye - 0.5 * X, eye + 0.5 * X)


def _screen(A: np.ndarray, B: np.ndarray, C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Riemannian gradient descent on O(n) from every start in ``C [starts, n, n]`` at once.

    Minimises ``||C B Cᵀ - A||²_F`` with Barzilai–Borwein steps along the Lie algebra and a
    Cayley retraction; a step that raises a start's loss is undone and retried 4x shorter.
    Returns the final losses ``[starts]`` and rotations. Cheap and approximate: it only has to
    land each start in its basin so that the best basins can be polished.
    """
    def loss_and_gradient(C):
        R = C @ B @ C.transpose(0, 2, 1) - A
        G = C.transpose(0, 2, 1) @ (R @ C @ B.T + R.transpose(0, 2, 1) @ C @ B)
        return np.einsum("kij,kij->k", R, R), G - G.transpose(0, 2, 1)

    loss, grad = loss_and_gradient(C)
    step = np.full(len(C), 0.5)
    for _ in range(_SCREEN_ITER):
        move = -step[:, None, None] * grad
        C_new = C @ _cayley(move)
        loss_new, grad_new = loss_and_gradient(C_new)
        accept = loss_new <= loss
        dg = grad_new - grad
        sy, ss = np.einsum("kij,kij->k", move, dg), np.einsum("kij,kij->k", move, move)
        bb = np.where(sy > 0, ss / np.where(sy > 0, sy, 1.0), 4.0 * step)
        step = np.where(accept, np.clip(bb, 1e-3, 1e3), 0.25 * step)
        C = np.where(accept[:, None, None], C_new, C)
        loss = np.where(accept, loss_new, loss)
        grad = np.where(accept[:, None, None], grad_new, grad)
        if np.max(np.abs(grad)) < 1e-10:
            break
    return loss, C


def _polish(A: np.ndarray, B: np.ndarray, C0: np.ndarray) -> tuple[float, np.ndarray]:
    """Converge to the local minimum of ``||C B Cᵀ - A||²_F`` near ``C0`` (L-BFGS).

    The rotation is parametrised as ``C = Q (I + S)⁻¹(I - S)`` (Cayley map of a skew-symmetric
    S around a centre Q). That chart cannot reach rotations with eigenvalue -1 relative to Q and
    is ill-conditioned far from Q, so after each run the chart is re-centred at the solution and
    the fit repeated until the loss stops falling.
    """
    n = A.shape[0]
    upper = np.triu_indices(n, k=1)
    eye = np.eye(n)

    def rotation(theta, Q):
        S = np.zeros((n, n))
        S[upper] = theta
        S -= S.T
        M = np.linalg.inv(eye + S)
        return Q @ M @ (eye - S), M

    def loss(theta, Q):
        C, M = rotation(theta, Q)
        R = C @ B @ C.T - A
        grad_C = 2.0 * (R @ C @ B.T + R.T @ C @ B)
        # dC = -2 Q M dS M, so df/dS = -2 Mᵀ Qᵀ grad_C Mᵀ
        grad_S = -2.0 * M.T @ Q.T @ grad_C @ M.T
        return float(np.sum(R * R)), (grad_S - grad_S.T)[upper]

    Q, best = C0, float(np.sum((C0 @ B @ C0.T - A) ** 2))
    for _ in range(_RECENTRE):
        fit = minimize(loss, np.zeros(upper[0].size), args=(Q,), jac=True, method="L-BFGS-B",
                       options={"maxiter": _MAX_ITER, "ftol": 1e-15, "gtol": 1e-12})
        if not fit.fun < best:
            break
        improvement, best = best - fit.fun, fit.fun
        Q = rotation(fit.x, Q)[0]
        if improvement <= 1e-14 * best + 1e-30:
            break
    return best, Q


def _vector_field_procrustes(A: np.ndarray, B: np.ndarray, n_restarts: int,
                             rng: np.random.Generator) -> tuple[float, np.ndarray]:
    """``min_C ||A - C B Cᵀ||²_F`` over orthogonal C for unit-norm A, B.

    The loss has many local minima (on HAVOK operators of ring attractors, a random start
    reaches the global one 3–30 % of the time). Every start — the identity and
    ``n_restarts - 1`` random rotations, each also composed with a reflection so that both
    components of O(n) are searched — is first descended cheaply all at once
    (:func:`_screen`); the :data:`_POLISHED` best are then converged precisely
    (:func:`_polish`); the lowest loss and its rotation are returned. With the default 100
    restarts the distance varied by < 1e-12 rad between seeds on HAVOK operators of reference
    circuits, CTRNNs and GRUs (rank 10; README, "Dynamical similarity").
    """
    n = A.shape[0]
    if n == 1:
        return float((A[0, 0] - B[0, 0]) ** 2), np.eye(1)
    reflect = np.eye(n)
    reflect[0, 0] = -1.0
    starts = [np.eye(n)[None]]
    if n_restarts > 1:
        starts.append(ortho_group.rvs(n, size=n_restarts - 1, random_state=rng).reshape(-1, n, n))
    starts = np.concatenate(starts)
    starts = np.concatenate([starts, starts @ reflect])
    # tiny BLAS calls: threading them only adds wake-up latency (100x slower on a busy machine)
    with threadpool_limits(limits=1, user_api="blas"):
        screened, rotations = _screen(A, B, starts)
        best, C = min((_polish(A, B, rotations[k]) for k in np.argsort(screened)[:_POLISHED]),
                      key=lambda fit: fit[0])
    return max(best, 0.0), C


def _controllability(model: DMDModel) -> np.ndarray:
    blocks, forward, backward = [model.B], model.B, model.B
    for _ in range(model.rank - 1):
        forward, backward = model.A @ forward, model.A.T @ backward
        blocks += [forward, backward]
    return np.hstack(blocks)


def _compare(model_x: DMDModel, model_y: DMDModel, method: str, n_restarts: int,
             seed) -> tuple[float, np.ndarray | None]:
    """(distance, rotation C taking Y's coordinates to X's, or None for "wasserstein")."""
    if method == "wasserstein":
        return _eigenvalue_wasserstein(model_x.A, model_y.A), None
    if model_x.rank != model_y.rank:
        raise HdbenchError(
            f"method {method!r} compares operators of the same rank; got {model_x.rank} and "
            f"{model_y.rank} (fit both with the same rank, or use method='wasserstein')"
        )
    if method == "controllability":
        if model_x.B is None or model_y.B is None:
            raise HdbenchError("method='controllability' needs models fitted with inputs")
        if model_x.B.shape != model_y.B.shape:
            raise HdbenchError(
                f"the models have {model_x.B.shape[1]} and {model_y.B.shape[1]} inputs"
            )
        Kx = _unit(_controllability(model_x), "X's controllability matrix")
        Ky = _unit(_controllability(model_y), "Y's controllability matrix")
        # min_C ||Kx - C Ky|| over orthogonal C: C = U Vᵀ from svd(Kx Kyᵀ) (not its transpose)
        U, s, Vt = np.linalg.svd(Kx @ Ky.T)
        return angle(s.sum()), U @ Vt
    n_restarts = _positive_int(n_restarts, "n_restarts")
    if seed is None:
        raise HdbenchError(
            f"method {method!r} optimises from random rotations; pass an explicit seed"
        )
    best, C = _vector_field_procrustes(_unit(model_x.A, "X's operator A"),
                                       _unit(model_y.A, "Y's operator A"), n_restarts,
                                       np.random.default_rng(seed))
    if method == "euclidean":
        return float(np.sqrt(best)), C
    return angle(1.0 - 0.5 * best), C


def compare_dmd(model_x: DMDModel, model_y: DMDModel, *, method: str,
                n_restarts: int = N_RESTARTS, seed=None) -> float:
    """Distance between two fitted DMD models (see the module docstring for the methods).

    Parameters
    ----------
    model_x, model_y : DMDModel
        From :func:`havok_dmd`; the same rank for all methods but ``"wasserstein"``.
    method : {"wasserstein", "angular", "euclidean", "controllability"}
        Required: dsa-metric's default changed between versions, so results must say which.
    n_restarts : int
        Starting rotations of the ``angular``/``euclidean`` optimisation (default 100: enough
        for a seed-to-seed spread < 1e-4 rad on every pair measured, README).
    seed : int or numpy.random.Generator
        Required by ``angular``/``euclidean``: draws the starting rotations.

    Returns
    -------
    float
        wasserstein: W₂ >= 0; angular: [0, π]; euclidean: [0, 2]; controllability: [0, π/2].
    """
    check_choice(method, "method", METHODS)
    return _compare(model_x, model_y, method, n_restarts, seed)[0]


def dynamical_similarity(X, Y, *, method: str, n_delays: int = 10, rank: int = 10,
                         delay_interval: int = 1, ridge: float = 0.0, X_inputs=None,
                         Y_inputs=None, n_restarts: int = N_RESTARTS, seed=None) -> float:
    """DSA distance between two systems' population trajectories (lower = more similar).

    Fits :func:`havok_dmd` to each system with the same hyperparameters, then
    :func:`compare_dmd`. To compare many systems, use
    ``pairwise_distances(DSA(...), trajectories)``, which fits each system once.

    Parameters
    ----------
    X, Y : array ``[time, units]`` or ``[trials, time, units]``
        Trajectories, e.g. from :func:`hdbench.metrics.conditions.population_trajectories`.
        Unit and trial counts may differ.
    method : {"wasserstein", "angular", "euclidean", "controllability"}
        Required; see the module docstring.
    n_delays, rank, delay_interval, ridge
        Embedding and regression settings, shared by both systems (see :func:`havok_dmd`).
    X_inputs, Y_inputs : array, optional
        Control inputs (e.g. AV) of each system's trials; required by ``"controllability"``,
        and if given for other methods, A is fitted with the input effect regressed out.
    n_restarts, seed
        For ``angular``/``euclidean``; see :func:`compare_dmd`.

    Returns
    -------
    float
    """
    check_choice(method, "method", METHODS)
    return DSA(n_delays=n_delays, rank=rank, delay_interval=delay_interval, ridge=ridge,
               comparison=method, n_restarts=n_restarts, seed=seed).fit_score(
        X, Y, X_inputs=X_inputs, Y_inputs=Y_inputs)


class DSA(Metric):
    """Dynamical similarity analysis as a metric object (Ostrow et al. 2023).

    ``fit(X, Y)`` fits a :func:`havok_dmd` model to each system's trajectories and compares them
    (:func:`compare_dmd`); ``score(X, Y)`` does the same on the data it is given (the DMD
    coordinates are each data set's own singular vectors, so nothing fitted transfers to other
    data). :func:`~hdbench.metrics.pairwise_distances` fits each system once.

    Parameters
    ----------
    n_delays, rank, delay_interval, ridge
        Embedding and regression settings shared by every system (see :func:`havok_dmd`).
    comparison : {"wasserstein", "angular", "euclidean", "controllability"}
        Required (None raises): see the module docstring. ``"controllability"`` needs inputs,
        so it works with ``fit`` / ``score`` but not with ``pairwise_distances``.
    n_restarts : int
        Starting rotations of the ``angular`` / ``euclidean`` optimisation.
    seed : int or None
        Required by ``angular`` / ``euclidean``; every pair restarts from the same seed.

    Attributes
    ----------
    model_x_, model_y_ : DMDModel
        The fitted models.
    rotation_ : float64 ``[rank, rank]`` or None
        The orthogonal C of the comparison (``A_x ≈ C A_y Cᵀ`` up to scale for
        angular/euclidean, ``K_x ≈ C K_y`` for controllability); None for wasserstein.
    distance_ : float
        The distance of the fitted pair.
    """

    def __init__(self, n_delays: int = 10, rank: int = 10, delay_interval: int = 1,
                 ridge: float = 0.0, comparison: str | None = None,
                 n_restarts: int = N_RESTARTS, seed: int | None = None):
        self.n_delays = n_delays
        self.rank = rank
        self.delay_interval = delay_interval
        self.ridge = ridge
        self.comparison = comparison
        self.n_restarts = n_restarts
        self.seed = seed

    def _validate_params(self) -> None:
        if self.comparison is None:
            raise HdbenchError(
                f"DSA needs an explicit comparison, one of {', '.join(METHODS)} (dsa-metric's "
                "default changed between versions, so results must say which)"
            )
        check_choice(self.comparison, "comparison", METHODS)
        for name in ("n_delays", "rank", "delay_interval", "n_restarts"):
            _positive_int(getattr(self, name), name)
        _ridge(self.ridge)
        if self.comparison in ("angular", "euclidean") and self.seed is None:
            raise HdbenchError(
                f"comparison {self.comparison!r} optimises from random rotations; pass an "
                "explicit seed"
            )

    def _settings(self) -> dict:
        return dict(n_delays=self.n_delays, rank=self.rank, delay_interval=self.delay_interval,
                    ridge=self.ridge)

    def _check_system(self, X, name: str) -> np.ndarray:
        return as_array(X, name, (2, 3))

    def _conditions(self, X: np.ndarray) -> None:
        return None

    def _prepare(self, X: np.ndarray, name: str) -> DMDModel:
        if self.comparison == "controllability":
            raise HdbenchError(
                "comparison='controllability' needs each system's inputs: use "
                "DSA(...).fit(X, Y, X_inputs=..., Y_inputs=...) pair by pair"
            )
        return havok_dmd(X, **self._settings())

    def _between(self, px: DMDModel, py: DMDModel) -> float:
        return _compare(px, py, self.comparison, self.n_restarts, self.seed)[0]

    def fit(self, X, Y, *, X_inputs=None, Y_inputs=None):
        """Fit a DMD model to each system and compare them.

        Parameters
        ----------
        X, Y : array ``[time, units]`` or ``[trials, time, units]``
            Trajectories; unit and trial counts may differ.
        X_inputs, Y_inputs : array, optional
            Control inputs of each system (see :func:`havok_dmd`); give both or neither.

        Returns
        -------
        self
        """
        self._validate_params()
        if (X_inputs is None) != (Y_inputs is None):
            raise HdbenchError("give inputs for both systems or for neither")
        if self.comparison == "controllability" and X_inputs is None:
            raise HdbenchError("comparison='controllability' needs X_inputs and Y_inputs")
        self.model_x_ = havok_dmd(X, inputs=X_inputs, **self._settings())
        self.model_y_ = havok_dmd(Y, inputs=Y_inputs, **self._settings())
        self.distance_, self.rotation_ = _compare(self.model_x_, self.model_y_, self.comparison,
                                                  self.n_restarts, self.seed)
        return self

    def score(self, X, Y, *, X_inputs=None, Y_inputs=None) -> float:
        """The DSA distance of ``X`` and ``Y`` (fitted afresh; lower = more similar)."""
        return DSA(**self.get_params()).fit(X, Y, X_inputs=X_inputs,
                                            Y_inputs=Y_inputs).distance_

    def fit_score(self, X, Y, *, X_inputs=None, Y_inputs=None) -> float:
        """``fit(X, Y, ...)`` and ``distance_``."""
        return self.fit(X, Y, X_inputs=X_inputs, Y_inputs=Y_inputs).distance_
