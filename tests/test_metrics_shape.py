import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import ortho_group

from hdbench.errors import HdbenchError
from hdbench.metrics import LinearMetric, PermutationMetric, pairwise_distances

PROPERTY = settings(max_examples=25, deadline=None)
seeds = st.integers(0, 2**32 - 1)
alphas = st.sampled_from([0.0, 0.5, 1.0])


def data(seed, m=40, n=6, k=None):
    """k systems (or one) of m conditions x n units, correlated through a shared latent."""
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((m, 4))

    def make():
        return latent @ rng.standard_normal((4, n)) + 0.7 * rng.standard_normal((m, n))

    return make() if k is None else [make() for _ in range(k)]


def centred(X):
    return X - X.mean(axis=0)


def nuclear(M):
    return np.linalg.svd(M, compute_uv=False).sum()


# -- closed forms ---------------------------------------------------------------------------------

@pytest.mark.parametrize("nx, ny", [(6, 6), (8, 5), (3, 9)])
def test_procrustes_angular_is_arccos_of_normalised_nuclear_norm(nx, ny):
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((30, nx)), rng.standard_normal((30, ny)) + 1.0
    Xc, Yc = centred(X), centred(Y)
    expected = np.arccos(nuclear(Xc.T @ Yc) / (np.linalg.norm(Xc) * np.linalg.norm(Yc)))
    metric = LinearMetric(alpha=1.0)
    assert metric.fit_score(X, Y) == pytest.approx(expected, abs=1e-12)
    assert metric.fit(X, Y).score(X, Y) == pytest.approx(expected, abs=1e-12)


def test_cca_angular_is_arccos_of_mean_canonical_correlation():
    X, Y = data(1, m=50, n=7, k=2)
    qx, qy = np.linalg.qr(centred(X))[0], np.linalg.qr(centred(Y))[0]
    rho = np.linalg.svd(qx.T @ qy, compute_uv=False)
    assert LinearMetric(alpha=0.0).fit_score(X, Y) == pytest.approx(np.arccos(rho.mean()),
                                                                    abs=1e-10)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.7, 1.0])
@pytest.mark.parametrize("score_method", ["angular", "euclidean"])
@pytest.mark.parametrize("ny", [6, 4])
def test_closed_form_fit_score_equals_fit_then_score(alpha, score_method, ny):
    X, Y = data(2, m=40, n=6), data(3, m=40, n=ny)
    metric = LinearMetric(alpha=alpha, score_method=score_method)
    assert metric.fit_score(X, Y) == pytest.approx(metric.fit(X, Y).score(X, Y), abs=1e-9)
    perm = PermutationMetric(score_method=score_method)
    assert perm.fit_score(X, Y) == pytest.approx(perm.fit(X, Y).score(X, Y), abs=1e-9)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_whitening_preserves_variance_so_the_scores_obey_the_law_of_cosines(alpha):
    X, Y = data(4, k=2)
    theta = LinearMetric(alpha).fit_score(X, Y)
    euclid = LinearMetric(alpha, score_method="euclidean").fit_score(X, Y)
    nx, ny = np.linalg.norm(centred(X)), np.linalg.norm(centred(Y))
    assert euclid**2 == pytest.approx(nx**2 + ny**2 - 2 * nx * ny * np.cos(theta), rel=1e-10)


def test_alpha_sweep_interpolates_between_cca_and_procrustes():
    X, Y = data(5, k=2)
    values = [LinearMetric(a).fit_score(X, Y) for a in np.linspace(0, 1, 6)]
    assert np.all(np.diff(values) > 0) or np.all(np.diff(values) < 0)


def test_fitted_attributes_map_into_a_common_space():
    X, Y = data(6, m=30, n=5), data(7, m=30, n=3)
    metric = LinearMetric(alpha=0.5).fit(X, Y)
    assert metric.Wx_.shape == (5, 5) and metric.Wy_.shape == (3, 5)
    A, B = metric.transform(X, Y)
    assert A.shape == B.shape == (30, 5) and A.dtype == np.float64
    np.testing.assert_allclose(metric.mx_, X.mean(axis=0))


# -- properties -----------------------------------------------------------------------------------

@PROPERTY
@given(seed=seeds, alpha=alphas)
def test_distance_to_itself_is_zero(seed, alpha):
    X = data(seed)
    assert LinearMetric(alpha).fit_score(X, X) == pytest.approx(0.0, abs=1e-6)
    assert LinearMetric(alpha, score_method="euclidean").fit_score(X, X) == pytest.approx(
        0.0, abs=1e-6 * np.linalg.norm(X))
    assert PermutationMetric().fit_score(X, X) == pytest.approx(0.0, abs=1e-6)


