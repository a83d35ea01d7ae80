"""The one interface that trained models and reference circuits share.

A *system* maps task inputs ``[batch, time, 3]`` to rates ``[batch, time, units]`` and outputs
``[batch, time, 2]`` = (sin, cos) of its heading estimate, exposes its recurrent weights
``W[target, source]``, and may carry cell-type labels. Every analysis and metric takes systems or
their :class:`Activity` and never needs to know which kind it got.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from hdbench.errors import HdbenchError
from hdbench.task import Trials, decode_heading

# Activity, weights and metric inputs above this magnitude overflow float64 in squared sums
# (1e154² ≈ 1e308): refused with a one-line error instead of an overflow warning and a NaN.
MAX_MAGNITUDE = 1e150

CELL_TYPES = ("compass", "shifter_cw", "shifter_ccw", "inhibitory", "other")


@dataclass(frozen=True)
class Silence:
    """Force the rates of ``units`` to zero on task steps ``start <= t < stop``.

    ``units`` are integer indices into the system's units. The silenced rates are zero for the
    recurrent input *and* for the readout.
    """

    units: tuple[int, ...]
    start: int = 0
    stop: int | None = None

    def __post_init__(self):
        units = tuple(int(u) for u in np.atleast_1d(np.asarray(self.units, dtype=np.int64)))
        object.__setattr__(self, "units", units)
        if any(u < 0 for u in units):
            raise HdbenchError(f"silenced unit indices must be >= 0; got {units}")
        if self.start < 0 or (self.stop is not None and self.stop < self.start):
            raise HdbenchError(
                f"silencing window must satisfy 0 <= start <= stop; got {self.start}, {self.stop}"
            )

    def check(self, n_units: int) -> None:
        if self.units and max(self.units) >= n_units:
            raise HdbenchError(
                f"silenced unit index {max(self.units)} out of range for {n_units} units"
            )


@dataclass
class Activity:
    """What a system did on a batch of trials (NumPy arrays).

    Attributes
    ----------
    rates : [batch, time, units]
    outputs : [batch, time, 2] (sin, cos) of the system's heading estimate
    inputs : [batch, time, 3]
    heading : [batch, time] true heading in rad, or None when simulated from raw inputs
    av : [batch, time] AV in rad/step (AV > 0 = CCW), or None
    cell_types : one label per unit, or None
    preactivations : [batch, time, units] or None
    """

    rates: np.ndarray
    outputs: np.ndarray
    inputs: np.ndarray
    heading: np.ndarray | None = None
    av: np.ndarray | None = None
    cell_types: tuple[str, ...] | None = None
    preactivations: np.ndarray | None = None

    @property
    def n_units(self) -> int:
        return self.rates.shape[-1]

    def decoded_heading(self) -> np.ndarray:
        """The system's heading estimate in [0, 2π) from its outputs."""
        return decode_heading(self.outputs)


@runtime_checkable
class System(Protocol):
    """Anything that can be benchmarked: a trained network or a reference circuit."""

    cell_types: tuple[str, ...] | None

    @property
    def n_units(self) -> int: ...

    def simulate(self, inputs, seed: int | None = None,
                 silence: Silence | None = None) -> Activity: ...

    def recurrent_weights(self) -> np.ndarray: ...


def split_inputs(inputs):
    """Accept a :class:`~hdbench.task.Trials` or a raw array; return (array, heading, av)."""
    if isinstance(inputs, Trials):
        return inputs.inputs, inputs.heading, inputs.av
    arr = np.asarray(inputs) if not hasattr(inputs, "detach") else inputs.detach().cpu().numpy()
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise HdbenchError(f"inputs must have shape [batch, time, 3]; got {tuple(arr.shape)}")
    if not np.all(np.isfinite(arr)):
        raise HdbenchError("inputs contain NaN or inf")
    return arr.astype(np.float32, copy=False), None, None
