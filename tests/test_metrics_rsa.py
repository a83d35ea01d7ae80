import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hdbench.errors import HdbenchError
from hdbench.metrics import rsa

PROPERTY = settings(max_examples=25, deadline=None)
seeds = st.integers(0, 2**32 - 1)
methods = st.sampled_from(rsa.COMPARE_METHODS)


def patterns(seed, conditions=12, units=8, folds=None):
    rng = np.random.default_rng(seed)
    signal = rng.standard_normal((conditions, units))
    if folds is None:
        return signal
    return signal + 0.5 * rng.standard_normal((folds, conditions, units))


def tied_model_rdm(n=12):
    """A model RDM with many ties: distance on a ring of n conditions (as for HD bins)."""
    idx = np.arange(n)
    gap = np.abs(idx[:, None] - idx[None, :])
    return np.minimum(gap, n - gap).astype(float)


# -- RDMs -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["correlation", "euclidean", "squared_euclidean"])
def test_rdms_are_symmetric_with_zero_diagonal(method):
    D = rsa.rdm(patterns(0), method)
    assert D.shape == (12, 12) and D.dtype == np.float64
    assert np.all(np.diag(D) == 0) and np.array_equal(D, D.T) and np.all(D >= 0)


def test_rdm_definitions():
    U = patterns(1)
    sq = ((U[:, None] - U[None]) ** 2).sum(-1) / U.shape[1]
    np.testing.assert_allclose(rsa.rdm(U, "squared_euclidean"), sq, atol=1e-12)
    np.testing.assert_allclose(rsa.rdm(U, "euclidean"), np.sqrt(sq), atol=1e-12)
    np.testing.assert_allclose(rsa.rdm(U, "correlation"), 1 - np.corrcoef(U), atol=1e-12)


def test_cross_validated_euclidean_is_unbiased():
    rng = np.random.default_rng(2)
    signal = rng.standard_normal((6, 50))
    true = rsa.rdm(signal, "squared_euclidean")
    noisy = signal + rng.standard_normal((400, 3, 6, 50))  # 400 repetitions of 3 splits
    cv = np.mean([rsa.rdm(folds, "cv_euclidean") for folds in noisy], axis=0)
    naive = np.mean([rsa.rdm(folds.mean(0), "squared_euclidean") for folds in noisy], axis=0)
    off = ~np.eye(6, dtype=bool)
    assert np.max(np.abs(cv - true)[off]) < 0.05
    assert np.min((naive - true)[off]) > 0.5  # the plug-in estimate is biased upwards
    # identical splits: cross-validation changes nothing
    np.testing.assert_allclose(rsa.rdm(np.stack([signal] * 2), "cv_euclidean"), true, atol=1e-12)
    eye = np.eye(50)
    np.testing.assert_allclose(rsa.rdm(noisy[0], "crossnobis", noise_precision=eye),
                               rsa.rdm(noisy[0], "cv_euclidean"), atol=1e-12)


@pytest.mark.parametrize("method", ["correlation", "squared_euclidean"])
def test_rdms_match_rsatoolbox(method):
    rsatoolbox = pytest.importorskip("rsatoolbox")
    U = patterns(3)
    theirs = rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(U),
                                     method={"squared_euclidean": "euclidean"}.get(method, method))
    np.testing.assert_allclose(rsa.rdm(U, method), theirs.get_matrices()[0], atol=1e-10)


@pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")
@pytest.mark.parametrize("n_folds", [2, 3])
@pytest.mark.parametrize("with_noise", [False, True])
def test_crossnobis_matches_rsatoolbox(n_folds, with_noise):
    rsatoolbox = pytest.importorskip("rsatoolbox")
    folds = patterns(4, folds=n_folds)
    rng = np.random.default_rng(5)
    A = rng.standard_normal((8, 8))
    precision = A @ A.T / 8 + np.eye(8) if with_noise else None
    n_folds, n_cond, n_units = folds.shape
    data = rsatoolbox.data.Dataset(
        folds.reshape(-1, n_units),
        obs_descriptors={"conds": np.tile(np.arange(n_cond), n_folds),
                         "fold": np.repeat(np.arange(n_folds), n_cond)})
    theirs = rsatoolbox.rdm.calc_rdm(data, method="crossnobis", descriptor="conds",
                                     cv_descriptor="fold", noise=precision)
    ours = rsa.rdm(folds, "crossnobis", noise_precision=precision) if with_noise \
        else rsa.rdm(folds, "cv_euclidean")
    np.testing.assert_allclose(ours, theirs.get_matrices()[0], atol=1e-10)


# -- comparisons ----------------------------------------------------------------------------------

@PROPERTY
@given(seed=seeds, method=methods)
def test_comparisons_are_symmetric_bounded_and_one_on_itself(seed, method):
    D1 = rsa.rdm(patterns(seed), "squared_euclidean")
    D2 = rsa.rdm(patterns(seed + 1), "squared_euclidean")
    value = rsa.compare(D1, D2, method)
    assert -1.0 <= value <= 1.0
    assert rsa.compare(D2, D1, method) == pytest.approx(value, abs=1e-12)
    assert rsa.compare(D1, D1, method) == pytest.approx(1.0, abs=1e-12)
    # condensed vectors are accepted
    upper = np.triu_indices(12, k=1)
    assert rsa.compare(D1[upper], D2[upper], method) == pytest.approx(value, abs=1e-12)