@PROPERTY
@given(seed=seeds, alpha=alphas, ny=st.integers(2, 8))
def test_symmetry(seed, alpha, ny):
    X, Y = data(seed, n=5), data(seed + 1, n=ny)
    for metric in (LinearMetric(alpha), LinearMetric(alpha, score_method="euclidean"),
                   PermutationMetric()):
        assert metric.fit_score(X, Y) == pytest.approx(metric.fit_score(Y, X), abs=1e-9)


@PROPERTY
@given(seed=seeds, sizes=st.lists(st.integers(2, 7), min_size=3, max_size=3))
def test_triangle_inequality_of_the_true_metrics(seed, sizes):
    rng = np.random.default_rng(seed)
    X, Y, Z = (rng.standard_normal((25, n)) @ np.diag(rng.uniform(0.1, 3, n)) for n in sizes)
    for metric in (LinearMetric(1.0), PermutationMetric(), LinearMetric(0.5)):
        if isinstance(metric, LinearMetric) and metric.alpha < 1 and len(set(sizes)) > 1:
            continue  # alpha < 1 with padding: rank-deficient whitening
        xy, yz, xz = metric.fit_score(X, Y), metric.fit_score(Y, Z), metric.fit_score(X, Z)
        assert xz <= xy + yz + 1e-7


@PROPERTY
@given(seed=seeds, alpha=alphas, scale=st.floats(1e-3, 1e3))
def test_invariance_to_orthogonal_transforms_and_isotropic_scaling(seed, alpha, scale):
    X, Y = data(seed, k=2)
    Q = ortho_group.rvs(Y.shape[1], random_state=np.random.default_rng(seed))
    metric = LinearMetric(alpha)
    base = metric.fit_score(X, Y)
    assert metric.fit_score(X, Y @ Q) == pytest.approx(base, abs=1e-7)
    assert metric.fit_score(X + 3.0, Y - 5.0) == pytest.approx(base, abs=1e-7)
    if alpha in (0.0, 1.0):  # partial whitening mixes I with C^(-1/2): scale-dependent
        assert metric.fit_score(X, scale * Y @ Q) == pytest.approx(base, abs=1e-7)


@PROPERTY
@given(seed=seeds, scale=st.floats(1e-3, 1e3))
def test_permutation_metric_is_invariant_to_unit_order_and_scale_but_not_rotation(seed, scale):
    X, Y = data(seed, k=2)
    rng = np.random.default_rng(seed)
    metric = PermutationMetric()
    base = metric.fit_score(X, Y)
    assert metric.fit_score(X, scale * Y[:, rng.permutation(Y.shape[1])]) == pytest.approx(
        base, abs=1e-7)
    assert metric.fit_score(X, X[:, rng.permutation(X.shape[1])]) == pytest.approx(0.0, abs=1e-6)
    # the permutation group is smaller than the orthogonal group
    assert metric.fit_score(X, Y) >= LinearMetric(1.0).fit_score(X, Y) - 1e-9


def test_euclidean_score_scales_with_the_data():
    X, Y = data(8, k=2)
    metric = LinearMetric(score_method="euclidean")
    assert metric.fit_score(3 * X, 3 * Y) == pytest.approx(3 * metric.fit_score(X, Y))


# -- cross-validation -----------------------------------------------------------------------------

def test_cross_validated_cca_exposes_in_sample_overfitting():
    rng = np.random.default_rng(9)
    X_a, Y_a, X_b, Y_b = (rng.standard_normal((21, 20)) for _ in range(4))
    metric = LinearMetric(alpha=0.0)
    assert metric.fit_score(X_a, Y_a) == pytest.approx(0.0, abs=1e-5)  # meaningless
    assert metric.fit_score(X_a, Y_a, X_b, Y_b) > 1.0  # independent data: far apart


def test_cross_validated_score_is_small_for_two_splits_of_one_system():
    rng = np.random.default_rng(10)
    signal = rng.standard_normal((60, 8))
    split_a, split_b = (signal + 0.1 * rng.standard_normal((60, 8)) for _ in range(2))
    Q = ortho_group.rvs(8, random_state=rng)
    metric = LinearMetric(alpha=0.5)
    d_same = metric.fit_score(split_a, split_a @ Q, split_b, split_b @ Q)
    d_other = metric.fit_score(split_a, rng.standard_normal((60, 8)),
                               split_b, rng.standard_normal((60, 8)))
    assert d_same < 0.05 < 1.0 < d_other


