"""Fly reference: the E-PG / P-EN / Δ7 circuit of Turner-Evans et al. (2017).

Populations (circuits.md §6.2): 54 E-PG (compass; 3 per PB glomerulus per side, EB angle
θ_n = 2πn/54, glomerulus k(n) = ⌊n/6⌋, left side if n mod 6 < 3), 9 left and 9 right P-EN (one per
glomerulus, column centre ψ_k = (k + ½)·40° − 3.33°) and 9 Δ7 (one per glomerulus).

Published rate equations (E, P = rates; α = 10, β = 25, κ = 12, τ_E = 80 ms, τ_P = τ_E/1.2)::

    τ_E dE/dt = −E + [W^{EP} P + b_E]₊
    τ_P dP/dt = −P + [W^{PE} E − β·mean(E) + b_P + v]₊

with W^{EP}_{n;s,k} = (α/9)(VM(θ_n − ψ_k − σ_s·34°; κ) + w₀ VM(θ_n − ψ_k; κ)), σ_L = +1,
σ_R = −1, W^{PE} = α/54 from the 3 E-PGs of the P-EN's own glomerulus and side, b_E = −10⁻⁴,
b_P = 1. Published w₀ = ½; here w₀ = 0.35 (see below).

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
grows (3.1° → 3.6°; with the published w₀ = ½ by ~3°).

Δ7 makes the published global inhibition an explicit, silenceable population: each Δ7 unit
averages all E-PGs and inhibits the two P-ENs of its glomerulus. It is an instantaneous relay (it
follows its input one Euler sub-step later), as the published inhibition is instantaneous; a Δ7
time constant above ~3 ms makes the E-PG → Δ7 → P-EN loop oscillate. That loop is stiff (gain
~120 when all P-ENs are active; a ~16 Hz mode damped at ~14/s): forward Euler needs sub-steps of
<= 1.25 ms (20 per 25 ms task step; 16 already fails). At 20 sub-steps the relay's one-sub-step
delay and the Euler error leave that mode damped at only ~1.4/s; the pinned published circuit
hides this, but with the pinning cancelled (w₀ below) the ringing moves the bump, and the heading
after a 500-step trial differs from a 10× finer integration by up to ~2° (median 0.5°). 24
sub-steps (1.04 ms; damping ~3.4/s) keep 98 % of ``fly`` trials within 1° of the finer integration
(median 0.3°, max 1.3°), at 20 % more time.

First deviation from the published model: AV drives the two sides push–pull, v_L = +ω/k_v and
v_R = −ω/k_v, instead of rectified to one side ([ω]₊, [−ω]₊). P-ENs are excited by ipsiversive
and inhibited by contraversive turns (Turner-Evans et al. 2017), the bump-speed curve keeps its
published shape (linear over 55–170°/s, saturating), and with constant total P-EN drive the stiff
loop is not kicked at every change of turning direction, which makes the coarse simulation agree
with finer ones.

Second deviation from the published model: the weight w₀ of the unshifted component of the P-EN →
E-PG projection is 0.35 instead of ½. With 9 P-EN columns the published circuit is a discrete
attractor: at zero AV the bump slides to the nearest column centre ψ_k (9 stable headings, restoring
speed up to ~11°/s, relaxation time ~0.6 s), and below ~15°/s it does not move at all (bump speed at
10°/s: 10 % of the AV) and then slips. The ``fly`` task (AV SD 54°/s, long zero-AV stretches) lives
in that range, so its heading error was 11.0°. The 9-fold pinning force comes from the thresholded
P-EN rates sampled at 9 columns and projected back through the shifted and unshifted kernels; as a
function of w₀ it changes sign, and at w₀ = 0.35 (κ = 12, 34° shift) it nearly vanishes: the
residual restoring speed is < 1°/s, the bump speed tracks AV within 3 % from 5 to 200°/s and the
``fly`` task error is ~3° (2.9–3.1° over task seeds and instances; w₀ = 0.34–0.36: 3.1–4.0°,
w₀ = 0.3 or 0.4: ~7°). w₀ is a modelling choice of the published model, not a measured quantity (the
anatomy gives the shift, one tile, not the relative strength of unshifted P-EN output), so it is the
parameter that was re-tuned (k_v re-calibrated with it); the cost is a wider bump (E-PG FWHM ~160°
instead of ~140°, biology ~90°; P-EN ~110° instead of ~99°) and a saturation speed of ~240°/s
instead of ~225°/s. Levers that do not help: the width of the P-EN → E-PG kernel (at w₀ = ½,
κ = 4–16 gives task errors of 8.3–12.5°, below κ = 10 with the speed curve outside ±5 % over
55–170°/s; κ = 3 breaks integration and κ ≥ 25 the single E-PG bump: the pinning comes from the P-EN
threshold, not the kernel width), a better linear decoder (a least-squares readout of all E-PG and
P-EN rates does no better than the E-PG population vector: the heading is lost in the dynamics, not
in the readout) and local E-PG → E-PG excitation (it only moves the cancellation point, and the
current formulation above would no longer be exact). Shortening the shift to 28° also cancels most
of the pinning (task error 5.9°) but lowers the saturation speed to ~207°/s, against the 35° of the
paper and the one-tile (45°) anatomy.

Cell-to-cell variability of an instance (``instance_seed``). The circuit is finely tuned: far
P-ENs sit ~0.02 below threshold, held there by the balance of their bias and the Δ7 inhibition,
so any per-cell change the ring's symmetry does not absorb pins or moves the bump. Measured on the
``fly`` task (100 trials, instances 0–2; default ~3°): jitter of the angles or E-PG ↔ P-EN
synapses (off by default, see :class:`FlyConfig`) 0.5° or 0.5 % → 8.5–12°; per-P-EN AV input
strengths (``av_jitter``, log-normal, mean 1 per side) CV 0.05 → 3.5–5.2°, 0.1 → 4.9–9.1°, 0.2 →
7.9–19° (also with the L and R P-EN of a glomerulus varied in opposite directions, which keeps
their differential drive: 0.1 → 5.1–5.8°). An instance therefore varies in:

- single-cell gains, log-normal with CV ``gain_jitter`` = 0.5, compensated on the outgoing
  synapses so that the dynamics are exactly unchanged. They scale each cell's peak rate and its
  AV modulation in rate units: the rate modulation of single P-ENs with rotational velocity is
  5.6 ± 3.7 Hz (Turner-Evans et al. 2017, N = 12 cells [P]), a CV of 0.66 that also holds
  measurement noise and differences of AV input; the gains give most of it. The compensating
  synaptic scaling makes W heterogeneous (CV ~0.75 per synapse; E-PG → P-EN synapse counts in
  the connectome range 2–22 per cell pair, Turner-Evans et al. 2020 [C]); with only 9 P-ENs per
  side, the shifters' offsets estimated from W then miss the built-in 34° by up to ~15° in some
  instances. The peak-normalised AV slopes and the P-ENs' AV bandwidth (145 ± 82°/s,
  Turner-Evans et al. 2017) do not vary: neither can without breaking integration (above), so
  ``av_jitter`` is 0. E-PG single-cell tuning widths are not among the documented numbers (the
  ≈90° is the width of the bump in imaging) and stay those of the published model. (Sharing a
  glomerulus' EB input differently among its three E-PGs leaves the dynamics exactly unchanged,
  but widened the E-PG width range only from 150–162° to 135–165° and made some E-PGs
  AV-asymmetric; not adopted.)
- the circuit's own drive noise.

``VERSION`` is bumped whenever the circuit's outputs change (2: log-normal gains of CV 0.5
instead of normal gains of CV 0.15; drive noise scaled by the gains).

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
    check_range,
    lognormal_factors,
    multiplicative_jitter,
)

VERSION = 2

# Aspects of an instance's variability (independent generators, see base.jitter_rng).
_STRUCTURE, _AV = 1, 2

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
    unshifted_weight : float
        Weight w₀ of the unshifted component of the P-EN → E-PG projection relative to the shifted
        one (published ½). 0.35 cancels the 9-column pinning (module docstring); 0.3 or 0.4
        already doubles the ``fly`` task error.
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
        the ``fly`` task error from ~3° to 9–12° (instances 0 and 1).
    weight_jitter : float
        Coefficient of variation of the jitter of every E-PG ↔ P-EN synapse (the Δ7 pathway is
        never jittered: 1 % there breaks integration). Default 0: 0.5 % raises the task error
        from ~3° to 8.5–9°.
    gain_jitter : float
        Coefficient of variation of the single-cell gains (log-normal), compensated on the
        outgoing synapses so that the dynamics are unchanged
        (:func:`~reference_circuits.base.apply_gain_jitter`); sets the spread of peak rates.
    av_jitter : float
        Coefficient of variation of the P-ENs' AV drive (log-normal, mean 1 per side). Default 0:
        0.1 already raises the ``fly`` task error from ~3° to 5–9° (module docstring).
    max_step_s : float
        Longest internal Euler step (s): 25 ms task steps are cut into 24 sub-steps (module
        docstring; 20 is the stability limit).
    settle_s : float
        Settling time of the bump template that initialises trials.
    """

    alpha: float = 10.0
    beta: float = 25.0
    kappa: float = 12.0
    shift_deg: float = 34.0
    unshifted_weight: float = 0.35
    tau_epg_s: float = 0.080
    tau_ratio: float = 1.2
    b_epg: float = -1e-4
    b_pen: float = 1.0
    k_v: float = 211.5
    landmark_gain: float = 0.05
    noise_std: float = 0.0005
    pd_jitter_deg: float = 0.0
    weight_jitter: float = 0.0
    gain_jitter: float = 0.5
    av_jitter: float = 0.0
    max_step_s: float = 0.025 / 24
    settle_s: float = 5.0

    def __post_init__(self):
        for name in ("kappa", "tau_epg_s", "tau_ratio", "k_v", "max_step_s", "settle_s"):
            if not getattr(self, name) > 0:
                raise HdbenchError(f"{name} must be > 0; got {getattr(self, name)}")
        if self.max_step_s > self.tau_epg_s / self.tau_ratio:
            raise HdbenchError(f"max_step_s={self.max_step_s} exceeds the P-EN time constant")
        if not self.noise_std >= 0:
            raise HdbenchError(f"noise_std must be >= 0; got {self.noise_std}")
        if not self.unshifted_weight >= 0:
            raise HdbenchError(f"unshifted_weight must be >= 0; got {self.unshifted_weight}")
        check_jitter(self.pd_jitter_deg, self.weight_jitter, self.gain_jitter)
        check_range("av_jitter", self.av_jitter, 0.0, 1.0)

    def to_dict(self) -> dict:
        return asdict(self)


