"""Task-family benchmarks: how well a system estimates heading on the reference's task.

They measure each system alone (the reference bundle is not used): the ceiling is the reference
circuit's own error, the floor an untrained network's, so a normalised 1 means "integrates as
well as the reference circuit". Lower NE is better. They work for any system with (sin, cos)
outputs: trained models and reference circuits alike.
"""

from __future__ import annotations

from hdbench.scoring.benchmark import Benchmark, register
from hdbench.training.losses import normalized_error

CUEVA_2020 = ("Cueva, Wang, Chin & Wei (2020) Emergence of functional and structural properties "
              "of the head direction system by optimization of recurrent neural networks. ICLR.")


def _ne(bundle, trial_set: str) -> float:
    trials = bundle.trials(trial_set)
    return normalized_error(bundle.activity(trial_set).outputs, trials.targets, trials.mask)


def ne_test_trials(subject, reference) -> float:
    """NE on the held-out evaluation trials of the reference's task."""
    return _ne(subject, "test")


def ne_long_trials(subject, reference) -> float:
    """NE on trials twice as long as the task's (heading must be held for longer)."""
    return _ne(subject, "long")


def ne_noisy_av(subject, reference) -> float:
    """NE when Gaussian noise is added to the AV input (targets follow the clean AV)."""
    return _ne(subject, "av_noise")


TASK_BENCHMARKS = (
    Benchmark(family="task", name="test-ne", score_fn=ne_test_trials, higher_is_better=False,
              measurement="normalised error (NE) of the heading readout on held-out trials of "
                          "the reference's task",
              comparison="the system's own NE (ceiling: the reference circuit's NE)",
              citation=CUEVA_2020),
    Benchmark(family="task", name="generalisation-ne", score_fn=ne_long_trials,
              higher_is_better=False,
              measurement="NE on trials 2x longer than the task's",
              comparison="the system's own NE (ceiling: the reference circuit's NE)",
              citation=CUEVA_2020),
    Benchmark(family="task", name="noise-ne", score_fn=ne_noisy_av, higher_is_better=False,
              measurement="NE with Gaussian noise (SD 0.25 x the stationary AV SD) on the AV input",
              comparison="the system's own NE (ceiling: the reference circuit's NE)",
              citation=CUEVA_2020),
)

for _bench in TASK_BENCHMARKS:
    register(_bench, replace=True)