# -- pairwise -------------------------------------------------------------------------------------

@pytest.mark.parametrize("metric", [LinearMetric(1.0), LinearMetric(0.5, score_method="euclidean"),
                                    PermutationMetric()], ids=repr)
def test_pairwise_matches_pair_by_pair(metric):
    """D[i, j] = fit_score(Xs[i], Xs[j]) and D_test[i, j] = fit_score(Xs[i], Xs[j], tests[i],
    tests[j]) for i != j; both diagonals are exactly 0 (a system fitted to itself is aligned by
    the identity, so its cross-validated self-distance is 0 up to rounding)."""
    rng = np.random.default_rng(11)
    Xs = [rng.standard_normal((30, n)) for n in (4, 6, 6, 5)]
    tests = [rng.standard_normal((20, n)) for n in (4, 6, 6, 5)]
    D = pairwise_distances(metric, Xs, n_jobs=2, verbose=False)
    D1, D_test = metric.pairwise_distances(Xs, test_data=tests, n_jobs=1, verbose=False)
    assert D.dtype == np.float64 and np.allclose(D, D.T) and np.allclose(D_test, D_test.T)
    assert np.all(np.diag(D) == 0) and np.all(np.diag(D_test) == 0)
    np.testing.assert_allclose(D1, D, atol=1e-12)
    for i in range(4):
        assert metric.fit_score(Xs[i], Xs[i], tests[i], tests[i]) == pytest.approx(
            0.0, abs=1e-6 * max(1.0, np.linalg.norm(tests[i])))
        for j in range(4):
            if i != j:
                assert D[i, j] == pytest.approx(metric.fit_score(Xs[i], Xs[j]), abs=1e-9)
                assert D_test[i, j] == pytest.approx(
                    metric.fit_score(Xs[i], Xs[j], tests[i], tests[j]), abs=1e-9)


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_the_split_to_split_self_distance_is_the_noise_floor(alpha):
    """The documented noise floor fit(X_a, X_a).score(X_a, X_b) is 0 without noise and about the
    cross-validated distance between two noisy instances of one system, far below that of
    another system."""
    rng = np.random.default_rng(30)
    signal = data(31, m=60, n=6)

    def sample(S, noise):
        return S + noise * rng.standard_normal(S.shape)

    metric = LinearMetric(alpha)
    assert metric.fit(signal, signal).score(signal, signal) == pytest.approx(0.0, abs=1e-7)
    Q = ortho_group.rvs(6, random_state=rng)
    other = data(32, m=60, n=6)
    floors, same, different = [], [], []
    for _ in range(10):
        a, b = sample(signal, 0.2), sample(signal, 0.2)
        floors.append(metric.fit(a, a).score(a, b))
        c, d = sample(signal, 0.2) @ Q, sample(signal, 0.2) @ Q
        same.append(metric.fit_score(a, c, b, d))
        e, f = sample(other, 0.2), sample(other, 0.2)
        different.append(metric.fit_score(a, e, b, f))
    floor, same, different = np.mean(floors), np.mean(same), np.mean(different)
    assert floor > 0 and 0.8 * floor < same < 1.5 * floor < 3 * floor < different


def test_pairwise_accepts_a_stacked_array():
    Xs = np.stack(data(12, k=3))
    D = pairwise_distances(LinearMetric(), Xs, verbose=False)
    assert D[0, 1] == pytest.approx(LinearMetric().fit_score(Xs[0], Xs[1]))


def test_pairwise_takes_the_metric_first_as_netrep_does():
    Xs = data(13, k=3)
    for call in (lambda: pairwise_distances(Xs, LinearMetric(), verbose=False),
                 lambda: pairwise_distances(Xs, verbose=False)):
        with pytest.raises(HdbenchError, match=r"metric first, as netrep does: "
                                               r"pairwise_distances\(metric, Xs\)"):
            call()


