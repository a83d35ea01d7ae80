"""The metric objects as scikit-learn estimators with netrep's fit / score shape."""

import numpy as np
import pytest
from scipy.stats import ortho_group
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold, cross_validate

from hdbench.errors import HdbenchError
from hdbench.metrics import (
    CKA,
    DSA,
    RSA,
    LinearMetric,
    PermutationMetric,
    cka,
    cka_distance,
    compare_dmd,
    dynamical_similarity,
    havok_dmd,
    neg_distance_scorer,
    pairwise_distances,
    rsa,
)
from hdbench.metrics.dynamics import DMDModel

ALL = [LinearMetric(alpha=0.5, score_method="euclidean"), PermutationMetric(zero_pad=False),
       CKA(kernel="rbf", debiased=True, bandwidth=0.5),
       RSA(rdm_method="cv_euclidean", compare_method="spearman"),
       DSA(n_delays=3, rank=4, comparison="angular", n_restarts=20, seed=1)]


def tuning(seed, m=40, n=6, k=None):
    """Systems of m conditions x n units sharing a latent (as in test_metrics_shape)."""
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((m, 4))

    def make():
        return latent @ rng.standard_normal((4, n)) + 0.7 * rng.standard_normal((m, n))

    return make() if k is None else [make() for _ in range(k)]


def rotation(omega, decay=0.97):
    c, s = np.cos(omega), np.sin(omega)
    return decay * np.array([[c, -s], [s, c]])


def trajectories(A, seed, units=8, trials=3, steps=120):
    """Noisy latent linear dynamics read out by a random map: [trials, steps, units]."""
    rng = np.random.default_rng(seed)
    readout = rng.standard_normal((A.shape[0], units))
    x = rng.standard_normal((trials, A.shape[0]))
    states = []
    for _ in range(steps):
        x = x @ A.T + 0.05 * rng.standard_normal(x.shape)
        states.append(x)
    return np.stack(states, axis=1) @ readout


# -- scikit-learn estimator conventions ------------------------------------------------------------

@pytest.mark.parametrize("metric", ALL, ids=lambda m: type(m).__name__)
def test_clone_get_params_and_set_params(metric):
    params = metric.get_params()
    twin = clone(metric)  # raises if __init__ altered a parameter
    assert type(twin) is type(metric) and twin is not metric and twin.get_params() == params
    name, value = next(iter(params.items()))
    assert twin.set_params(**{name: value}) is twin
    assert repr(metric).startswith(type(metric).__name__ + "(")


def test_clone_of_the_issue_example():
    metric = clone(LinearMetric(alpha=0.5))
    assert metric.alpha == 0.5 and metric.get_params()["score_method"] == "angular"


@pytest.mark.parametrize("cls, bad", [(LinearMetric, {"alpha": -1}), (CKA, {"kernel": "cosine"}),
                                      (CKA, {"bandwidth": 0.0}), (RSA, {"rdm_method": "mahal"}),
                                      (RSA, {"compare_method": "kendall"}),
                                      (DSA, {"comparison": "procrustes"}),
                                      (DSA, {"comparison": "wasserstein", "rank": 0})])
def test_constructors_store_bad_parameters_and_fit_refuses_them(cls, bad):
    metric = cls(**bad)  # no validation in the constructor
    assert all(getattr(metric, k) is v for k, v in bad.items())
    X, Y = tuning(1, k=2)
    with pytest.raises(HdbenchError, match="|".join(bad)):
        metric.fit(X, Y)


@pytest.mark.parametrize("metric", ALL, ids=lambda m: type(m).__name__)
def test_fitted_attributes_end_with_an_underscore(metric):
    metric = clone(metric)
    before = set(vars(metric))
    if isinstance(metric, DSA):
        X, Y = trajectories(rotation(0.1), 0), trajectories(rotation(0.1), 1)
    elif isinstance(metric, RSA):
        X, Y = np.stack(tuning(2, k=2)), np.stack(tuning(3, k=2))
    else:
        X, Y = tuning(4, k=2)
    assert metric.fit(X, Y) is metric
    added = set(vars(metric)) - before
    assert added and all(name.endswith("_") for name in added)


# -- cross-validation over conditions --------------------------------------------------------------

def test_cross_validate_scores_held_out_conditions():
    """sklearn splits the rows of X and Y together, fits on the training conditions and scores
    the held-out ones: the same numbers as fitting and scoring by hand."""
    X, Y = tuning(5, m=60, k=2)
    cv = KFold(4, shuffle=True, random_state=0)
    result = cross_validate(LinearMetric(alpha=0.5), X, Y, cv=cv, return_train_score=True)
    expected = [LinearMetric(alpha=0.5).fit_score(X[tr], Y[tr], X[te], Y[te])
                for tr, te in cv.split(X)]
    np.testing.assert_allclose(result["test_score"], expected, rtol=1e-12)
    # held-out distances exceed the fitted ones (the fit adapts to its own conditions)
    assert np.all(result["test_score"] > result["train_score"])
    ckas = cross_validate(CKA(), X, Y, cv=cv)["test_score"]
    np.testing.assert_allclose(ckas, [cka_distance(X[te], Y[te]) for _, te in cv.split(X)])


