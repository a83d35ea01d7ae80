"""Population trajectories of reference circuits and CTRNNs for the DSA tests (small sizes).

Four systems on the same 4 trials of 200 steps of the ``cueva-3x`` task, after the cue, each
projected on its top 10 principal components (as the dsa benchmark does): the rodent and fly
reference circuits and two untrained 40-unit CTRNNs. Built once per test session (about 1 s).
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache

import numpy as np

#: The DSA settings of the cross-checks: the dsa benchmark's delays and rank.
SETTINGS = {"n_delays": 5, "rank": 10}


@lru_cache(maxsize=1)
def trajectories() -> dict[str, np.ndarray]:
    """``{name: float64 [4 trials, 190 steps, 10 PCs]}`` (read-only arrays)."""
    import reference_circuits
    from hdbench.metrics import conditions
    from hdbench.models import build
    from hdbench.task import get_spec, make_trials

    spec = dataclasses.replace(get_spec("cueva-3x"), n_steps=200)
    trials = make_trials(spec, 4, seed=0)
    systems = {"rodent": reference_circuits.load("rodent"), "fly": reference_circuits.load("fly"),
               "ctrnn0": build("ctrnn", n_units=40, init_seed=0),
               "ctrnn1": build("ctrnn", n_units=40, init_seed=1)}
    out = {}
    for name, system in systems.items():
        states, _ = conditions.population_trajectories(system.simulate(trials),
                                                       skip_steps=spec.cue_steps)
        n_trials, steps, units = states.shape
        (flat,) = conditions.align_dimensions([states.reshape(1, n_trials * steps, units)],
                                              method="pca", k=10)
        out[name] = flat.reshape(n_trials, steps, 10)
        out[name].flags.writeable = False
    return out