def test_pairwise_rejects_bad_sets():
    Xs = data(13, k=3)
    metric = LinearMetric()
    with pytest.raises(HdbenchError, match=r"Xs\[0\] and Xs\[1\] must have the same number"):
        pairwise_distances(metric, [Xs[0], Xs[1][:-1]], verbose=False)
    with pytest.raises(HdbenchError, match="test_data has 2 systems"):
        pairwise_distances(metric, Xs, test_data=Xs[:2], verbose=False)
    with pytest.raises(HdbenchError, match=r"test_data\[1\] has 4 units but the metric was "
                                           r"fitted on 6"):
        pairwise_distances(metric, Xs, test_data=[Xs[0], Xs[1][:, :4], Xs[2]], verbose=False)
    with pytest.raises(HdbenchError, match="empty"):
        pairwise_distances(metric, [], verbose=False)
    with pytest.raises(HdbenchError, match="an hdbench metric"):
        pairwise_distances("procrustes", Xs, verbose=False)
    with pytest.raises(HdbenchError, match=r"Xs\[1\] has no variance"):
        pairwise_distances(metric, [Xs[0], np.zeros_like(Xs[1])], verbose=False)
    with pytest.raises(HdbenchError, match="alpha must lie in"):
        pairwise_distances(LinearMetric(alpha=2.0), Xs, verbose=False)


# -- degenerate input -----------------------------------------------------------------------------

def test_invalid_parameters_are_refused_when_the_metric_is_used():
    """scikit-learn convention: the constructor stores parameters, fit validates them."""
    X, Y = data(0, k=2)
    for metric, match in ((LinearMetric(alpha=1.5), "alpha must lie in"),
                          (LinearMetric(alpha="one"), "alpha must be a number"),
                          (LinearMetric(alpha=np.nan), "alpha must lie in"),
                          (LinearMetric(score_method="cosine"), "score_method"),
                          (PermutationMetric(zero_pad="yes"), "zero_pad must be True or False"),
                          (LinearMetric(center_columns=None), "center_columns")):
        for use in (metric.fit, metric.fit_score):
            with pytest.raises(HdbenchError, match=match):
                use(X, Y)
    with pytest.raises(HdbenchError, match="not fitted"):
        LinearMetric().score(X, Y)
    fitted = LinearMetric().fit(X, Y).set_params(score_method="cosine")
    with pytest.raises(HdbenchError, match="score_method"):
        fitted.score(X, Y)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_and_inf_are_rejected(bad):
    X, Y = data(14, k=2)
    Y[3, 2] = bad
    for metric in (LinearMetric(), PermutationMetric()):
        with pytest.raises(HdbenchError, match="NaN or inf"):
            metric.fit_score(X, Y)


def test_all_zero_activity():
    X = data(15)
    zero = np.zeros_like(X)
    for metric in (LinearMetric(), LinearMetric(0.0), PermutationMetric()):
        with pytest.raises(HdbenchError, match="no variance left after centring"):
            metric.fit_score(X, zero)
    # the Euclidean distance stays defined: the norm of the other system
    assert LinearMetric(score_method="euclidean").fit_score(X, zero) == pytest.approx(
        np.linalg.norm(centred(X)))
    assert LinearMetric(score_method="euclidean").fit_score(X, np.full_like(X, 2.0)) == \
        pytest.approx(np.linalg.norm(centred(X)))


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_a_constant_unit_contributes_nothing(alpha):
    X, Y = data(16, k=2)
    with_dead = np.hstack([Y, np.full((Y.shape[0], 1), 0.3)])
    d = LinearMetric(alpha).fit_score(X, with_dead)
    assert np.isfinite(d)
    if alpha == 1.0:
        assert d == pytest.approx(LinearMetric(alpha).fit_score(X, Y), abs=1e-12)


def test_fewer_conditions_than_units():
    rng = np.random.default_rng(17)
    X, Y = rng.standard_normal((10, 12)), rng.standard_normal((10, 12))
    assert 0 < LinearMetric(1.0).fit_score(X, Y) < np.pi / 2  # Procrustes stays defined
    for alpha in (0.0, 0.5):
        with pytest.raises(HdbenchError, match="degrees of freedom"):
            LinearMetric(alpha).fit_score(X, Y)
    with pytest.raises(HdbenchError, match="at least 2 conditions"):
        LinearMetric().fit_score(X[:1], Y[:1])


def test_shape_mismatches():
    X, Y = data(18, n=5), data(19, n=4)
    with pytest.raises(HdbenchError, match="same number of conditions"):
        LinearMetric().fit_score(X, Y[:-2])
    with pytest.raises(HdbenchError, match="zero_pad=True"):
        LinearMetric(zero_pad=False).fit_score(X, Y)
    with pytest.raises(HdbenchError, match="zero_pad=True"):
        PermutationMetric(zero_pad=False).fit_score(X, Y)
    metric = LinearMetric().fit(X, Y)
    with pytest.raises(HdbenchError, match="fitted on 5"):
        metric.score(Y, Y)
    with pytest.raises(HdbenchError, match="both X_test and Y_test"):
        metric.fit_score(X, Y, X_test=X)
    with pytest.raises(HdbenchError, match="2-D"):
        metric.fit_score(X[None], Y)