def test_grid_search_with_the_negated_distance_picks_the_smallest_held_out_distance():
    X, Y = tuning(6, m=60, k=2)
    cv = KFold(3)
    alphas = [0.0, 0.5, 1.0]
    search = GridSearchCV(LinearMetric(), {"alpha": alphas}, scoring=neg_distance_scorer,
                          cv=cv).fit(X, Y)
    mean = [np.mean([LinearMetric(alpha=a).fit_score(X[tr], Y[tr], X[te], Y[te])
                     for tr, te in cv.split(X)]) for a in alphas]
    assert search.best_params_["alpha"] == alphas[int(np.argmin(mean))]
    np.testing.assert_allclose(-search.cv_results_["mean_test_score"], mean, rtol=1e-12)
    assert neg_distance_scorer(search.best_estimator_, X, Y) == \
        -search.best_estimator_.score(X, Y)


# -- CKA, RSA and DSA objects equal their free functions -------------------------------------------

@pytest.mark.parametrize("kernel", ["linear", "rbf"])
@pytest.mark.parametrize("debiased", [False, True])
def test_cka_object(kernel, debiased):
    X, Y = tuning(7, n=5), tuning(8, n=9)
    metric = CKA(kernel=kernel, debiased=debiased, bandwidth=0.7)
    expected = cka(X, Y, kernel, debiased, bandwidth=0.7)
    assert metric.fit(X, Y).similarity_ == pytest.approx(expected, abs=1e-12)
    assert metric.fit_score(X, Y) == pytest.approx(np.arccos(expected), abs=1e-9)
    assert metric.score(X, Y) == pytest.approx(
        cka_distance(X, Y, kernel, debiased, bandwidth=0.7), abs=1e-9)
    Q = ortho_group.rvs(5, random_state=np.random.default_rng(0))
    if kernel == "linear":  # invariant to rotation and scale
        assert metric.score(X, 3.0 * X @ Q) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("rdm_method, compare_method",
                         [("correlation", "whitened_cosine"), ("euclidean", "pearson"),
                          ("squared_euclidean", "tau_a"), ("cv_euclidean", "spearman")])
def test_rsa_object(rdm_method, compare_method):
    cv = rdm_method == "cv_euclidean"
    X, Y = (np.stack(tuning(s, n=7, k=3)) if cv else tuning(s, n=7) for s in (9, 10))
    metric = RSA(rdm_method=rdm_method, compare_method=compare_method).fit(X, Y)
    np.testing.assert_array_equal(metric.rdm_x_, rsa.rdm(X, rdm_method))
    expected = rsa.compare(rsa.rdm(X, rdm_method), rsa.rdm(Y, rdm_method), compare_method)
    assert metric.similarity_ == expected
    assert metric.fit_score(X, Y) == pytest.approx(np.arccos(expected), abs=1e-12)
    assert metric.score(X, Y) == pytest.approx(np.arccos(expected), abs=1e-12)


def test_rsa_object_refuses_crossnobis_and_wrong_shapes():
    X = tuning(11)
    with pytest.raises(HdbenchError, match="noise precision"):
        RSA(rdm_method="crossnobis").fit(np.stack([X, X]), np.stack([X, X]))
    with pytest.raises(HdbenchError, match="3-D"):
        RSA(rdm_method="cv_euclidean").fit(X, X)
    with pytest.raises(HdbenchError, match="2-D"):
        RSA().fit(np.stack([X, X]), np.stack([X, X]))


@pytest.mark.parametrize("comparison", ["wasserstein", "angular", "euclidean"])
def test_dsa_object(comparison):
    X, Y = trajectories(rotation(0.1), 0), trajectories(rotation(0.3), 1, units=11)
    settings = dict(n_delays=2, rank=4)
    metric = DSA(comparison=comparison, seed=3, n_restarts=20, **settings).fit(X, Y)
    expected = dynamical_similarity(X, Y, method=comparison, seed=3, n_restarts=20, **settings)
    assert metric.distance_ == expected == metric.score(X, Y) == metric.fit_score(X, Y)
    assert metric.model_x_.A.shape == (4, 4)
    if comparison == "wasserstein":
        assert metric.rotation_ is None
        return
    C = metric.rotation_
    np.testing.assert_allclose(C @ C.T, np.eye(4), atol=1e-12)
    A, B = (m.A / np.linalg.norm(m.A) for m in (metric.model_x_, metric.model_y_))
    loss = np.sum((A - C @ B @ C.T) ** 2)
    assert metric.distance_ == pytest.approx(
        np.sqrt(loss) if comparison == "euclidean" else np.arccos(1 - loss / 2), abs=1e-12)