@PROPERTY
@given(seed=seeds, scale=st.floats(1e-3, 1e3))
def test_comparisons_ignore_the_rdm_scale(seed, scale):
    D1, D2 = (rsa.rdm(patterns(seed + k), "correlation") for k in (0, 1))
    for method in rsa.COMPARE_METHODS:
        assert rsa.compare(D1, scale * D2, method) == pytest.approx(rsa.compare(D1, D2, method),
                                                                    abs=1e-10)


def test_whitened_cosine_matches_the_explicit_covariance_formula():
    """v1ᵀ V⁻¹ v2 / sqrt(...) with V = (C Cᵀ)∘(C Cᵀ), C the pairwise contrasts (Σ_k = I)."""
    n = 7
    rows, cols = np.triu_indices(n, k=1)
    C = np.zeros((rows.size, n))
    C[np.arange(rows.size), rows], C[np.arange(rows.size), cols] = 1.0, -1.0
    V = (C @ C.T) ** 2
    v1 = rsa.rdm(patterns(6, conditions=n), "squared_euclidean")[rows, cols]
    v2 = rsa.rdm(patterns(7, conditions=n), "correlation")[rows, cols]

    def inner(a, b):
        return a @ np.linalg.solve(V, b)

    expected = inner(v1, v2) / np.sqrt(inner(v1, v1) * inner(v2, v2))
    assert rsa.compare(v1, v2, "whitened_cosine") == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("method", rsa.COMPARE_METHODS)
def test_comparisons_match_rsatoolbox(method):
    rsatoolbox = pytest.importorskip("rsatoolbox")
    theirs_name = {"pearson": "corr", "tau_a": "tau-a", "whitened_cosine": "cosine_cov"}
    data = rsa.rdm(patterns(8, folds=2), "cv_euclidean")  # has negative entries
    for other in (tied_model_rdm(), rsa.rdm(patterns(9), "correlation")):
        rdms = [rsatoolbox.rdm.RDMs(D[np.triu_indices(12, k=1)][None]) for D in (data, other)]
        expected = rsatoolbox.rdm.compare(rdms[0], rdms[1],
                                          method=theirs_name.get(method, method))[0, 0]
        assert rsa.compare(data, other, method) == pytest.approx(expected, abs=1e-10)


def test_tau_a_counts_ties_as_neither_concordant_nor_discordant():
    a = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    b = np.array([1.0, 1.0, 2.0, 2.0, 3.0, 3.0])  # 3 tied pairs out of 15
    assert rsa.compare(a, b, "tau_a") == pytest.approx(12 / 15)
    assert rsa.compare(a, a[::-1], "tau_a") == pytest.approx(-1.0)


# -- degenerate input -----------------------------------------------------------------------------

def test_rdm_errors():
    U = patterns(10)
    flat = U.copy()
    flat[3] = 2.0
    with pytest.raises(HdbenchError, match=r"condition\(s\) \[3\]"):
        rsa.rdm(flat, "correlation")
    bad = U.copy()
    bad[0, 0] = np.inf
    with pytest.raises(HdbenchError, match="NaN or inf"):
        rsa.rdm(bad)
    with pytest.raises(HdbenchError, match="RDM method"):
        rsa.rdm(U, "mahalanobis")
    with pytest.raises(HdbenchError, match="2-D"):
        rsa.rdm(np.stack([U, U]), "correlation")
    with pytest.raises(HdbenchError, match="splits >= 2"):
        rsa.rdm(U[None], "cv_euclidean")
    with pytest.raises(HdbenchError, match="noise_precision is required"):
        rsa.rdm(np.stack([U, U]), "crossnobis")
    with pytest.raises(HdbenchError, match="noise_precision is required"):
        rsa.rdm(np.stack([U, U]), "cv_euclidean", noise_precision=np.eye(8))
    with pytest.raises(HdbenchError, match=r"\[8, 8\]"):
        rsa.rdm(np.stack([U, U]), "crossnobis", noise_precision=np.eye(7))
    with pytest.raises(HdbenchError, match="symmetric"):
        rsa.rdm(np.stack([U, U]), "crossnobis", noise_precision=np.triu(np.ones((8, 8))))


def test_compare_errors():
    D = rsa.rdm(patterns(11), "squared_euclidean")
    constant = np.ones((12, 12)) - np.eye(12)
    for method in ("pearson", "spearman", "tau_a"):
        with pytest.raises(HdbenchError, match="rdm2 is constant"):
            rsa.compare(D, constant, method)
    for method in ("cosine", "whitened_cosine"):
        with pytest.raises(HdbenchError, match="rdm1 is all zero"):
            rsa.compare(np.zeros((12, 12)), D, method)
    with pytest.raises(HdbenchError, match="different numbers of conditions"):
        rsa.compare(D, D[:10, :10])
    with pytest.raises(HdbenchError, match="not symmetric"):
        rsa.compare(D + np.triu(np.ones((12, 12))), D)
    with pytest.raises(HdbenchError, match="upper triangle"):
        rsa.compare(np.arange(5.0), np.arange(5.0))
    nan = D.copy()
    nan[1, 2] = nan[2, 1] = np.nan
    with pytest.raises(HdbenchError, match="NaN or inf"):
        rsa.compare(nan, D)
    with pytest.raises(HdbenchError, match="comparison method"):
        rsa.compare(D, D, "bures")
