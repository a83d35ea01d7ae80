"""Tiny stand-ins used by the scoring, engine and leaderboard tests (importable by workers)."""

from __future__ import annotations

import os
import time

import numpy as np

from hdbench.system import Activity, split_inputs


class FakeRing:
    """A perfect-ish heading integrator with 8 cosine-tuned units (a stand-in reference).

    Instance ``k`` integrates AV with gain ``1 + 0.02 k``, so two instances differ slightly.
    """

    n_units = 8
    cell_types = ("compass",) * 8
    task = "cueva-1x"

    def __init__(self, instance_seed: int = 0):
        self.gain = 1.0 + 0.02 * instance_seed
        self.preferred = np.linspace(0, 2 * np.pi, self.n_units, endpoint=False)

    def simulate(self, inputs, seed=None, silence=None) -> Activity:
        array, heading, av = split_inputs(inputs)
        theta0 = np.arctan2(array[:, 0, 1], array[:, 0, 2])
        estimate = theta0[:, None] + self.gain * np.cumsum(array[:, :, 0], axis=1)
        outputs = np.stack([np.sin(estimate), np.cos(estimate)], axis=-1)
        rates = np.maximum(0.0, np.cos(estimate[..., None] - self.preferred))
        return Activity(rates=rates, outputs=outputs, inputs=array, heading=heading, av=av,
                        cell_types=self.cell_types)

    def recurrent_weights(self) -> np.ndarray:
        return np.cos(self.preferred[:, None] - self.preferred[None, :]) / self.n_units


def make_ring(instance_seed: int = 0) -> FakeRing:
    return FakeRing(instance_seed)


def make_broken(instance_seed: int = 0):
    raise RuntimeError("this reference cannot be built")


# -- benchmark functions -------------------------------------------------------------------------

def explode(subject, reference):
    raise RuntimeError("benchmark exploded")


def constant(subject, reference):
    return 1.0


def n_units_ratio(subject, reference):
    """A 'similarity' that reads both bundles: reference units / subject units."""
    return reference.n_units / subject.n_units, 0.01


# -- engine job functions ------------------------------------------------------------------------

def square(x):
    return x * x


def fail_if_negative(x):
    if x < 0:
        raise ValueError(f"negative input {x}")
    return x


def torch_threads(_):
    import torch

    return torch.get_num_threads()


def slow_square(x):
    time.sleep(0.2)
    return x * x


# -- a small ring-attractor reference with every cell type (benchmark families) ----------------

def make_ring_circuit(instance_seed: int = 0):
    """The 24-unit ring network of :mod:`tests.ring_system` as a reference circuit.

    Instance ``k`` has shifter offsets of 30 + 4k degrees; ``task`` is the ring's slow task.
    """
    from tests.ring_system import OFFSET, SPEC, ring_ctrnn

    # k = 0.06: the 8-unit ring integrates with gain ≈ 1 (0.09, right for 32 units, gives 0.45)
    ring = ring_ctrnn(8, offset=OFFSET + np.radians(4.0 * instance_seed), k=0.06)
    ring.task = SPEC
    return ring


def sleep_and_report(path):
    """Write this process's pid to ``path``, then sleep (a job that outlives its driver)."""
    import time
    from pathlib import Path

    Path(path).write_text(str(os.getpid()))
    time.sleep(120)
    return 0


def make_fragile(instance_seed: int = 0):
    """A reference whose instance 0 builds and every other instance fails (failed ceilings)."""
    if instance_seed:
        raise RuntimeError(f"instance {instance_seed} cannot be built")
    return FakeRing(0)


# -- silencing with and without a specific effect (analysis tests) ------------------------------

class SilencingToy:
    """A perfect integrator of 8 compass, 8 CW and 8 CCW cosine-tuned units whose silencing
    effects are prescribed, so that specificity has a known answer.

    While units are silenced the heading drifts by ``rate`` rad/step times

    - ``specific=True``: (fraction of the CW units silenced) − (fraction of the CCW units
      silenced): CW off drifts CCW, CCW off drifts CW, and a random mix of units barely drifts;
    - ``specific=False``: (number of units silenced) / 8, whatever their type: every group of 8
      drifts as much as the CW shifters do.

    Its integration gain is 1 outside the silenced window, ``window_gain`` inside it.
    """

    n_units = 24
    cell_types = ("compass",) * 8 + ("shifter_cw",) * 8 + ("shifter_ccw",) * 8

    def __init__(self, specific: bool = True, rate: float = 0.02, window_gain: float = 1.0):
        self.specific, self.rate, self.window_gain = specific, rate, window_gain
        self.preferred = np.tile(np.linspace(0, 2 * np.pi, 8, endpoint=False), 3)

    def table(self):
        """The classified tuning table the toy would get (PDs, types, |A| by type)."""
        import pandas as pd

        a = np.r_[np.zeros(8), np.full(8, -0.1), np.full(8, 0.1)]
        return pd.DataFrame({"pd": self.preferred, "cell_type": self.cell_types, "r": 0.8,
                             "max_rate": 1.0, "peak_rate": 1.0, "av_asymmetry": a})

    def simulate(self, inputs, seed=None, silence=None) -> Activity:
        array, heading, av = split_inputs(inputs)
        theta0 = np.arctan2(array[:, 0, 1], array[:, 0, 2])
        step = array[:, :, 0].astype(np.float64).copy()
        on_units = np.zeros(self.n_units, dtype=bool)
        window = np.zeros(array.shape[1], dtype=bool)
        if silence is not None and silence.units:
            on_units[list(silence.units)] = True
            window[silence.start:silence.stop] = True
            if self.specific:
                push = on_units[8:16].mean() - on_units[16:24].mean()
            else:
                push = on_units.sum() / 8
            step[:, window] = self.window_gain * step[:, window] + self.rate * push
        estimate = theta0[:, None] + np.cumsum(step, axis=1)
        outputs = np.stack([np.sin(estimate), np.cos(estimate)], axis=-1)
        rates = np.maximum(0.0, np.cos(estimate[..., None] - self.preferred))
        rates[:, window[:, None] & on_units[None, :]] = 0.0
        return Activity(rates=rates, outputs=outputs, inputs=array, heading=heading, av=av,
                        cell_types=self.cell_types)
