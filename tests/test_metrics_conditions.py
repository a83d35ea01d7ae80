import numpy as np
import pytest

from hdbench.errors import HdbenchError
from hdbench.metrics import (
    LinearMetric,
    cka,
    conditions,
    dynamical_similarity,
    pairwise_distances,
    rsa,
)
from hdbench.system import Activity
from hdbench.task import make_trials


def activity(rates, heading, av=None):
    trials, steps = heading.shape
    return Activity(rates=rates, outputs=np.zeros((trials, steps, 2)),
                    inputs=np.zeros((trials, steps, 3)), heading=heading, av=av)


def ring_activity(seed=0, trials=8, steps=400, units=10, n_bins=12):
    """Units whose rate is a function of the heading bin only, plus the trial's parity."""
    rng = np.random.default_rng(seed)
    heading = rng.uniform(0, 2 * np.pi, (trials, steps))
    av = rng.normal(0, 0.05, (trials, steps))
    table = rng.uniform(0, 1, (n_bins, units))
    rates = table[np.floor(heading / (2 * np.pi / n_bins)).astype(int)]
    rates = rates + 10.0 * (np.arange(trials) % 2)[:, None, None]
    return activity(rates, heading, av), table


def test_tuning_matrices_recover_the_tuning_on_even_and_odd_trials():
    act, table = ring_activity()
    tm = conditions.tuning_matrices(act, n_hd_bins=12)
    assert tm.splits.shape == (2, 12, 10) and tm.splits.dtype == np.float64
    np.testing.assert_allclose(tm.splits[0], table, atol=1e-12)  # even trials
    np.testing.assert_allclose(tm.splits[1], table + 10.0, atol=1e-12)  # odd trials
    assert tm.counts.sum() == 8 * 400 and tm.av_edges is None
    np.testing.assert_allclose(tm.mean, table + 10 * tm.counts[1][:, None] / tm.counts.sum(0)[:,
                               None], atol=1e-12)
    np.testing.assert_allclose(tm.hd_centers, (np.arange(12) + 0.5) * 2 * np.pi / 12)


def test_hd_by_av_conditions_are_hd_major():
    act, table = ring_activity(steps=2000)
    tm = conditions.tuning_matrices(act, n_hd_bins=12, av_bins=3)
    assert tm.splits.shape == (2, 36, 10) and tm.av_edges.size == 4
    np.testing.assert_allclose(tm.splits[0, 3 * 5 + 2], table[5], atol=1e-12)
    edges = np.array([-0.02, 0.0, 0.02])  # explicit edges drop the tails
    tm = conditions.tuning_matrices(act, n_hd_bins=12, av_bins=edges)
    inside = np.sum(np.abs(act.av) <= 0.02)
    assert tm.counts.sum() == inside and tm.splits.shape == (2, 24, 10)


def test_skip_steps_and_trajectories():
    act, _ = ring_activity(trials=4, steps=50)
    tm = conditions.tuning_matrices(act, n_hd_bins=4, skip_steps=10)
    assert tm.counts.sum() == 4 * 40
    states, av = conditions.population_trajectories(act, skip_steps=10)
    assert states.shape == (4, 40, 10) and av.shape == (4, 40) and states.dtype == np.float64
    np.testing.assert_array_equal(states, act.rates[:, 10:])


def test_tuning_matrix_errors():
    act, _ = ring_activity(trials=2, steps=30)
    with pytest.raises(HdbenchError, match="no samples in trial split"):
        conditions.tuning_matrices(act, n_hd_bins=72)
    with pytest.raises(HdbenchError, match="at least 2 trials"):
        conditions.tuning_matrices(activity(act.rates[:1], act.heading[:1]), n_hd_bins=4)
    with pytest.raises(HdbenchError, match="no true heading"):
        conditions.tuning_matrices(Activity(rates=act.rates, outputs=act.outputs,
                                            inputs=act.inputs))
    with pytest.raises(HdbenchError, match="need activity.av"):
        conditions.tuning_matrices(activity(act.rates, act.heading), av_bins=3)
    with pytest.raises(HdbenchError, match="n_hd_bins"):
        conditions.tuning_matrices(act, n_hd_bins=1)
    with pytest.raises(HdbenchError, match="skip_steps"):
        conditions.tuning_matrices(act, skip_steps=30)
    zeros = activity(act.rates, act.heading, np.zeros_like(act.av))
    with pytest.raises(HdbenchError, match="collapse"):
        conditions.tuning_matrices(zeros, n_hd_bins=2, av_bins=3)
    with pytest.raises(HdbenchError, match="strictly increasing"):
        conditions.tuning_matrices(act, n_hd_bins=2, av_bins=[0.1, 0.0])
    nan = act.rates.copy()
    nan[0, 0, 0] = np.nan
    with pytest.raises(HdbenchError, match="NaN or inf"):
        conditions.tuning_matrices(activity(nan, act.heading), n_hd_bins=2)


