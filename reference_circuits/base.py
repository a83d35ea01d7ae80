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
    landmark_gain [N] (drive per unit, per rad/s of [ω]₊ / [−ω]₊, per unit cue); av_lead [N]
    bool, optional: the unit's AV drive v enters as v + τ dv/dt (see :meth:`_drive`).
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


def jitter_rng(circuit_stream: int, instance_seed: int) -> np.random.Generator:
    """The generator of an instance's structural jitter (independent per circuit and seed)."""
    if isinstance(instance_seed, bool) or not isinstance(instance_seed, (int, np.integer)) \
            or instance_seed < 0:
        raise HdbenchError(f"instance_seed must be an integer >= 0; got {instance_seed!r}")
    return np.random.default_rng([int(circuit_stream), 0, int(instance_seed)])


def multiplicative_jitter(rng: np.random.Generator, shape, cv: float) -> np.ndarray:
    """Factors 1 + cv·ε, ε ~ N(0, 1) clipped to ±3 SD, so no synapse changes sign."""
    return 1.0 + cv * np.clip(rng.standard_normal(shape), -3.0, 3.0)


def check_jitter(pd_jitter_deg: float, weight_jitter: float, gain_jitter: float) -> None:
    if not 0.0 <= pd_jitter_deg <= 20.0:
        raise HdbenchError(f"pd_jitter_deg must lie in [0, 20]; got {pd_jitter_deg}")
    if not 0.0 <= weight_jitter <= 0.3:
        raise HdbenchError(f"weight_jitter must lie in [0, 0.3]; got {weight_jitter}")
    if not 0.0 <= gain_jitter <= 0.3:
        raise HdbenchError(f"gain_jitter must lie in [0, 0.3]; got {gain_jitter}")


def apply_gain_jitter(parts: CircuitParts, rng: np.random.Generator, cv: float) -> None:
    """Give every unit its own gain g_i = 1 + cv·ε and rescale its outgoing synapses by 1/g_i.

    All inputs of unit i (weights, bias, AV and landmark drive) are multiplied by g_i and all its
    outputs divided by it. Threshold-linear units are positively homogeneous, so unit i's
    current and rate become g_i times the nominal ones while every other unit sees exactly the
    same input: the dynamics (bump position, speed, drift) are untouched and only the cells'
    rate scales differ — cell-to-cell excitability differences compensated by synaptic scaling.
    The decoder is downstream of the cells, so its weights are scaled by 1/g_i as well.
    """
    g = multiplicative_jitter(rng, parts.tau.shape[0], cv)
    parts.weights = parts.weights * g[:, None] / g[None, :]
    parts.bias = parts.bias * g
    parts.av_pos = parts.av_pos * g
    parts.av_neg = parts.av_neg * g
    parts.landmark_gain = parts.landmark_gain * g
    parts.gain = g if parts.gain is None else parts.gain * g


class ReferenceCircuit:
    """Base class of the hand-built circuits; implements the system interface.

    Subclasses set ``name``, ``stream`` and ``config_class`` (a frozen dataclass built from the
    ``options`` passed to the constructor) and implement :meth:`_build`. Attributes after
    construction: ``config``, ``instance_seed``, ``populations`` (name → :class:`Population`),
    ``cell_types``, ``preferred_directions`` (rad, NaN for untuned units), ``gains`` (single-cell
    gains of the instance), ``n_units``.
    """

    name = "reference"
    stream = 0
    config_class: type

    def __init__(self, instance_seed: int = 0, **options):
        try:
            config = self.config_class(**options)
        except TypeError as err:
            raise HdbenchError(f"bad options for reference circuit {self.name!r}: {err}") from None
        self.config = config
        self.instance_seed = int(instance_seed)
        rng = jitter_rng(self.stream, instance_seed)
        parts = self._build(rng)
        apply_gain_jitter(parts, rng, config.gain_jitter)
        self._parts = parts
        self.populations = {p.name: p for p in parts.populations}
        self.preferred_directions = parts.preferred.copy()
        self.gains = parts.gain.copy()
        self._W = torch.as_tensor(parts.weights, dtype=torch.float32)
        compass = self.populations[parts.compass].units
        pd = parts.preferred[compass]
        scale = 1.0 / self.gains[compass]
        self._decoder = torch.zeros(self.n_units, 2, dtype=torch.float32)
        self._decoder[compass, 0] = torch.as_tensor(scale * np.sin(pd), dtype=torch.float32)
        self._decoder[compass, 1] = torch.as_tensor(scale * np.cos(pd), dtype=torch.float32)
        self.cell_types = self._derive_cell_types()
        self._templates: dict[int, np.ndarray] = {}

    # -- construction --------------------------------------------------------------------------

    def _build(self, rng: np.random.Generator) -> CircuitParts:
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
        for pop in self._parts.populations:
            units = pop.units
            pd = self._parts.preferred[units]
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
        return torch.as_tensor(a0, dtype=torch.float32)

    def _final_state(self, x, a0, dt, k) -> torch.Tensor:
        """The state a [B, N] after the last step, noise-free."""
        _, states = integrate(self._drive(x, dt), self._W, a0, self._alpha(dt, k),
                              activation="relu", substeps=k, return_preactivations=True)
        return states[:, -1]

    def _noise(self, batch: int, steps: int, seed):
        """(units, noise [B, T, n]) for the units with a membrane (relays get none), or None."""
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
        return units, torch.randn((batch, steps, noisy.size), generator=generator).mul_(std)

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
