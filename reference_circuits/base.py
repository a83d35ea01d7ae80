"""What the reference circuits share: drive, landmark cue, initial bump, integration, decoder.

A circuit is a set of threshold-linear populations written in the "voltage" form that the
integration core integrates,

    τ_i da_i/dt = −a_i + Σ_j W_ij [a_j]₊ + drive_i(t),      rates r = [a]₊,

with one τ per population (a per-unit ``alpha`` for :func:`hdbench.core.integrate`). The drive is

    drive = bias + v + landmark + noise,    v = G₊ [ω]₊ + G₋ [−ω]₊   (+ τ dv/dt where marked),

where ω = AV / dt is the angular velocity in rad/s (ω > 0 = counter-clockwise, CCW). The
landmark is the heading cue of the task, seen as a cosine bump at θ0:
``landmark_i = g_i (sin θ0 sin θ_i + cos θ0 cos θ_i)`` = g_i cos(θ_i − θ0) while the cue is on
(linear in the inputs, zero once the cue is off). The cue at the first step also sets the initial
state: the circuit's own settled bump, rotated to θ0.

The heading estimate is the population vector (PVA) of the compass units' rates with their
preferred directions (each rate divided by the cell's gain, see :func:`apply_gain_jitter`);
``Activity.outputs`` = (sin, cos) of it.

Cell-to-cell variability. A continuous attractor tolerates almost no heterogeneity in the units
that hold the bump: any per-unit change of threshold or synapse that does not respect the ring's
symmetry pins or drifts it (0.1° of preferred-direction jitter in the rodent ring already gives
~1.4°/s). The circuits therefore draw their variability only where it leaves the attractor
intact: single-cell gains compensated on the outgoing synapses (exact, any size), units outside
the loop (the rodent's ADN), redistributions of input among cells whose outputs are only ever
summed (the fly's E-PGs of one glomerulus), and AV input strengths (which act only while turning).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from hdbench.core import integrate
from hdbench.errors import HdbenchError
from hdbench.system import CELL_TYPES, Activity, Silence, split_inputs
from hdbench.task import decode_heading

DEFAULT_DT = 0.025  # seconds per task step when raw arrays carry no TaskSpec
GAIN_ASPECT = 0  # aspect of jitter_rng used for the single-cell gains
_MAX_HARMONICS = 8  # of the initial-bump template


@dataclass(frozen=True)
class Population:
    """A contiguous block of units: ``units = range(start, stop)``.

    ``cell_type`` is one of :data:`hdbench.system.CELL_TYPES` or ``"shifter"`` — an AV-driven
    population whose CW/CCW label :class:`ReferenceCircuit` derives from the weights and the AV
    drive (never assumed).
    """

    name: str
    start: int
    stop: int
    cell_type: str

    @property
    def units(self) -> slice:
        return slice(self.start, self.stop)

    @property
    def size(self) -> int:
        return self.stop - self.start


@dataclass
class CircuitParts:
    """The arrays that define one circuit instance (NumPy, float64).

    weights [N, N] ``W[target, source]``; tau [N] seconds (0 = instantaneous relay that follows
    its input one sub-step later); preferred [N] rad (NaN = untuned); bias, av_pos, av_neg,
    landmark_gain [N] (drive per unit, per rad/s of [ω]₊ / [−ω]₊, per unit cue). Optional:
    av_lead [N] bool, the unit's AV drive v enters as v + τ dv/dt (see :meth:`_drive`); gain [N],
    the single-cell gains; from_inputs [N] bool, units whose initial state is their steady-state
    input ``W [a]₊ + bias`` from the other units' rotated template (see
    :meth:`~ReferenceCircuit.initial_state`) — units with heterogeneous tuning, whose shape a
    rotated template cannot carry (they must not feed each other); decoder [N, 2], (sin, cos)
    weights of a linear heading readout of the gain-free rates, replacing the PVA of the compass
    units' preferred directions (only the compass rows are used).
    """

    populations: tuple[Population, ...]
    compass: str
    weights: np.ndarray
    tau: np.ndarray
    preferred: np.ndarray
    bias: np.ndarray
    av_pos: np.ndarray
    av_neg: np.ndarray
    landmark_gain: np.ndarray
    av_lead: np.ndarray | None = None
    gain: np.ndarray | None = None
    from_inputs: np.ndarray | None = None
    decoder: np.ndarray | None = None


def check_instance_seed(instance_seed) -> int:
    if isinstance(instance_seed, bool) or not isinstance(instance_seed, (int, np.integer)) \
            or instance_seed < 0:
        raise HdbenchError(f"instance_seed must be an integer >= 0; got {instance_seed!r}")
    return int(instance_seed)


def jitter_rng(circuit_stream: int, instance_seed: int, aspect: int = 0) -> np.random.Generator:
    """The generator of one aspect of an instance's variability (gains, synapses, ...).

    One generator per aspect keeps the aspects independent: switching one kind of variability
    off (its option = 0) leaves the draws of the others unchanged.
    """
    seed = check_instance_seed(instance_seed)
    return np.random.default_rng([int(circuit_stream), 0, seed, int(aspect)])


def multiplicative_jitter(rng: np.random.Generator, shape, cv: float) -> np.ndarray:
    """Factors 1 + cv·ε, ε ~ N(0, 1) clipped to ±3 SD, so no synapse changes sign."""
    return 1.0 + cv * np.clip(rng.standard_normal(shape), -3.0, 3.0)


def lognormal_factors(rng: np.random.Generator, shape, cv: float) -> np.ndarray:
    """Positive factors with mean 1 and coefficient of variation ``cv`` (log-normal, the usual
    shape of cell-to-cell variability of firing rates and synaptic strengths), clipped to ±3 SD
    in log space. The draws are made even when ``cv`` is 0."""
    z = np.clip(rng.standard_normal(shape), -3.0, 3.0)
    s = math.sqrt(math.log1p(cv * cv))
    return np.exp(s * z - 0.5 * s * s)


def check_range(name: str, value: float, low: float, high: float) -> None:
    """Raise unless ``low <= value <= high`` (an option of a circuit's config)."""
    if not low <= value <= high:
        raise HdbenchError(f"{name} must lie in [{low:g}, {high:g}]; got {value}")


def check_jitter(pd_jitter_deg: float, weight_jitter: float, gain_jitter: float) -> None:
    check_range("pd_jitter_deg", pd_jitter_deg, 0.0, 20.0)
    check_range("weight_jitter", weight_jitter, 0.0, 0.3)
    check_range("gain_jitter", gain_jitter, 0.0, 1.0)


def apply_gain_jitter(parts: CircuitParts, rng: np.random.Generator, cv: float) -> None:
    """Give every unit its own gain g_i (log-normal, mean 1, CV ``cv``) and rescale its outgoing
    synapses by 1/g_i.

    All inputs of unit i (weights, bias, AV and landmark drive) are multiplied by g_i and all its
    outputs divided by it. Threshold-linear units are positively homogeneous, so unit i's
    current and rate become g_i times the nominal ones while every other unit sees exactly the
    same input: the dynamics (bump position, speed, drift) are untouched and only the cells'
    rate scales differ — cell-to-cell excitability differences compensated by synaptic scaling.
    The decoder is downstream of the cells, so its weights are scaled by 1/g_i as well.
    """
    g = lognormal_factors(rng, parts.tau.shape[0], cv)
    parts.weights = parts.weights * g[:, None] / g[None, :]
    parts.bias = parts.bias * g
    parts.av_pos = parts.av_pos * g
    parts.av_neg = parts.av_neg * g
    parts.landmark_gain = parts.landmark_gain * g
    parts.gain = g if parts.gain is None else parts.gain * g


class ReferenceCircuit:
    """Base class of the hand-built circuits; implements the system interface.

    Subclasses set ``name``, ``stream``, ``version`` and ``config_class`` (a frozen dataclass
    built from the ``options`` passed to the constructor) and implement :meth:`_build`.
    Attributes after construction: ``config``, ``instance_seed``, ``populations`` (name →
    :class:`Population`), ``cell_types``, ``preferred_directions`` (rad, NaN for untuned units),
    ``gains`` (single-cell gains of the instance), ``n_units``, ``task`` (the task preset named
    like the circuit), ``version`` (bumped whenever the circuit's outputs change).
    """

    name = "reference"
    stream = 0
    version = 0
    config_class: type

    def __init__(self, instance_seed: int = 0, **options):
        try:
            config = self.config_class(**options)
        except TypeError as err:
            raise HdbenchError(f"bad options for reference circuit {self.name!r}: {err}") from None
        self.config = config
        self.instance_seed = check_instance_seed(instance_seed)
        parts = self._build()
        apply_gain_jitter(parts, self._rng(GAIN_ASPECT), config.gain_jitter)
        self.populations = {p.name: p for p in parts.populations}
        self.preferred_directions = parts.preferred.copy()
        self.gains = parts.gain.copy()
        self._install(parts)
        self.cell_types = self._derive_cell_types()

    def _rng(self, aspect: int) -> np.random.Generator:
        """The generator of one aspect of this instance's variability (see :func:`jitter_rng`)."""
        return jitter_rng(self.stream, self.instance_seed, aspect)

    def _install(self, parts: CircuitParts) -> None:
        """Adopt ``parts`` as the circuit's arrays: weights, decoder, empty template cache."""
        self._parts = parts
        self._W = torch.as_tensor(parts.weights, dtype=torch.float32)
        compass = self.populations[parts.compass].units
        decoder = np.zeros((self.n_units, 2))
        if parts.decoder is not None:
            decoder[compass] = parts.decoder[compass]
        else:
            pd = parts.preferred[compass]
            decoder[compass] = np.stack([np.sin(pd), np.cos(pd)], axis=1)
        self._decoder = torch.as_tensor(decoder / parts.gain[:, None], dtype=torch.float32)
        self._templates: dict[int, np.ndarray] = {}

    @property
    def task(self) -> str:
        """The task preset the circuit is built for (named like it)."""
        return self.name

    # -- construction --------------------------------------------------------------------------

    def _build(self) -> CircuitParts:
        """The nominal arrays of this instance, before gains (draw with :meth:`_rng`)."""
        raise NotImplementedError

    @property
    def n_units(self) -> int:
        return self._parts.weights.shape[0]

    def recurrent_weights(self) -> np.ndarray:
        """``W[target, source]`` (float64 copy)."""
        return self._parts.weights.copy()

    def shift_offset(self, population: str) -> float:
        """Weighted circular mean of (target PD − source PD) over a population's projections.

        Positive = its outputs land counter-clockwise of its inputs (pushes the bump CCW).
        """
        pop = self.populations[population]
        tuned = np.isfinite(self._parts.preferred)
        W = self._parts.weights[tuned][:, pop.units]
        pd = self._parts.preferred
        delta = pd[tuned][:, None] - pd[pop.units][None, :]
        return float(np.angle(np.sum(W * np.exp(1j * delta))))

    def av_sensitivity(self, population: str) -> float:
        """Mean change of the population's drive per rad/s of CCW (positive) rotation."""
        units = self.populations[population].units
        return float(np.mean(self._parts.av_pos[units]) - np.mean(self._parts.av_neg[units]))

    def _derive_cell_types(self) -> tuple[str, ...]:
        labels = []
        for pop in self._parts.populations:
            label = pop.cell_type
            if label == "shifter":
                offset, gain = self.shift_offset(pop.name), self.av_sensitivity(pop.name)
                if offset > 0 and gain > 0:
                    label = "shifter_ccw"
                elif offset < 0 and gain < 0:
                    label = "shifter_cw"
                else:
                    raise HdbenchError(
                        f"{self.name}: population {pop.name!r} projects "
                        f"{math.degrees(offset):+.1f}° but its AV drive changes by {gain:+.3g} "
                        "per rad/s of CCW rotation; a shifter needs both of the same sign")
            if label not in CELL_TYPES:
                raise HdbenchError(f"unknown cell type {label!r} for {pop.name!r}")
            labels.extend([label] * pop.size)
        return tuple(labels)

    # -- integration ---------------------------------------------------------------------------

    def substeps(self, dt: float) -> int:
        """Internal Euler steps per task step of ``dt`` seconds (step <= ``max_step_s``)."""
        return max(1, math.ceil(dt / self.config.max_step_s - 1e-9))

    def _alpha(self, dt: float, substeps: int) -> torch.Tensor:
        """``dt/τ`` per unit (forward Euler); instantaneous relays get one full sub-step."""
        tau = self._parts.tau
        alpha = np.where(tau > 0, dt / np.where(tau > 0, tau, 1.0), float(substeps))
        if np.any(alpha / substeps > 1.0 + 1e-9):
            raise HdbenchError(
                f"{self.name}: sub-step {1e3 * dt / substeps:.3g} ms is longer than the fastest "
                f"time constant {1e3 * tau[tau > 0].min():.3g} ms; lower max_step_s")
        return torch.as_tensor(np.minimum(alpha, substeps), dtype=torch.float32)

    def _drive(self, x: torch.Tensor, dt: float) -> torch.Tensor:
        """Noise-free drive [B, T, N] from inputs [B, T, 3] (AV in rad/step), in one GEMM.

        Features per step: 1, [ω]₊, [−ω]₊, their changes since the previous step (for the lead
        term), sin θ0, cos θ0.
        """
        p = self._parts
        omega = x[..., 0] / dt
        pos, neg = torch.relu(omega), torch.relu(-omega)
        zero = torch.zeros_like(pos[:, :1])
        features = torch.stack([
            torch.ones_like(pos), pos, neg,
            torch.diff(pos, dim=1, prepend=zero), torch.diff(neg, dim=1, prepend=zero),
            x[..., 1], x[..., 2]], dim=-1)
        # v + τ dv/dt for AV held constant over each step: the jump Δv at a step start, spread
        # over the step so that a linear unit ends the step where the jump would have put it.
        lead = np.zeros(self.n_units)
        if p.av_lead is not None:
            tau = np.where(p.av_lead, p.tau, 1.0)
            lead = np.where(p.av_lead, 1.0 / np.expm1(dt / tau), 0.0)
        pd = np.nan_to_num(p.preferred)
        mix = np.stack([p.bias, p.av_pos, p.av_neg, lead * p.av_pos, lead * p.av_neg,
                        p.landmark_gain * np.sin(pd), p.landmark_gain * np.cos(pd)])
        return features @ torch.as_tensor(mix, dtype=torch.float32)

    def _template(self, dt: float) -> np.ndarray:
        """Fourier coefficients [N, 1 + 2H] of the settled bump (divided by the cells' gains),
        relative to its centre.

        The bump is grown from rest by a landmark at 0 for ``settle_s`` and then left alone for
        another ``settle_s``, noise-free, at the sub-step used for ``dt``.
        """
        k = self.substeps(dt)
        if k in self._templates:
            return self._templates[k]
        n_steps = max(2, round(self.config.settle_s / dt))
        x = torch.zeros(1, 2 * n_steps, 3)
        x[0, :n_steps, 2] = 1.0  # cue at θ0 = 0 (sin 0, cos 0)
        a0 = torch.zeros(self.n_units)
        a = self._final_state(x, a0, dt, k)[0].double().numpy()
        a /= self.gains  # fit the gain-free profile (smooth in PD)
        centre = self.decode(np.maximum(a, 0.0) * self.gains)
        coef = np.zeros((self.n_units, 1 + 2 * _MAX_HARMONICS))
        from_inputs = self._from_inputs()
        for pop in self._parts.populations:
            units = pop.units
            pd = self._parts.preferred[units]
            if np.all(from_inputs[units]):
                continue  # set from the other units in initial_state
            if not np.all(np.isfinite(pd)):
                coef[units, 0] = a[units].mean()
                continue
            H = min(_MAX_HARMONICS, (pop.size - 1) // 2)
            basis = _fourier_basis(pd - centre, H)
            sol, *_ = np.linalg.lstsq(basis, a[units], rcond=None)
            coef[units, : 1 + 2 * H] = sol
        self._templates[k] = coef
        return coef

    def initial_state(self, cue: np.ndarray, dt: float = DEFAULT_DT) -> torch.Tensor:
        """Settled bump rotated to the cue angle; cue [B, 2] = (sin θ0, cos θ0).

        The tuned part scales with the cue's length (clipped at 1): no cue = untuned state.
        Units marked ``from_inputs`` start at their steady-state input from the others.
        """
        coef = self._template(dt) * self.gains[:, None]
        theta0 = np.arctan2(cue[:, 0], cue[:, 1])
        strength = np.minimum(1.0, np.hypot(cue[:, 0], cue[:, 1]))
        pd = np.nan_to_num(self._parts.preferred)
        rel = pd[None, :] - theta0[:, None]  # [B, N]
        a0 = np.broadcast_to(coef[:, 0], rel.shape).copy()
        for h in range(1, _MAX_HARMONICS + 1):
            tuned = coef[:, 2 * h - 1] * np.cos(h * rel) + coef[:, 2 * h] * np.sin(h * rel)
            a0 += strength[:, None] * tuned
        from_inputs = self._from_inputs()
        if from_inputs.any():
            steady = np.maximum(a0, 0.0) @ self._parts.weights.T + self._parts.bias
            a0[:, from_inputs] = steady[:, from_inputs]
        return torch.as_tensor(a0, dtype=torch.float32)

    def _from_inputs(self) -> np.ndarray:
        mask = self._parts.from_inputs
        return np.zeros(self.n_units, dtype=bool) if mask is None else np.asarray(mask, bool)

    def _final_state(self, x, a0, dt, k) -> torch.Tensor:
        """The state a [B, N] after the last step, noise-free."""
        _, states = integrate(self._drive(x, dt), self._W, a0, self._alpha(dt, k),
                              activation="relu", substeps=k, return_preactivations=True)
        return states[:, -1]

    def _noise(self, batch: int, steps: int, seed):
        """(units, noise [B, T, n]) for the units with a membrane (relays get none), or None.

        Unit i's noise has SD ``noise_std``·g_i (its gain): the same relative to its scale.
        """
        std = self.config.noise_std
        if not std > 0:
            return None
        seq = np.random.SeedSequence([self.stream, 1, self.instance_seed,
                                      0 if seed is None else int(seed)])
        generator = torch.Generator().manual_seed(
            int(seq.generate_state(1, np.uint64)[0] >> np.uint64(1)))
        noisy = np.flatnonzero(self._parts.tau > 0)
        units = slice(noisy[0], noisy[-1] + 1) if np.all(np.diff(noisy) == 1) else \
            torch.as_tensor(noisy)
        # Scaled by the cells' gains, so that gains stay an exact symmetry of the noisy circuit.
        scale = torch.as_tensor(std * self._parts.gain[noisy], dtype=torch.float32)
        return units, torch.randn((batch, steps, noisy.size), generator=generator).mul_(scale)

    @torch.no_grad()
    def simulate(self, inputs, seed: int | None = None, silence: Silence | None = None,
                 dt: float | None = None) -> Activity:
        """Run the circuit on a batch of task inputs.

        Parameters
        ----------
        inputs : Trials or array [batch, time, 3]
            (AV in rad/step, sin θ0, cos θ0). A :class:`~hdbench.task.Trials` also supplies dt,
            the true heading and AV.
        seed : int, optional
            Seed of the circuit's noise (``config.noise_std``); with the instance seed it
            determines the noise exactly. None = 0.
        silence : Silence, optional
            Units whose rates are held at zero over a window of task steps.
        dt : float, optional
            Seconds per step for raw arrays (default 0.025; Trials carry their own).

        Returns
        -------
        Activity
            rates [batch, time, units] at the end of each task step and outputs = (sin, cos)
            of the PVA heading estimate of the compass units.
        """
        from hdbench.task import Trials

        array, heading, av = split_inputs(inputs)
        if isinstance(inputs, Trials):
            if dt is not None and not math.isclose(dt, inputs.spec.dt):
                raise HdbenchError(f"dt={dt} contradicts the trials' dt={inputs.spec.dt}")
            dt = inputs.spec.dt
        dt = DEFAULT_DT if dt is None else float(dt)
        if not (dt > 0 and math.isfinite(dt)):
            raise HdbenchError(f"dt must be a positive number of seconds; got {dt}")
        if silence is not None:
            silence.check(self.n_units)
        x = torch.as_tensor(np.asarray(array, dtype=np.float32))
        a0 = self.initial_state(np.asarray(array[:, 0, 1:3], dtype=np.float64), dt)
        noise = self._noise(x.shape[0], x.shape[1], seed)
        drive = self._drive(x, dt)
        if noise is not None:
            drive[..., noise[0]] += noise[1]
        k = self.substeps(dt)
        rates, states = integrate(drive, self._W, a0, self._alpha(dt, k), activation="relu",
                                  silence=silence, substeps=k, return_preactivations=True)
        vec = rates @ self._decoder
        norm = vec.norm(dim=-1, keepdim=True)
        outputs = torch.where(norm > 0, vec / norm.clamp_min(1e-30), torch.zeros_like(vec))
        return Activity(rates=rates.numpy(), outputs=outputs.numpy(), inputs=array,
                        heading=heading, av=av, cell_types=self.cell_types,
                        preactivations=states.numpy())

    def vector_field(self, a: torch.Tensor, dt: float = DEFAULT_DT) -> torch.Tensor:
        """Change of the state per task step at zero input (AV 0, cue off, no noise):
        ``(dt/τ) ⊙ (−a + W [a]₊ + bias)``, relays counted with one full step per sub-step
        (the vector-field protocol of :mod:`hdbench.analysis.dynamics`; differentiable)."""
        alpha = self._alpha(dt, self.substeps(dt)).to(a.dtype)
        bias = torch.as_tensor(self._parts.bias, dtype=a.dtype)
        return alpha * (-a + torch.relu(a) @ self._W.to(a.dtype).T + bias)

    def state_rates(self, a: torch.Tensor) -> torch.Tensor:
        """Rates of a state: ``[a]₊``."""
        return torch.relu(a)

    def decoder_weights(self) -> np.ndarray:
        """[units, 2] weights of the linear decoder: (sin, cos) estimate ∝ rates @ weights."""
        return self._decoder.double().numpy().copy()

    def decode(self, rates: np.ndarray) -> np.ndarray:
        """PVA heading in [0, 2π) of rates [..., units] (the circuit's linear decoder)."""
        vec = np.asarray(rates, dtype=np.float64) @ self._decoder.double().numpy()
        return decode_heading(vec)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(instance_seed={self.instance_seed}, config={self.config})"


def _fourier_basis(angle: np.ndarray, H: int) -> np.ndarray:
    cols = [np.ones_like(angle)]
    for h in range(1, H + 1):
        cols += [np.cos(h * angle), np.sin(h * angle)]
    return np.stack(cols, axis=1)
