import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist
from scipy.stats import ortho_group

from hdbench.errors import HdbenchError
from hdbench.metrics import cka, rsa
from hdbench.metrics.kernel_alignment import cka_distance

PROPERTY = settings(max_examples=25, deadline=None)
seeds = st.integers(0, 2**32 - 1)
kernels = st.sampled_from(["linear", "rbf"])


def pair(seed, m=30, nx=5, ny=4):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, nx))
    Y = X[:, :min(nx, ny)] @ rng.standard_normal((min(nx, ny), ny)) + rng.standard_normal((m, ny))
    return X, Y


def song_hsic(K, L):
    """Song et al. (2012) unbiased HSIC, eq. (5), written out independently of the module."""
    m = K.shape[0]
    K, L = K - np.diag(np.diag(K)), L - np.diag(np.diag(L))
    one = np.ones(m)
    return (np.trace(K @ L) + (one @ K @ one) * (one @ L @ one) / ((m - 1) * (m - 2))
            - 2.0 / (m - 2) * one @ K @ L @ one) / (m * (m - 3))


def gretton_hsic(K, L):
    m = K.shape[0]
    H = np.eye(m) - 1.0 / m
    return np.trace(K @ H @ L @ H) / (m - 1) ** 2


def rbf(X, t):
    sq = cdist(X, X, "sqeuclidean")
    return np.exp(-sq / (2 * t**2 * np.median(sq)))


@PROPERTY
@given(seed=seeds, kernel=kernels)
def test_biased_cka_lies_in_unit_interval_and_is_one_on_itself(seed, kernel):
    X, Y = pair(seed)
    value = cka(X, Y, kernel)
    assert 0.0 <= value <= 1.0
    assert cka(X, X, kernel) == pytest.approx(1.0, abs=1e-12)
    assert cka(X, X, kernel, debiased=True) == pytest.approx(1.0, abs=1e-12)
    assert cka_distance(X, X, kernel) == pytest.approx(0.0, abs=1e-6)


@PROPERTY
@given(seed=seeds, kernel=kernels, debiased=st.booleans(), scale=st.floats(1e-3, 1e3))
def test_symmetric_and_invariant_to_rotation_scaling_and_translation(seed, kernel, debiased,
                                                                      scale):
    X, Y = pair(seed)
    Q = ortho_group.rvs(Y.shape[1], random_state=np.random.default_rng(seed))
    base = cka(X, Y, kernel, debiased)
    assert cka(Y, X, kernel, debiased) == pytest.approx(base, abs=1e-10)
    assert cka(X, scale * Y @ Q + 7.0, kernel, debiased) == pytest.approx(base, abs=1e-9)


@pytest.mark.parametrize("kernel, t", [("linear", 1.0), ("rbf", 1.0), ("rbf", 0.5)])
@pytest.mark.parametrize("debiased", [False, True])
def test_matches_the_textbook_estimators(kernel, t, debiased):
    X, Y = pair(1, m=25, nx=6, ny=3)
    K, L = (Z @ Z.T for Z in (X, Y)) if kernel == "linear" else (rbf(X, t), rbf(Y, t))
    hsic = song_hsic if debiased else gretton_hsic
    expected = hsic(K, L) / np.sqrt(hsic(K, K) * hsic(L, L))
    assert cka(X, Y, kernel, debiased, bandwidth=t) == pytest.approx(expected, rel=1e-10)


def test_debiasing_removes_the_finite_sample_inflation():
    rng = np.random.default_rng(2)
    X, Y = rng.standard_normal((60, 40)), rng.standard_normal((60, 40))
    assert cka(X, Y) > 0.3  # biased: inflated for independent data
    assert abs(cka(X, Y, debiased=True)) < 0.1
    assert abs(cka(X, Y, "rbf", debiased=True, bandwidth=0.5)) < 0.1


def test_angular_form():
    X, Y = pair(3)
    assert cka_distance(X, Y) == pytest.approx(np.arccos(cka(X, Y)))
    assert cka_distance(X, Y, "rbf", True) == pytest.approx(np.arccos(cka(X, Y, "rbf", True)))


def test_linear_cka_equals_whitened_cosine_of_squared_euclidean_rdms():
    X, Y = pair(4, m=20, nx=7, ny=9)
    rdm_x, rdm_y = rsa.rdm(X, "squared_euclidean"), rsa.rdm(Y, "squared_euclidean")
    assert rsa.compare(rdm_x, rdm_y, "whitened_cosine") == pytest.approx(cka(X, Y), rel=1e-10)


def test_linear_cka_equals_rsatoolbox_cosine_cov_on_squared_euclidean_rdms():
    rsatoolbox = pytest.importorskip("rsatoolbox")
    X, Y = pair(5, m=20, nx=7, ny=9)
    rdms = [rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(Z), method="euclidean")
            for Z in (X, Y)]
    theirs = rsatoolbox.rdm.compare(rdms[0], rdms[1], method="cosine_cov")[0, 0]
    assert cka(X, Y) == pytest.approx(theirs, rel=1e-8)


def test_degenerate_input():
    X, Y = pair(6)
    dead_unit = np.hstack([Y, np.full((Y.shape[0], 1), 0.2)])
    for kernel in ("linear", "rbf"):
        assert cka(X, dead_unit, kernel, True) == pytest.approx(cka(X, Y, kernel, True))
    wide = np.random.default_rng(7).standard_normal((X.shape[0], 100))  # units > conditions
    assert 0.0 <= cka(X, wide) <= 1.0
    with pytest.raises(HdbenchError, match="constant"):
        cka(X, np.ones_like(Y))
    with pytest.raises(HdbenchError, match="constant"):
        cka(np.zeros_like(X), Y, "rbf", True)
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(HdbenchError, match="NaN or inf"):
        cka(bad, Y)
    with pytest.raises(HdbenchError, match="same number of conditions"):
        cka(X, Y[:-1])
    with pytest.raises(HdbenchError, match="at least 4 conditions"):
        cka(X[:3], Y[:3], debiased=True)
    with pytest.raises(HdbenchError, match="kernel"):
        cka(X, Y, kernel="poly")
    with pytest.raises(HdbenchError, match="bandwidth"):
        cka(X, Y, "rbf", bandwidth=0.0)
    duplicated = np.vstack([np.repeat(X[:1], 22, axis=0), X[1:9]])  # most pairs identical
    with pytest.raises(HdbenchError, match="median squared distance"):
        cka(duplicated, Y, "rbf")


def test_overflowing_and_complex_inputs_are_refused():
    import numpy as np
    import pytest

    from hdbench.errors import HdbenchError
    from hdbench.metrics import LinearMetric, cka

    X = np.random.default_rng(0).normal(size=(20, 5))
    for bad, message in ((X * 1e300, "overflow float64"), (X + 1j, "complex")):
        with pytest.raises(HdbenchError, match=message):
            cka(bad, X)
        with pytest.raises(HdbenchError, match=message):
            LinearMetric().fit_score(bad, X)
