"""Representation-family benchmarks: population geometry of HD × AV tuning.

Both systems' mean rates over the same conditions (24 heading × 3 AV bins of the evaluation
trials, two independent trial splits; :func:`hdbench.scoring.measures.tuning_conditions`) are
compared without matching units. The cross-validated angular Procrustes distance is the
primary, ranked metric (metrics.md §8.2); debiased CKA and RSA are the secondary ones.
"""

from __future__ import annotations

from hdbench.scoring.benchmark import Benchmark, register
from hdbench.scoring.measures import tuning_conditions

WILLIAMS_2021 = ("Williams, Kunz, Kornblith & Linderman (2021) Generalized shape metrics on "
                 "neural representations. NeurIPS.")
KORNBLITH_2019 = ("Kornblith, Norouzi, Lee & Hinton (2019) Similarity of neural network "
                  "representations revisited. ICML.")
KRIEGESKORTE_2008 = ("Kriegeskorte, Mur & Bandettini (2008) Representational similarity "
                     "analysis - connecting the branches of systems neuroscience. Front Syst "
                     "Neurosci 2:4; Walther et al. (2016) Reliability of dissimilarity measures "
                     "for multi-voxel pattern analysis. NeuroImage 137:188-200.")


def procrustes_distance(subject, reference) -> float:
    """Angular Procrustes distance fitted on one trial split and scored on the other, averaged
    over both directions (rad, 0 … π)."""
    from hdbench.metrics import LinearMetric

    X, Y = tuning_conditions(subject).splits, tuning_conditions(reference).splits
    metric = LinearMetric(alpha=1.0, score_method="angular")
    return 0.5 * (metric.fit_score(X[0], Y[0], X[1], Y[1])
                  + metric.fit_score(X[1], Y[1], X[0], Y[0]))


def cka_similarity(subject, reference) -> float:
    """Debiased linear CKA of the condition means (≈ 0 unrelated, 1 identical up to rotation
    and scale)."""
    from hdbench.metrics import cka

    return cka(tuning_conditions(subject).mean, tuning_conditions(reference).mean,
               kernel="linear", debiased=True)


def rsa_similarity(subject, reference) -> float:
    """Spearman correlation of the cross-validated Euclidean RDMs (split 0 × split 1)."""
    from hdbench.metrics import rsa

    return rsa.compare(rsa.rdm(tuning_conditions(subject).splits, "cv_euclidean"),
                       rsa.rdm(tuning_conditions(reference).splits, "cv_euclidean"),
                       "spearman")


_CONDITIONS = "mean rate per (24 heading x 3 AV bins) condition after the cue"

REPRESENTATION_BENCHMARKS = (
    Benchmark(family="representation", name="procrustes", score_fn=procrustes_distance,
              higher_is_better=False,
              measurement=_CONDITIONS + ", on even and odd trials",
              comparison="angular Procrustes shape distance (rad), rotation fitted on one "
                         "split and scored on the other, both ways averaged",
              citation=WILLIAMS_2021),
    Benchmark(family="representation", name="cka", score_fn=cka_similarity,
              higher_is_better=True,
              measurement=_CONDITIONS,
              comparison="debiased linear centred kernel alignment",
              citation=KORNBLITH_2019),
    Benchmark(family="representation", name="rsa", score_fn=rsa_similarity,
              higher_is_better=True,
              measurement="cross-validated squared-Euclidean RDM of the " + _CONDITIONS
                          + " (even x odd trials)",
              comparison="Spearman correlation of the two RDMs",
              citation=KRIEGESKORTE_2008),
)

for _bench in REPRESENTATION_BENCHMARKS:
    register(_bench, replace=True)