def _von_mises(x: np.ndarray, kappa: float) -> np.ndarray:
    """Von Mises density on the circle, computed stably for large κ."""
    return np.exp(kappa * (np.cos(x) - 1.0)) / (2.0 * np.pi * i0e(kappa))


class FlyCircuit(ReferenceCircuit):
    """The fly reference circuit (see the module docstring); 54 + 9 + 9 + 9 units."""

    name = "fly"
    stream = 102
    version = VERSION
    config_class = FlyConfig

    def _build(self) -> CircuitParts:
        c = self.config
        rng = self._rng(_STRUCTURE)
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
                                             + c.unshifted_weight * _von_mises(rel, c.kappa))
            own = (glomerulus[None, :] == np.arange(G)[:, None]) & (side_of[None, :] == side)
            W[P[side], E] = (c.alpha / N_EPG) * own
            W[P[side], D] = -c.beta * np.eye(G)
        for block in ((E, slice(P["L"].start, P["R"].stop)), (slice(P["L"].start, P["R"].stop), E)):
            W[block] *= multiplicative_jitter(rng, W[block].shape, c.weight_jitter)
        W[D, E] = 1.0 / N_EPG
        av = lognormal_factors(self._rng(_AV), (2, G), c.av_jitter)
        av /= av.mean(axis=1, keepdims=True)

        tau_p = c.tau_epg_s / c.tau_ratio
        tau = np.r_[np.full(N_EPG, tau_p), np.full(2 * G, c.tau_epg_s), np.zeros(G)]
        bias = np.r_[np.full(N_EPG, c.b_epg), np.full(2 * G, c.b_pen), np.zeros(G)]
        sign = np.zeros(N)
        sign[P["L"]], sign[P["R"]] = av[0], -av[1]  # σ_s c_k
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