def test_align_dimensions_by_pca():
    rng = np.random.default_rng(1)
    fit = rng.standard_normal((30, 3)) @ rng.standard_normal((3, 12))
    splits = np.stack([fit, fit + 0.1 * rng.standard_normal((30, 12))])
    projected, single = conditions.align_dimensions([splits, fit], method="pca", k=3)
    assert projected.shape == (2, 30, 3) and single.shape == (30, 3)
    np.testing.assert_allclose(projected[0], single)
    np.testing.assert_allclose(projected[0].mean(axis=0), 0.0, atol=1e-12)
    cov = projected[0].T @ projected[0]
    np.testing.assert_allclose(cov, np.diag(np.diag(cov)), atol=1e-9)  # principal axes
    assert np.all(np.diff(np.diag(cov)) <= 0)
    # k PCs of a rank-3 system keep all of its shape
    assert LinearMetric().fit_score(single, fit) == pytest.approx(0.0, abs=1e-6)


def test_align_dimensions_by_zero_padding_and_errors():
    a, b = np.ones((2, 5, 3)), np.ones((5, 7))
    padded = conditions.align_dimensions([a, b], method="zero_pad")
    assert padded[0].shape == (2, 5, 7) and padded[1].shape == (5, 7)
    assert np.all(padded[0][..., 3:] == 0)
    with pytest.raises(HdbenchError, match="k=None"):
        conditions.align_dimensions([a, b], method="zero_pad", k=3)
    with pytest.raises(HdbenchError, match="positive integer k"):
        conditions.align_dimensions([a, b], method="pca")
    with pytest.raises(HdbenchError, match="k=5 PCs"):
        conditions.align_dimensions([b], method="pca", k=5)
    with pytest.raises(HdbenchError, match="alignment method"):
        conditions.align_dimensions([b], method="ica", k=2)
    with pytest.raises(HdbenchError, match="non-empty list"):
        conditions.align_dimensions([], k=2)


def test_end_to_end_on_trained_model_sized_systems():
    """Two CTRNN instances on the same trials: every metric returns a finite float."""
    from hdbench.models import build

    trials = make_trials("cueva-3x", 16, seed=0)
    acts = [build("ctrnn", n_units=n, init_seed=s).simulate(trials)
            for n, s in ((30, 0), (20, 1))]
    tms = [conditions.tuning_matrices(a, n_hd_bins=8, skip_steps=10) for a in acts]
    fit, test = zip(*(tm.splits for tm in tms), strict=True)
    D, D_test = pairwise_distances(LinearMetric(alpha=1.0), list(fit), test_data=list(test),
                                   verbose=False)
    assert np.all(np.isfinite(D)) and np.all(np.isfinite(D_test))
    reduced = conditions.align_dimensions([tm.splits for tm in tms], method="pca", k=4)
    d_cv = LinearMetric(alpha=0.5).fit_score(reduced[0][0], reduced[1][0], reduced[0][1],
                                             reduced[1][1])
    assert 0.0 <= d_cv <= np.pi
    assert 0.0 <= cka(tms[0].mean, tms[1].mean) <= 1.0
    r0, r1 = (rsa.rdm(tm.splits, "cv_euclidean") for tm in tms)
    assert -1.0 <= rsa.compare(r0, r1, "whitened_cosine") <= 1.0
    (x, _), (y, _) = (conditions.population_trajectories(a, skip_steps=10) for a in acts)
    d = dynamical_similarity(x, y, method="wasserstein", n_delays=2, rank=4)
    assert np.isfinite(d)