# -- reference implementation ---------------------------------------------------------------------

def netrep_recipe(X, Y, alpha, X_test, Y_test):
    """netrep's LinearMetric step by step: pad, centre, whiten the padded matrix, rotate, score."""
    n = max(X.shape[1], Y.shape[1])
    X, Y, X_test, Y_test = (np.hstack([M, np.zeros((M.shape[0], n - M.shape[1]))])
                            for M in (X, Y, X_test, Y_test))
    mx, my = X.mean(axis=0), Y.mean(axis=0)

    def whitener(Xc):
        lam, V = np.linalg.eigh(Xc.T @ Xc)
        lam = np.maximum(lam, 1e-7)
        c = np.sqrt(lam.sum() / np.sum((alpha * np.sqrt(lam) + 1 - alpha) ** 2))
        return (V * (c * (alpha + (1 - alpha) / np.sqrt(lam)))) @ V.T

    Zx, Zy = whitener(X - mx), whitener(Y - my)
    U, _, Vt = np.linalg.svd(((X - mx) @ Zx).T @ ((Y - my) @ Zy))
    scores = []
    for P, Q in ((X, Y), (X_test, Y_test)):
        A, B = (P - mx) @ Zx @ U, (Q - my) @ Zy @ Vt.T
        scores += [np.arccos(np.sum(A * B) / (np.linalg.norm(A) * np.linalg.norm(B))),
                   np.linalg.norm(A - B)]
    return scores


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.8, 1.0])
def test_matches_the_documented_netrep_recipe_with_padding(alpha):
    rng = np.random.default_rng(21)
    X, Y = rng.standard_normal((40, 7)), rng.standard_normal((40, 4))
    X_test, Y_test = rng.standard_normal((30, 7)), rng.standard_normal((30, 4))
    angular, euclidean = LinearMetric(alpha), LinearMetric(alpha, score_method="euclidean")
    ours = [angular.fit_score(X, Y), euclidean.fit_score(X, Y),
            angular.fit_score(X, Y, X_test, Y_test), euclidean.fit_score(X, Y, X_test, Y_test)]
    np.testing.assert_allclose(ours, netrep_recipe(X, Y, alpha, X_test, Y_test), atol=1e-10)


@pytest.mark.parametrize("alpha", [0.0, 0.25, 0.5, 0.75, 1.0])
@pytest.mark.parametrize("score_method", ["angular", "euclidean"])
def test_matches_netrep(alpha, score_method):
    metrics = pytest.importorskip("netrep.metrics")
    rng = np.random.default_rng(20)
    X, Y = rng.standard_normal((50, 6)), rng.standard_normal((50, 4)) @ rng.standard_normal((4, 5))
    X_test, Y_test = rng.standard_normal((30, 6)), rng.standard_normal((30, 5))
    theirs = metrics.LinearMetric(alpha=alpha, score_method=score_method)
    ours = LinearMetric(alpha=alpha, score_method=score_method)
    assert ours.fit_score(X, Y) == pytest.approx(theirs.fit(X, Y).score(X, Y), abs=1e-8)
    assert ours.fit_score(X, Y, X_test, Y_test) == pytest.approx(
        theirs.fit(X, Y).score(X_test, Y_test), abs=1e-8)
    theirs_p = metrics.PermutationMetric(score_method=score_method)
    ours_p = PermutationMetric(score_method=score_method)
    assert ours_p.fit_score(X, Y) == pytest.approx(theirs_p.fit(X, Y).score(X, Y), abs=1e-8)


@pytest.mark.parametrize("alpha", [0.5, 1.0])
def test_pairwise_matches_netrep_in_netreps_argument_order(alpha):
    multiset = pytest.importorskip("netrep.multiset")
    metrics = pytest.importorskip("netrep.metrics")
    rng = np.random.default_rng(22)
    Xs = [rng.standard_normal((40, 5)) for _ in range(3)]
    tests = [rng.standard_normal((30, 5)) for _ in range(3)]
    theirs = multiset.pairwise_distances(metrics.LinearMetric(alpha=alpha), Xs, tests,
                                         verbose=False)
    ours = pairwise_distances(LinearMetric(alpha=alpha), Xs, tests, verbose=False)
    for D_ours, D_theirs in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(D_ours, D_theirs, atol=1e-8)
