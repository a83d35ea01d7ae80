"""asv benchmarks of the similarity metrics (hdbench.metrics).

- ``PairwiseShape``: the K × K shape-distance matrix of K systems of 100 units on 72 HD × 10 AV
  conditions (the leaderboard's model zoo); target: K = 50 in <= 10 s on 2 cores.
- ``ModelVsReference``: every metric once on a model-vs-reference-sized pair (100 vs 64 units;
  trajectories of 16 trials × 200 steps for DSA).

BLAS is pinned to one thread during every benchmark: on a shared 2-core machine threaded BLAS
on these small matrices is 3-20x slower and far noisier, and ``pairwise_distances`` parallelises
across pairs itself (joblib threads). Run ``python benchmarks/bench_metrics.py`` for a plain
timing table without asv.
"""

import functools
import time

import numpy as np
from threadpoolctl import threadpool_limits

from hdbench.metrics import (
    LinearMetric,
    PermutationMetric,
    cka,
    conditions,
    dynamical_similarity,
    pairwise_distances,
    rsa,
)

N_HD, N_AV = 72, 10
MODEL_UNITS, REFERENCE_UNITS = 100, 64
METRICS = {
    "procrustes": lambda: LinearMetric(alpha=1.0),
    "alpha_0.5": lambda: LinearMetric(alpha=0.5),
    "permutation": lambda: PermutationMetric(),
}


def tuning(seed: int, n_units: int, n_splits: int = 2) -> np.ndarray:
    """Synthetic HD × AV tuning ``[splits, 720, units]``: von Mises bumps with AV gain + noise."""
    rng = np.random.default_rng(seed)
    hd = np.repeat(np.linspace(0, 2 * np.pi, N_HD, endpoint=False), N_AV)[:, None]
    av = np.tile(np.linspace(-1, 1, N_AV), N_HD)[:, None]
    preferred = rng.uniform(0, 2 * np.pi, n_units)
    gain = 1.0 + 0.3 * rng.standard_normal(n_units) * av
    signal = np.exp(2.0 * (np.cos(hd - preferred) - 1.0)) * gain
    return signal + 0.05 * rng.standard_normal((n_splits, N_HD * N_AV, n_units))


def trajectories(seed: int, n_units: int, trials: int = 16, steps: int = 200) -> np.ndarray:
    """A bump drifting with a random AV, read out by ``n_units`` HD-tuned units."""
    rng = np.random.default_rng(seed)
    heading = np.cumsum(rng.normal(0, 0.05, (trials, steps)), axis=1)[..., None]
    heading = heading + rng.uniform(0, 2 * np.pi, (trials, 1, 1))
    preferred = rng.uniform(0, 2 * np.pi, n_units)
    return np.exp(2.0 * (np.cos(heading - preferred) - 1.0)) \
        + 0.01 * rng.standard_normal((trials, steps, n_units))


class _SingleThreadedBLAS:
    """Pins BLAS to one thread from ``setup`` to ``teardown``."""

    def setup(self, *params):
        self._blas = threadpool_limits(limits=1, user_api="blas")

    def teardown(self, *params):
        self._blas.restore_original_limits()


class PairwiseShape(_SingleThreadedBLAS):
    """All pairwise shape distances of a set of 100-unit systems on 720 conditions."""

    params = ([5, 50], list(METRICS))
    param_names = ["n_systems", "metric"]
    timeout = 120

    def setup(self, n_systems, metric):
        super().setup()
        self.fit = [tuning(k, MODEL_UNITS, n_splits=1)[0] for k in range(n_systems)]
        self.test = [tuning(k + 1000, MODEL_UNITS, n_splits=1)[0] for k in range(n_systems)]
        self.metric = METRICS[metric]()

    def time_in_sample(self, n_systems, metric):
        pairwise_distances(self.metric, self.fit, verbose=False)

    def time_cross_validated(self, n_systems, metric):
        pairwise_distances(self.metric, self.fit, test_data=self.test, verbose=False)


class ModelVsReference(_SingleThreadedBLAS):
    """One model (100 units) against one reference (64 units) with every metric."""

    def setup(self):
        super().setup()
        self.model = tuning(1, MODEL_UNITS)
        self.reference = tuning(2, REFERENCE_UNITS)
        self.model_traj = trajectories(3, MODEL_UNITS)
        self.reference_traj = trajectories(4, REFERENCE_UNITS)

    def time_procrustes_cross_validated(self):
        LinearMetric(alpha=1.0).fit_score(self.model[0], self.reference[0], self.model[1],
                                          self.reference[1])

    def time_alpha_half_on_10_pcs_cross_validated(self):
        m, r = conditions.align_dimensions([self.model, self.reference], method="pca", k=10)
        LinearMetric(alpha=0.5).fit_score(m[0], r[0], m[1], r[1])

    def time_permutation(self):
        PermutationMetric().fit_score(self.model[0], self.reference[0])

    def time_cka_linear(self):
        cka(self.model[0], self.reference[0])

    def time_cka_linear_debiased(self):
        cka(self.model[0], self.reference[0], debiased=True)

    def time_cka_rbf_debiased(self):
        cka(self.model[0], self.reference[0], kernel="rbf", debiased=True)

    def time_rsa_crossnobis_whitened_cosine(self):
        rsa.compare(rsa.rdm(self.model, "cv_euclidean"), rsa.rdm(self.reference, "cv_euclidean"),
                    "whitened_cosine")

    def time_rsa_correlation_tau_a(self):
        rsa.compare(rsa.rdm(self.model[0]), rsa.rdm(self.reference[0]), "tau_a")

    def time_dsa_wasserstein(self):
        dynamical_similarity(self.model_traj, self.reference_traj, method="wasserstein",
                             n_delays=5, rank=10)

    def time_dsa_angular(self):
        dynamical_similarity(self.model_traj, self.reference_traj, method="angular", n_delays=5,
                             rank=10, seed=0)


def _best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(repeat: int = 3) -> None:
    """Print the best-of-``repeat`` wall time of every benchmark (no asv needed)."""
    rows = []
    for n_systems, metric in [(n, m) for n in PairwiseShape.params[0]
                              for m in PairwiseShape.params[1]]:
        bench = PairwiseShape()
        bench.setup(n_systems, metric)
        for name in ("time_in_sample", "time_cross_validated"):
            call = functools.partial(getattr(bench, name), n_systems, metric)
            reps = 1 if n_systems >= 50 else repeat
            rows.append((f"PairwiseShape.{name}({n_systems}, {metric})", _best_of(call, reps)))
        bench.teardown(n_systems, metric)
    bench = ModelVsReference()
    bench.setup()
    for name in sorted(n for n in dir(bench) if n.startswith("time_")):
        rows.append((f"ModelVsReference.{name}", _best_of(getattr(bench, name), repeat)))
    bench.teardown()
    width = max(len(name) for name, _ in rows)
    for name, seconds in rows:
        print(f"{name:<{width}}  {seconds:8.3f} s")


if __name__ == "__main__":
    main()
