"""The angular-velocity integration task of Cueva, Wang, Chin & Wei (ICLR 2020).

A trial starts with a heading cue: for the first ``cue_steps`` steps the inputs carry
(sin θ0, cos θ0) and the angular velocity (AV) is zero. Afterwards AV follows an AR(1) process
``AV_t = σ ε_t + φ AV_{t-1}`` and the heading integrates it on the same step,
``θ_t = θ_{t-1} + AV_t``. AV > 0 increases θ, i.e. turns counter-clockwise (CCW).
In the first half of every batch a stretch of forced zero AV is inserted; the AR process
restarts from 0 after it.

Inputs are ``[batch, time, 3]`` = (AV in rad/step, sin θ0, cos θ0); targets are
``[batch, time, 2]`` = (sin θ, cos θ); the loss mask excludes the cue steps.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hdbench.errors import HdbenchError

# Seed streams: the first word of every seed, so that training, validation and test trials
# can never be drawn from the same random stream.
TRAIN_STREAM, VALIDATION_STREAM, TEST_STREAM = 1, 2, 3


@dataclass(frozen=True)
class TaskSpec:
    """Statistics of the AV integration task.

    Parameters
    ----------
    name : str
        Preset name or a label of your own.
    phi : float
        AR(1) coefficient of AV per step (autocorrelation at lag 1).
    sigma : float
        Innovation SD of AV in rad/step.
    n_steps : int
        Steps per trial (the cue included).
    cue_steps : int
        Steps at the start during which the heading cue is on and AV is 0.
    dt : float
        Seconds per step; only used to express AV in physical units (rad/s).
    zero_av_epochs : bool
        Insert a stretch of forced zero AV in the first half of each batch.
    """

    name: str = "cueva-1x"
    phi: float = 0.8
    sigma: float = 0.03
    n_steps: int = 500
    cue_steps: int = 10
    dt: float = 0.025
    zero_av_epochs: bool = True

    def __post_init__(self):
        if not 0.0 <= self.phi < 1.0:
            raise HdbenchError(f"phi must lie in [0, 1) for a stationary AR(1); got {self.phi}")
        if not (self.sigma >= 0.0 and math.isfinite(self.sigma)):
            raise HdbenchError(f"sigma must be finite and >= 0 rad/step; got {self.sigma}")
        if self.n_steps < 1 or self.cue_steps < 0 or self.cue_steps >= self.n_steps:
            raise HdbenchError(
                f"need 0 <= cue_steps < n_steps; got cue_steps={self.cue_steps}, "
                f"n_steps={self.n_steps}"
            )
        if not self.dt > 0:
            raise HdbenchError(f"dt must be > 0 seconds; got {self.dt}")

    @property
    def stationary_sd(self) -> float:
        """Stationary SD of AV in rad/step: σ / sqrt(1 − φ²)."""
        return self.sigma / math.sqrt(1.0 - self.phi**2)

    @property
    def correlation_time(self) -> float:
        """Autocorrelation time of AV in seconds: −dt / ln φ (0 for white AV)."""
        return -self.dt / math.log(self.phi) if self.phi > 0 else 0.0

    def replace(self, **changes) -> TaskSpec:
        """A copy with some fields changed (e.g. ``n_steps=1000`` for longer trials)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_biology(cls, name: str, correlation_time_s: float, sd_deg_per_s: float,
                     dt: float = 0.025, **kwargs) -> TaskSpec:
        """Spec whose AV has a given correlation time (s) and stationary SD (°/s)."""
        phi = math.exp(-dt / correlation_time_s)
        sd_per_step = math.radians(sd_deg_per_s) * dt
        return cls(name=name, phi=phi, sigma=sd_per_step * math.sqrt(1.0 - phi**2), dt=dt,
                   **kwargs)


PRESETS: dict[str, TaskSpec] = {
    "cueva-0.1x": TaskSpec(name="cueva-0.1x", sigma=0.03 * 0.1),
    "cueva-1x": TaskSpec(name="cueva-1x", sigma=0.03),
    "cueva-3x": TaskSpec(name="cueva-3x", sigma=0.03 * 3),
    # Rodent head turns: correlation time 0.2 s, SD 100°/s (circuits.md §6.3).
    "rodent": TaskSpec.from_biology("rodent", correlation_time_s=0.2, sd_deg_per_s=100.0),
    # Walking flies: correlation time 128 ms, SD 54°/s (Turner-Evans et al. 2017).
    "fly": TaskSpec.from_biology("fly", correlation_time_s=0.128, sd_deg_per_s=54.0),
}
DEFAULT_PRESET = "cueva-1x"


