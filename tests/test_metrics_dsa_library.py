"""DSA cross-checked against the official library (``dsa-metric``, module ``DSA``).

Skipped when the library is not installed (``pip install -e .[dev]`` installs it). Every call
into the library gets a *copy* of the inputs, because the library

- rescales its inputs in place (float32 arrays come back altered, a fitted DSA object's models
  are overwritten by their unit-norm versions),
- converts float64 data to float32 silently,
- reports the squared eigenvalue 2-Wasserstein distance W₂² where hdbench reports W₂,
- uses the transpose of the optimal rotation in InputDSA's controllability comparison.

The last tests pin those defects down, so that the README's list is checked against the
installed version. Tolerances (absolute): 1e-5 on eigenvalue clouds, W₂ and the angular score at
a common rotation, the float32 precision of the library's fits.
"""

import numpy as np
import pytest
from scipy.stats import ortho_group

from hdbench.metrics import DSA, compare_dmd, havok_dmd
from hdbench.metrics.dynamics import DMDModel, _compare
from tests.dsa_systems import SETTINGS, trajectories

lib = pytest.importorskip("DSA")
torch = pytest.importorskip("torch")

TOL = 1e-5
PAIRS = [("rodent", "ctrnn0"), ("fly", "ctrnn1"), ("ctrnn0", "ctrnn1"), ("rodent", "fly")]


def library_operator(X) -> np.ndarray:
    """The library's HAVOK operator A_v (lamb=0, our delays and rank) as float64."""
    dmd = lib.DMD(np.array(X, copy=True), lamb=0, **SETTINGS)
    dmd.fit()
    return dmd.A_v.double().numpy()


def as_model(A) -> DMDModel:
    return DMDModel(A=A, B=None, singular_values=np.ones(A.shape[0]), n_delays=1,
                    delay_interval=1)


@pytest.mark.parametrize("name", ["rodent", "fly", "ctrnn0", "ctrnn1"])
def test_havok_operators_have_the_library_spectrum(name):
    """The eigenvalue clouds of our and the library's operators coincide (the operators
    themselves differ by the sign convention of singular vectors)."""
    X = trajectories()[name]
    ours = havok_dmd(X, **SETTINGS)
    theirs = as_model(library_operator(X))
    assert compare_dmd(ours, theirs, method="wasserstein") < TOL


@pytest.mark.parametrize("pair", PAIRS)
def test_wasserstein_is_the_square_root_of_the_library_score(pair):
    X, Y = (trajectories()[name] for name in pair)
    ours = DSA(comparison="wasserstein", **SETTINGS).fit_score(X, Y)
    theirs = lib.DSA(np.array(X, copy=True), np.array(Y, copy=True), lamb=0,
                     score_method="wasserstein", **SETTINGS).fit_score()
    assert ours > 0.01
    assert ours == pytest.approx(np.sqrt(float(theirs)), abs=TOL)


@pytest.mark.parametrize("pair", PAIRS[:2])
def test_angular_matches_the_library_objective_and_beats_its_optimiser(pair):
    """At our rotation the library's own angular formula gives our distance; the library's
    optimiser (Adam from two starts) ends at or above it."""
    X, Y = (trajectories()[name] for name in pair)
    ours = DSA(comparison="angular", seed=0, **SETTINGS).fit_score(X, Y)
    Ax, Ay = library_operator(X), library_operator(Y)
    on_their_operators, C = _compare(as_model(Ax), as_model(Ay), "angular", 100, 0)
    assert on_their_operators == pytest.approx(ours, abs=TOL)
    scorer = lib.SimilarityTransformDist(score_method="angular")
    scorer.C_star = torch.from_numpy(C).float()
    at_our_rotation = float(scorer.score(Ax.astype(np.float32), Ay.astype(np.float32)))
    assert at_our_rotation == pytest.approx(ours, abs=TOL)
    torch.manual_seed(0)
    optimised = float(lib.DSA(np.array(X, copy=True), np.array(Y, copy=True), lamb=0,
                              score_method="angular", **SETTINGS).fit_score())
    assert optimised >= ours - TOL


# -- the library's defects (README: "Dynamical similarity") ---------------------------------------

def test_library_rescales_its_inputs_in_place_and_computes_in_float32():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((4, 4)).astype(np.float32)
    B = rng.standard_normal((4, 4)).astype(np.float32)
    A_before = A.copy()
    lib.SimilarityTransformDist(score_method="angular", iters=5).fit_score(A, B)
    assert not np.array_equal(A, A_before)  # the caller's array was normalised
    np.testing.assert_allclose(A, A_before / np.linalg.norm(A_before), rtol=1e-6)
    X = np.array(trajectories()["ctrnn0"], copy=True)
    dmd = lib.DMD(X, lamb=0, **SETTINGS)
    dmd.fit()
    assert X.dtype == np.float64 and dmd.A_v.dtype == torch.float32


def test_a_fitted_library_dsa_object_has_its_models_overwritten():
    X, Y = (np.array(trajectories()[name], copy=True) for name in ("ctrnn0", "ctrnn1"))
    dsa = lib.DSA(X, Y, lamb=0, score_method="angular", iters=5, **SETTINGS)
    dsa.fit_dmds()
    norm_before = float(torch.linalg.norm(dsa.dmds[0][0].A_v))
    dsa.score()
    assert norm_before != pytest.approx(1.0)
    assert float(torch.linalg.norm(dsa.dmds[0][0].A_v)) == pytest.approx(1.0, abs=1e-6)


def test_library_controllability_comparison_uses_the_transposed_rotation():
    """(QAQᵀ, QB) is the same input-driven system in rotated coordinates: distance 0 in ours,
    clearly positive in the library's InputDSA comparison."""
    rng = np.random.default_rng(9)
    A, B = rng.standard_normal((4, 4)) / 2, rng.standard_normal((4, 2))
    Q = ortho_group.rvs(4, random_state=rng)
    x = DMDModel(A=A, B=B, singular_values=np.ones(4), n_delays=1, delay_interval=1)
    y = DMDModel(A=Q @ A @ Q.T, B=Q @ B, singular_values=np.ones(4), n_delays=1,
                 delay_interval=1)
    assert compare_dmd(x, y, method="controllability") == pytest.approx(0.0, abs=1e-6)
    comparison = lib.ControllabilitySimilarityTransformDist(score_method="angular")
    _, _, residual, theirs = comparison.compare_systems_procrustes(A1=A, B1=B, A2=Q @ A @ Q.T,
                                                                   B2=Q @ B)
    assert residual > 0.1 and theirs > 0.1
