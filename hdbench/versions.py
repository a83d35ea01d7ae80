"""Versions of the code components that cached results depend on.

A result is keyed by everything that determines it (DESIGN.md): its config, and the versions of
the code that computed it. Hashing source files would invalidate every trained model on a comment
edit; instead each component below carries an integer that is bumped whenever its *outputs*
change (other numbers, other random streams, a fixed bug). ``tests/test_golden.py`` recomputes
a small output of every component and fails when it no longer matches the stored golden value of
the current version: change the output, bump the version here, regenerate the golden values
(``python -m tests.golden --update``).

- ``task``: trial generation (:mod:`hdbench.task`).
- ``core``: the integration core's numerics (:mod:`hdbench.core`), forward and backward.
- ``models``: model definitions and initialisation (:mod:`hdbench.models`).
- ``training``: the optimisation loop (:mod:`hdbench.training`): streams, losses, selection.
- ``analysis``: measurements of a system's activity and weights (:mod:`hdbench.analysis`).
- ``metrics``: similarity metrics (:mod:`hdbench.metrics`).

Reference circuits carry their own ``VERSION`` (``reference_circuits.<name>``), benchmarks their
own ``version``.
"""

from __future__ import annotations

COMPONENTS: dict[str, int] = {
    "task": 1,
    # core 2: float32 products by the AVX-512 kernel (other rounding), weight gradients summed in
    # float64 every 8 steps, compiled softplus, compiled GRU / LSTM / tanh RNN (issue 22)
    "core": 2,
    "models": 1,
    # training 2: the training noise is drawn in the compiled loop (Philox-4x32-10 and
    # Box-Muller under a key from the update's generator), other numbers than torch.randn
    "training": 2,
    "analysis": 2,
    "metrics": 2,
}

# Which components determine a trained model, and which a measurement of a given system.
TRAINING_COMPONENTS = ("task", "core", "models", "training")
MEASUREMENT_COMPONENTS = ("task", "core", "models", "analysis", "metrics")


def versions_of(names) -> dict[str, int]:
    """``{component: version}`` for ``names`` (a KeyError names an unknown component)."""
    return {name: COMPONENTS[name] for name in names}


def training_identity() -> dict[str, int]:
    """The component versions a training run's result depends on."""
    return versions_of(TRAINING_COMPONENTS)


def measurement_identity() -> dict[str, int]:
    """The component versions a score depends on (besides the benchmark's own version)."""
    return versions_of(MEASUREMENT_COMPONENTS)
