"""Fly reference: the E-PG / P-EN / Δ7 circuit of Turner-Evans et al. (2017).

Populations (circuits.md §6.2): 54 E-PG (compass; 3 per PB glomerulus per side, EB angle
θ_n = 2πn/54, glomerulus k(n) = ⌊n/6⌋, left side if n mod 6 < 3), 9 left and 9 right P-EN (one per
glomerulus, column centre ψ_k = (k + ½)·40° − 3.33°) and 9 Δ7 (one per glomerulus).

Published rate equations (E, P = rates; α = 10, β = 25, κ = 12, τ_E = 80 ms, τ_P = τ_E/1.2)::

    τ_E dE/dt = −E + [W^{EP} P + b_E]₊
    τ_P dP/dt = −P + [W^{PE} E − β·mean(E) + b_P + v]₊

with W^{EP}_{n;s,k} = (α/9)(VM(θ_n − ψ_k − σ_s·34°; κ) + ½ VM(θ_n − ψ_k; κ)), σ_L = +1, σ_R = −1,
W^{PE} = α/54 from the 3 E-PGs of the P-EN's own glomerulus and side, b_E = −10⁻⁴, b_P = 1.

Reformulation for the integration core (voltage form τ da/dt = −a + W[a]₊ + drive): the state of
each unit is its *input current*, a_E = W^{EP} P + b_E and a_P = W^{PE} E − β·mean(E) + b_P + v.
Differentiating gives exactly::

    τ_P da_E/dt = −a_E + W^{EP} [a_P]₊ + b_E (+ landmark)
    τ_E da_P/dt = −a_P + W^{PE} [a_E]₊ − β [a_D]₊ + b_P + v + τ_E dv/dt
    a_D         = mean([a_E]₊)                                             (Δ7)

so each current relaxes with the time constant of the population that produces it (E-PG units
get τ_P, P-EN units τ_E), AV enters with a lead term τ_E dv/dt, and the reported rates [a]₊ are the
rates each cell is driven towards (the published E, P are these low-passed by τ_E, τ_P). Without
the lead term the P-EN current low-passes AV once more and the heading error on the ``fly`` task
grows by ~3°.

Δ7 makes the published global inhibition an explicit, silenceable population: each Δ7 unit
averages all E-PGs and inhibits the two P-ENs of its glomerulus. It is an instantaneous relay (it
follows its input one Euler sub-step later), as the published inhibition is instantaneous; a Δ7
time constant above ~3 ms makes the E-PG → Δ7 → P-EN loop oscillate. That loop is stiff (gain
~120 when all P-ENs are active): forward Euler needs sub-steps of <= 1.25 ms (20 per 25 ms task
step; 16 already fails).

One deviation from the published model: AV drives the two sides push–pull, v_L = +ω/k_v and
v_R = −ω/k_v, instead of rectified to one side ([ω]₊, [−ω]₊). P-ENs are excited by ipsiversive
and inhibited by contraversive turns (Turner-Evans et al. 2017), the bump-speed curve keeps its
published shape (linear over 55–170°/s, saturating at ~225°/s), and with constant total P-EN drive
the stiff loop is not kicked at every change of turning direction, which makes the 20-sub-step
simulation agree with finer ones.

An ``instance_seed`` draws single-cell gains (CV 15 %, compensated on the outgoing synapses so
that the dynamics are unchanged) and the circuit's own drive noise. The published circuit is
finely tuned: far P-ENs sit ~0.02 below threshold, held there by the balance of their bias and
the Δ7 inhibition, so structural jitter (angles, synapses; off by default, see
:class:`FlyConfig`) quickly pins the bump to a few columns.

Cell types are derived: the P-EN side whose drive grows with CCW rotation and whose EB projection
is shifted CCW (left) is ``shifter_ccw``; the other (right) is ``shifter_cw``. Units: 0–53 E-PG,
54–62 P-EN left, 63–71 P-EN right, 72–80 Δ7.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.special import i0e

from hdbench.errors import HdbenchError
from reference_circuits.base import (
    CircuitParts,
    Population,
    ReferenceCircuit,
    check_jitter,
    multiplicative_jitter,
)

N_GLOMERULI = 9
EPG_PER_GLOMERULUS_SIDE = 3
N_EPG = 2 * EPG_PER_GLOMERULUS_SIDE * N_GLOMERULI  # 54


@dataclass(frozen=True)
class FlyConfig:
    """Parameters of the fly circuit (published values, Turner-Evans et al. 2017).

    Parameters
    ----------
    alpha, beta : float
        Excitatory (E-PG → P-EN, P-EN → E-PG) and global inhibitory (via Δ7) gains.
    kappa : float
        Concentration of the von Mises P-EN → E-PG kernel.
    shift_deg : float
        EB shift of the P-EN projection (left +, right −), degrees.
    tau_epg_s : float
        Published E-PG rate time constant τ_E (s); P-EN: τ_P = ``tau_epg_s / tau_ratio``. In the
        voltage form E-PG currents relax with τ_P and P-EN currents with τ_E (module docstring).
    tau_ratio : float
        τ_E / τ_P (1.2 in the published code: τ_P = 66.7 ms).
    b_epg, b_pen : float
        Tonic drives.
    k_v : float
        AV gain, push–pull: v_L = ω/k_v, v_R = −ω/k_v (rad/s per unit). Calibrated by driving
        constant AV (slope 1 over 55–170°/s; ``python -m reference_circuits.measure fly``).
    landmark_gain : float
        Amplitude of the cosine landmark drive to E-PG while the heading cue is on.
    noise_std : float
        SD of Gaussian drive noise per unit and task step (held over the step); 0 = noise-free.
    pd_jitter_deg : float
        SD of the jitter of every E-PG and P-EN angle (degrees). Default 0: 0.5° already raises
        the ``fly`` task error from ~9° to 12–14°.
    weight_jitter : float
        Coefficient of variation of the jitter of every E-PG ↔ P-EN synapse (the Δ7 pathway is
        never jittered: 1 % there breaks integration). Default 0: 0.5 % raises the task error to
        11–15°.
    gain_jitter : float
        Coefficient of variation of single-cell gains, compensated on the outgoing synapses so
        that the dynamics are unchanged (:func:`~reference_circuits.base.apply_gain_jitter`).
    max_step_s : float
        Longest internal Euler step (s): 25 ms task steps are cut into 20 sub-steps.
    settle_s : float
        Settling time of the bump template that initialises trials.
    """

    alpha: float = 10.0
    beta: float = 25.0
    kappa: float = 12.0
    shift_deg: float = 34.0
    tau_epg_s: float = 0.080
    tau_ratio: float = 1.2
    b_epg: float = -1e-4
    b_pen: float = 1.0
    k_v: float = 199.0
    landmark_gain: float = 0.05
    noise_std: float = 0.0005
    pd_jitter_deg: float = 0.0
    weight_jitter: float = 0.0
    gain_jitter: float = 0.15
    max_step_s: float = 0.00125
    settle_s: float = 5.0

    def __post_init__(self):
        for name in ("kappa", "tau_epg_s", "tau_ratio", "k_v", "max_step_s", "settle_s"):
            if not getattr(self, name) > 0:
                raise HdbenchError(f"{name} must be > 0; got {getattr(self, name)}")
        if self.max_step_s > self.tau_epg_s / self.tau_ratio:
            raise HdbenchError(f"max_step_s={self.max_step_s} exceeds the P-EN time constant")
        if not self.noise_std >= 0:
            raise HdbenchError(f"noise_std must be >= 0; got {self.noise_std}")
        check_jitter(self.pd_jitter_deg, self.weight_jitter, self.gain_jitter)

    def to_dict(self) -> dict:
        return asdict(self)


def _von_mises(x: np.ndarray, kappa: float) -> np.ndarray:
    """Von Mises density on the circle, computed stably for large κ."""
    return np.exp(kappa * (np.cos(x) - 1.0)) / (2.0 * np.pi * i0e(kappa))


class FlyCircuit(ReferenceCircuit):
    """The fly reference circuit (see the module docstring); 54 + 9 + 9 + 9 units."""

    name = "fly"
    stream = 102

    def __init__(self, instance_seed: int = 0, **options):
        try:
            config = FlyConfig(**options)
        except TypeError as err:
            raise HdbenchError(f"bad options for reference circuit 'fly': {err}") from None
        super().__init__(config, instance_seed)

    def _build(self, rng: np.random.Generator) -> CircuitParts:
        c = self.config
        G, n_side = N_GLOMERULI, EPG_PER_GLOMERULUS_SIDE
        jitter = math.radians(c.pd_jitter_deg)
        theta = 2.0 * np.pi * np.arange(N_EPG) / N_EPG + jitter * rng.standard_normal(N_EPG)
        centre = np.radians((np.arange(G) + 0.5) * 360.0 / G) - np.pi / N_EPG
        psi = {side: centre + jitter * rng.standard_normal(G) for side in ("L", "R")}
        glomerulus = np.arange(N_EPG) // (2 * n_side)
        side_of = np.where(np.arange(N_EPG) % (2 * n_side) < n_side, "L", "R")

        E = slice(0, N_EPG)
        P = {"L": slice(N_EPG, N_EPG + G), "R": slice(N_EPG + G, N_EPG + 2 * G)}
        D = slice(N_EPG + 2 * G, N_EPG + 3 * G)
        N = D.stop
        W = np.zeros((N, N))
        shift = math.radians(c.shift_deg)
        for side, sigma in (("L", 1.0), ("R", -1.0)):
            rel = theta[:, None] - psi[side][None, :]
            W[E, P[side]] = (c.alpha / G) * (_von_mises(rel - sigma * shift, c.kappa)
                                             + 0.5 * _von_mises(rel, c.kappa))
            own = (glomerulus[None, :] == np.arange(G)[:, None]) & (side_of[None, :] == side)
            W[P[side], E] = (c.alpha / N_EPG) * own
            W[P[side], D] = -c.beta * np.eye(G)
        for block in ((E, slice(P["L"].start, P["R"].stop)), (slice(P["L"].start, P["R"].stop), E)):
            W[block] *= multiplicative_jitter(rng, W[block].shape, c.weight_jitter)
        W[D, E] = 1.0 / N_EPG

        tau_p = c.tau_epg_s / c.tau_ratio
        tau = np.r_[np.full(N_EPG, tau_p), np.full(2 * G, c.tau_epg_s), np.zeros(G)]
        bias = np.r_[np.full(N_EPG, c.b_epg), np.full(2 * G, c.b_pen), np.zeros(G)]
        sign = np.zeros(N)
        sign[P["L"]], sign[P["R"]] = 1.0, -1.0
        lead = np.zeros(N, dtype=bool)
        lead[P["L"]] = lead[P["R"]] = True
        landmark = np.zeros(N)
        landmark[E] = c.landmark_gain
        preferred = np.r_[np.mod(theta, 2 * np.pi), np.mod(psi["L"], 2 * np.pi),
                          np.mod(psi["R"], 2 * np.pi), np.full(G, np.nan)]
        return CircuitParts(
            populations=(Population("EPG", E.start, E.stop, "compass"),
                         Population("PEN_L", P["L"].start, P["L"].stop, "shifter"),
                         Population("PEN_R", P["R"].start, P["R"].stop, "shifter"),
                         Population("D7", D.start, D.stop, "inhibitory")),
            compass="EPG",
            weights=W,
            tau=tau,
            preferred=preferred,
            bias=bias,
            av_pos=sign / c.k_v,  # v_s = σ_s ω / k_v, split into [ω]₊ and [−ω]₊
            av_neg=-sign / c.k_v,
            landmark_gain=landmark,
            av_lead=lead,
        )