def get_spec(preset_or_spec: str | TaskSpec) -> TaskSpec:
    """Resolve a preset name (or pass a spec through); unknown names list the known ones."""
    if isinstance(preset_or_spec, TaskSpec):
        return preset_or_spec
    try:
        return PRESETS[preset_or_spec]
    except (KeyError, TypeError):
        raise HdbenchError(
            f"unknown task preset {preset_or_spec!r}; known presets: {', '.join(PRESETS)}"
        ) from None


@dataclass(frozen=True)
class Trials:
    """A batch of task trials (NumPy arrays).

    Attributes
    ----------
    inputs : float32 [batch, time, 3]
        AV (rad/step), sin θ0, cos θ0 (the latter two only during the cue).
    targets : float32 [batch, time, 2]
        sin θ_t, cos θ_t.
    mask : bool [batch, time]
        True where the output loss counts (after the cue).
    heading : float64 [batch, time]
        True heading θ_t in radians, wrapped to [0, 2π).
    av : float64 [batch, time]
        Angular velocity in rad/step (AV > 0 = CCW).
    spec : TaskSpec
    """

    inputs: np.ndarray
    targets: np.ndarray
    mask: np.ndarray
    heading: np.ndarray
    av: np.ndarray
    spec: TaskSpec

    def __len__(self) -> int:
        return self.inputs.shape[0]

    @property
    def n_steps(self) -> int:
        return self.inputs.shape[1]


def seed_for(stream: int, *keys: int) -> list[int]:
    """A seed for ``numpy.random.default_rng`` from a stream id and integer keys."""
    return [int(stream), *(int(k) for k in keys)]


def make_trials(preset_or_spec: str | TaskSpec, n_trials: int,
                seed: int | Sequence[int] | np.random.SeedSequence) -> Trials:
    """Generate ``n_trials`` trials of the AV integration task.

    Parameters
    ----------
    preset_or_spec : str or TaskSpec
        A name from :data:`PRESETS` or a spec.
    n_trials : int
        Batch size, >= 1.
    seed : int, sequence of ints or SeedSequence
        Required; the same seed always gives the same trials. Use :func:`seed_for` to keep
        training, validation and test streams disjoint.
    """
    spec = get_spec(preset_or_spec)
    if isinstance(n_trials, bool) or not isinstance(n_trials, (int, np.integer)) or n_trials < 1:
        raise HdbenchError(f"n_trials must be a positive integer; got {n_trials!r}")
    if seed is None:
        raise HdbenchError("make_trials needs an explicit seed")
    rng = np.random.default_rng(seed)
    B, T, C = int(n_trials), spec.n_steps, spec.cue_steps

    theta0 = rng.uniform(0.0, 2.0 * np.pi, size=B)
    eps = rng.standard_normal((B, T))
    frozen = np.zeros((B, T), dtype=bool)
    frozen[:, :C] = True
    if spec.zero_av_epochs:
        n_frozen = B // 2
        start = rng.integers(0, round(T / 3) + 1, size=n_frozen)
        stop = np.minimum(T, start + rng.integers(0, round(2 * T / 3) + 1, size=n_frozen))
        steps = np.arange(T)
        frozen[:n_frozen] |= (steps >= start[:, None]) & (steps < stop[:, None])

    # AR(1) step by step, reset to 0 where frozen; time-major and in place (3x faster than
    # column slices and np.where; the same values to the bit)
    drive = np.ascontiguousarray((spec.sigma * eps).T)
    frozen_by_step = np.ascontiguousarray(frozen.T)
    av = np.empty((T, B))
    previous = np.zeros(B)
    for t in range(T):
        row = av[t]
        np.multiply(previous, spec.phi, out=row)
        row += drive[t]
        np.copyto(row, 0.0, where=frozen_by_step[t])
        previous = row
    av = av.T

    heading = np.mod(theta0[:, None] + np.cumsum(av, axis=1), 2.0 * np.pi)
    inputs = np.zeros((B, T, 3), dtype=np.float32)
    inputs[:, :, 0] = av
    inputs[:, :C, 1] = np.sin(theta0)[:, None]
    inputs[:, :C, 2] = np.cos(theta0)[:, None]
    targets = np.empty((B, T, 2), dtype=np.float32)  # cast on assignment: no float64 stack
    targets[..., 0] = np.sin(heading)
    targets[..., 1] = np.cos(heading)
    mask = np.zeros((B, T), dtype=bool)
    mask[:, C:] = True
    return Trials(inputs=inputs, targets=targets, mask=mask, heading=heading, av=av, spec=spec)


def decode_heading(outputs: np.ndarray) -> np.ndarray:
    """Heading in [0, 2π) from outputs ``[..., 2]`` = (sin, cos)."""
    outputs = np.asarray(outputs)
    return np.mod(np.arctan2(outputs[..., 0], outputs[..., 1]), 2.0 * np.pi)