def test_the_dsa_rotation_is_a_stationary_point_and_seed_independent():
    """The polished rotation has zero Riemannian gradient (the restarts converge), and other seeds
    find the same minimum."""
    X, Y = trajectories(rotation(0.1), 2, units=10), trajectories(rotation(0.25), 3, units=10)
    metric = DSA(n_delays=3, rank=6, comparison="angular", seed=0).fit(X, Y)
    C = metric.rotation_
    A, B = (m.A / np.linalg.norm(m.A) for m in (metric.model_x_, metric.model_y_))
    R = C @ B @ C.T - A
    G = C.T @ (R @ C @ B.T + R.T @ C @ B)
    assert np.linalg.norm(G - G.T) < 1e-7
    others = [metric.set_params(seed=s).fit_score(X, Y) for s in (1, 2)]
    np.testing.assert_allclose(others, metric.set_params(seed=0).fit_score(X, Y), atol=1e-9)


def test_dsa_controllability_rotation_aligns_equivalent_systems():
    """(QAQᵀ, QB) is the same input-driven system: rotation_ maps Y's controllability matrix
    onto X's (dsa-metric 2.0.2 uses the transpose of this rotation)."""
    rng = np.random.default_rng(12)
    A, B = rng.standard_normal((4, 4)) / 2, rng.standard_normal((4, 2))
    Q = ortho_group.rvs(4, random_state=rng)
    x = DMDModel(A=A, B=B, singular_values=np.ones(4), n_delays=1, delay_interval=1)
    y = DMDModel(A=Q @ A @ Q.T, B=Q @ B, singular_values=np.ones(4), n_delays=1,
                 delay_interval=1)
    from hdbench.metrics.dynamics import _compare, _controllability

    d, C = _compare(x, y, "controllability", 1, None)
    assert d == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_allclose(C @ _controllability(y), _controllability(x), atol=1e-10)
    np.testing.assert_allclose(C, Q.T, atol=1e-10)


def test_dsa_object_needs_explicit_choices():
    X = trajectories(rotation(0.1), 4)
    with pytest.raises(HdbenchError, match="explicit comparison"):
        DSA().fit(X, X)
    with pytest.raises(HdbenchError, match="explicit seed"):
        DSA(comparison="angular").fit(X, X)
    with pytest.raises(HdbenchError, match="needs X_inputs"):
        DSA(comparison="controllability").fit(X, X)
    with pytest.raises(HdbenchError, match="both systems or for neither"):
        DSA(comparison="wasserstein").fit(X, X, X_inputs=X[..., 0])
    with pytest.raises(HdbenchError, match="pair by pair"):
        pairwise_distances(DSA(comparison="controllability"), [X, X], verbose=False)


# -- pairwise_distances with every metric ----------------------------------------------------------

@pytest.mark.parametrize("metric", [CKA(debiased=True), RSA(), DSA(comparison="wasserstein",
                                                                     n_delays=2, rank=4),
                                    DSA(comparison="angular", n_delays=2, rank=3, seed=0,
                                        n_restarts=10)],
                         ids=repr)
def test_pairwise_distances_of_stateless_metrics(metric):
    if isinstance(metric, DSA):
        Xs = [trajectories(rotation(w), s, units=6 + s) for s, w in enumerate((0.1, 0.1, 0.4))]
        tests = [trajectories(rotation(w), 10 + s) for s, w in enumerate((0.1, 0.1, 0.4))]
    else:
        Xs, tests = tuning(13, n=5, k=3), tuning(14, n=5, k=3)
    D, D_test = pairwise_distances(metric, Xs, test_data=tests, n_jobs=2, verbose=False)
    assert np.all(np.diag(D) == 0) and np.all(np.diag(D_test) == 0)
    for i in range(3):
        for j in range(i + 1, 3):
            assert D[i, j] == D[j, i] == pytest.approx(metric.fit_score(Xs[i], Xs[j]), abs=1e-9)
            assert D_test[i, j] == pytest.approx(metric.score(tests[i], tests[j]), abs=1e-9)
    if isinstance(metric, DSA):  # the same dynamics are closer than different dynamics
        assert D[0, 1] < D[0, 2] and D_test[0, 1] < D_test[0, 2]


def test_pairwise_distances_checks_each_metrics_systems():
    X = tuning(15)
    with pytest.raises(HdbenchError, match=r"Xs\[0\] and Xs\[1\] must have the same number"):
        pairwise_distances(CKA(), [X, X[:-3]], verbose=False)
    with pytest.raises(HdbenchError, match=r"Xs\[1\] must be 3-D"):
        pairwise_distances(RSA(rdm_method="cv_euclidean"), [np.stack([X, X]), X], verbose=False)
    # DSA compares trajectories of any length and trial count
    traj = trajectories(rotation(0.1), 5)
    D = pairwise_distances(DSA(comparison="wasserstein", n_delays=2, rank=4),
                           [traj, traj[:2, :90]], verbose=False)
    assert D.shape == (2, 2) and D[0, 1] > 0


def test_compare_dmd_keeps_its_signature():
    X = trajectories(rotation(0.1), 6)
    model = havok_dmd(X, n_delays=2, rank=4)
    assert compare_dmd(model, model, method="wasserstein") == 0.0
    assert compare_dmd(model, model, method="angular", seed=0) == pytest.approx(0.0, abs=1e-6)
