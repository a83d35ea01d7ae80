"""Rodent reference: DTN/LMN-like double ring (Xie, Hahnloser & Seung 2002) + ADN readout.

Two threshold-linear rings of 64 units (the "L" and "R" rings, the left/right DTN–LMN
analogues), each receiving from both rings through a cosine kernel with uniform inhibition whose
output is rotated by σφ (σ_L = −1, σ_R = +1), push–pull AV drive, and a 64-unit ADN ring that
low-pass filters r_L + r_R (the compass cells; no AV drive, no feedback)::

    τ du_{s,i}/dt = −u_{s,i} + Σ_{s'} Σ_j (J₀ + J₁ cos(θ_i − θ_j − σ_{s'} φ))/N [u_{s',j}]₊
                    + b₀ + σ_s ω/k_ω + landmark
    τ_A da_i/dt   = −a_i + [u_{L,i}]₊ + [u_{R,i}]₊

(circuits.md §6.1). Cell types are derived from the model: the ring whose drive grows with CCW
rotation and whose output is rotated CCW (R) is ``shifter_ccw``, the other (L) ``shifter_cw``.
Units: 0–63 L ring, 64–127 R ring, 128–191 ADN; unit i of every ring has preferred direction
θ_i = 2πi/64 (ADN: + readout jitter).

An ``instance_seed`` draws: the ADN readout's preferred-direction jitter (SD 2°), single-cell gains
(CV 15 %, compensated on outgoing synapses so the dynamics are unchanged), a 0.2 % jitter of every
ring synapse, and the circuit's own drive noise. The ring itself tolerates almost no
heterogeneity (it is a continuous attractor), so the structural jitter is kept this small.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from hdbench.errors import HdbenchError
from reference_circuits.base import (
    CircuitParts,
    Population,
    ReferenceCircuit,
    check_jitter,
    multiplicative_jitter,
)


@dataclass(frozen=True)
class RodentConfig:
    """Parameters of the rodent double ring (defaults: circuits.md §6.1, re-verified).

    Parameters
    ----------
    n : int
        Units per ring (L, R and ADN each).
    j0, j1 : float
        Uniform (inhibitory) and cosine (excitatory) kernel strengths, summed over a ring.
    phi_deg : float
        Rotation of each ring's output, degrees (L by −φ, R by +φ).
    tau_s, tau_adn_s : float
        Time constants of the rings and of the ADN readout, seconds.
    b0 : float
        Tonic drive of both rings.
    k_omega : float
        AV gain: the rings get b₀ ∓ ω/k_ω (rad/s per unit of drive). Calibrated at the default
        sub-step by driving constant AV (50–700°/s) and measuring bump speed
        (:func:`reference_circuits.measure.calibrate_av_gain`; circuits.md gives 67.6).
    landmark_gain : float
        Amplitude of the cosine landmark drive to both rings while the heading cue is on.
    noise_std : float
        SD of Gaussian drive noise per unit and task step (held over the step); 0 = noise-free.
    pd_jitter_deg : float
        SD (degrees, clipped at half the unit spacing) of the ADN readout's preferred-direction
        jitter: ADN unit i reads ring column i and, with weight |δ_i|/spacing, its neighbour on the
        side of δ_i. The rings' own directions stay exact: the ring is a continuous attractor and
        0.1° of ring jitter already makes the bump drift ~1.4°/s.
    weight_jitter : float
        Coefficient of variation of the multiplicative jitter of every ring synapse (1 % gives
        drifts of 1–2°/s, hence the small default).
    gain_jitter : float
        Coefficient of variation of single-cell gains, compensated on the outgoing synapses so
        that the dynamics are unchanged (:func:`~reference_circuits.base.apply_gain_jitter`).
    max_step_s : float
        Longest internal Euler step (s): 25 ms task steps are cut into 4 sub-steps, the fewest
        with which the bump speed stays within 2 % of AV up to 700°/s (forward Euler slows a
        fast bump by ~11 %/(sub-steps) at 700°/s) and the heading after a 500-step trial agrees
        with 10× finer sub-steps.
    settle_s : float
        Settling time of the bump template that initialises trials.
    """

    n: int = 64
    j0: float = -8.0
    j1: float = 8.0
    phi_deg: float = 30.0
    tau_s: float = 0.020
    tau_adn_s: float = 0.010
    b0: float = 1.0
    k_omega: float = 67.2
    landmark_gain: float = 0.2
    noise_std: float = 0.005
    pd_jitter_deg: float = 2.0
    weight_jitter: float = 0.002
    gain_jitter: float = 0.15
    max_step_s: float = 0.00625
    settle_s: float = 1.0

    def __post_init__(self):
        if self.n < 8:
            raise HdbenchError(f"n must be >= 8 units per ring; got {self.n}")
        for name in ("tau_s", "tau_adn_s", "k_omega", "max_step_s", "settle_s"):
            if not getattr(self, name) > 0:
                raise HdbenchError(f"{name} must be > 0; got {getattr(self, name)}")
        if self.max_step_s > min(self.tau_s, self.tau_adn_s):
            raise HdbenchError(
                f"max_step_s={self.max_step_s} must not exceed the shortest time constant "
                f"({min(self.tau_s, self.tau_adn_s)} s)")
        if not self.noise_std >= 0:
            raise HdbenchError(f"noise_std must be >= 0; got {self.noise_std}")
        check_jitter(self.pd_jitter_deg, self.weight_jitter, self.gain_jitter)

    def to_dict(self) -> dict:
        return asdict(self)


class RodentCircuit(ReferenceCircuit):
    """The rodent reference circuit (see the module docstring); 3 × 64 units."""

    name = "rodent"
    stream = 101
    config_class = RodentConfig

    def _build(self, rng: np.random.Generator) -> CircuitParts:
        c = self.config
        n = c.n
        spacing = 2.0 * np.pi / n
        pd = spacing * np.arange(n)
        phi = math.radians(c.phi_deg)
        N = 3 * n
        W = np.zeros((N, N))
        rings = (slice(0, n), slice(n, 2 * n))
        for sigma, source in zip((-1.0, 1.0), rings, strict=True):
            kernel = (c.j0 + c.j1 * np.cos(pd[:, None] - pd[None, :] - sigma * phi)) / n
            for target in rings:
                W[target, source] = kernel
        W *= multiplicative_jitter(rng, W.shape, c.weight_jitter)
        # ADN readout: unit i reads column i and, with weight |δ_i|/spacing, its neighbour.
        delta = np.clip(np.radians(c.pd_jitter_deg) * rng.standard_normal(n),
                        -spacing / 2, spacing / 2)
        share = np.abs(delta) / spacing
        neighbour = (np.arange(n) + np.where(delta >= 0, 1, -1)) % n
        readout = np.diag(1.0 - share)
        readout[np.arange(n), neighbour] += share
        adn = slice(2 * n, 3 * n)
        W[adn, rings[0]] = readout
        W[adn, rings[1]] = readout
        adn_pd = pd + delta
        tau = np.r_[np.full(2 * n, c.tau_s), np.full(n, c.tau_adn_s)]
        bias = np.r_[np.full(2 * n, c.b0), np.zeros(n)]
        sign = np.r_[np.full(n, -1.0), np.full(n, 1.0), np.zeros(n)]  # σ_s
        landmark = np.r_[np.full(2 * n, c.landmark_gain), np.zeros(n)]
        return CircuitParts(
            populations=(Population("L", 0, n, "shifter"),
                         Population("R", n, 2 * n, "shifter"),
                         Population("ADN", 2 * n, 3 * n, "compass")),
            compass="ADN",
            weights=W,
            tau=tau,
            preferred=np.mod(np.r_[pd, pd, adn_pd], 2.0 * np.pi),
            bias=bias,
            av_pos=sign / c.k_omega,    # b_s = b0 + σ_s ω / k_ω, split into [ω]₊ and [−ω]₊
            av_neg=-sign / c.k_omega,
            landmark_gain=landmark,
        )
