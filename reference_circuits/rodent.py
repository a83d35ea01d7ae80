"""Rodent reference: DTN/LMN-like double ring (Xie, Hahnloser & Seung 2002) + ADN readout.

Two threshold-linear rings of 64 units (the "L" and "R" rings, the left/right DTN–LMN
analogues), each receiving from both rings through a cosine kernel with uniform inhibition whose
output is rotated by σφ (σ_L = −1, σ_R = +1), push–pull AV drive, and a 64-unit ADN population
that reads r_L + r_R (the compass cells; no AV drive, no feedback)::

    τ du_{s,i}/dt = −u_{s,i} + Σ_{s'} Σ_j (J₀ + J₁ cos(θ_i − θ_j − σ_{s'} φ))/N [u_{s',j}]₊
                    + b₀ + σ_s c_i ω/k_ω + landmark
    τ_A da_i/dt   = −a_i + Σ_j K_ij ([u_{L,j}]₊ + [u_{R,j}]₊) − t_i

(circuits.md §6.1). Cell types are derived from the model: the ring whose drive grows with CCW
rotation and whose output is rotated CCW (R) is ``shifter_ccw``, the other (L) ``shifter_cw``.
Units: 0–63 L ring, 64–127 R ring, 128–191 ADN; unit i of each ring has preferred direction
θ_i = 2πi/64, ADN cell i the centre φ_i of its readout kernel K_i. The heading estimate
(``Activity.outputs``) is a least-squares linear readout of the ADN cells fitted to their tuning
at rest (:func:`heading_readout`); the population vector of cells of different widths is biased
by several degrees.

Cell-to-cell variability of an instance (``instance_seed``), each aspect from its own generator:

- peak rates: single-cell gains, log-normal with CV ``gain_jitter`` = 0.5, compensated on the
  outgoing synapses so the dynamics are unchanged. HD-cell peak rates span an order of magnitude
  (postsubiculum ~5–115 Hz, mean ~35 Hz; ADN mean ~40 Hz: Taube, Muller & Ranck 1990; Taube 1995;
  values recalled, not re-verified: circuits.md §1.0 [R]); a CV of 0.5 gives a 5–95 % range of
  ~0.4–1.9 × the mean.
- ADN tuning widths: each ADN cell reads the rings through its own von Mises kernel K_i (broader
  cells) and threshold t_i (narrower cells), set so that its tuning width (FWHM at rest) is a
  log-normal draw with median ``adn_fwhm_deg`` = 60° and CV ``adn_fwhm_cv`` = 0.25 (5–95 %:
  40–90°). Anchors: the mouse ADn/PoS activity packet is ≈60° wide (Peyrache et al. 2015,
  abstract [P]); postsubicular cells have triangular tuning ~100° wide at the base, i.e. ~50° at
  half height (Taube et al. 1990 via a model paper [S]); ADN cells differ in width and peak rate,
  the two correlated with their anticipation (Blair, Lipscomb & Sharp 1997, abstract [P]). The
  spread (CV) is our estimate, not a published statistic. LMN-like ring cells stay at the ring's
  own width (~74°, broader than ADN, as LMN cells are: Stackman & Taube 1998 [P]); the ring cannot
  carry per-cell width differences without losing its continuous attractor (per-cell thresholds
  of 5–20 % with the ring's output weights refitted by least squares to restore its rotational
  symmetry still leave an estimated ~6°/s of drift: the thresholds' kinks do not cancel).
- AV sensitivity: each ring cell's AV drive is scaled by c_i (mean 1 per ring, so the speed
  calibration holds; CV ``av_jitter`` = 0.2; skewed, floor 0.75: :func:`av_sensitivities`).
  DTN/LMN AHV cells differ widely in their AHV slopes (Bassett & Taube 2001; Stackman & Taube
  1998 [P, abstracts; no spread given]); the CV is our estimate. At zero AV the drive is the
  same, so the bump does not drift; while turning, the bump speed varies a few per cent with
  its position (a bounded, position-dependent heading error rather than an accumulating one:
  with everything above, the ``rodent`` task error is 3.6–4.7° over instances 0–4, was
  3.4–3.7°). ADN cells get no AV drive and read both rings equally: unequal weights (ADN cells
  are modulated by AHV: Taube 1995 [R]) made the Gaussian-mixture cell-type labels of some
  instances lump most ADN cells with one shifter type.
- preferred directions: the ADN kernel centres φ_i = θ_i + N(0, ``pd_jitter_deg``); ring synapses
  get a multiplicative jitter of CV ``weight_jitter`` = 0.2 % (1 % already makes the bump drift
  1–2°/s); the circuit's own drive noise.

``VERSION`` is bumped whenever the circuit's outputs change (2: heterogeneous instances).
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
    check_range,
    lognormal_factors,
    multiplicative_jitter,
)

VERSION = 2

# Aspects of an instance's variability (independent generators, see base.jitter_rng).
_WEIGHTS, _AV, _ADN_PD, _ADN_WIDTH = 1, 2, 3, 4
_KAPPA_SHARP = 365.0  # narrowest ADN readout kernel (SD ~3°, about one ring column)
_KAPPA_BROAD = 0.5
_MAX_THRESHOLD = 0.95  # of the peak input, for the narrowest ADN cells
_GRID_PER_UNIT = 12  # bump positions per ring column at which ADN tuning widths are computed


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
        SD (degrees) of the jitter of the ADN cells' preferred directions (their readout
        kernels' centres). The rings' own directions stay exact: the ring is a continuous
        attractor and 0.1° of ring jitter already makes the bump drift ~1.4°/s.
    weight_jitter : float
        Coefficient of variation of the multiplicative jitter of every ring synapse (1 % gives
        drifts of 1–2°/s, hence the small default).
    gain_jitter : float
        Coefficient of variation of the single-cell gains (log-normal), compensated on the
        outgoing synapses so that the dynamics are unchanged
        (:func:`~reference_circuits.base.apply_gain_jitter`); sets the spread of peak rates.
    av_jitter : float
        Coefficient of variation of the ring cells' AV drive (mean 1 per ring, floor 0.75,
        :func:`av_sensitivities`).
    adn_fwhm_deg : float
        Median tuning width (FWHM at rest, degrees) of the ADN cells.
    adn_fwhm_cv : float
        Coefficient of variation of the ADN widths (log-normal, clipped to 30–150°); 0 gives every
        ADN cell the median width.
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
    gain_jitter: float = 0.5
    av_jitter: float = 0.2
    adn_fwhm_deg: float = 60.0
    adn_fwhm_cv: float = 0.25
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
        check_range("av_jitter", self.av_jitter, 0.0, 0.5)
        check_range("adn_fwhm_deg", self.adn_fwhm_deg, 30.0, 150.0)
        check_range("adn_fwhm_cv", self.adn_fwhm_cv, 0.0, 1.0)
        if not 2.0 * self.j1 * math.cos(math.radians(self.phi_deg)) > 2.0:
            raise HdbenchError(f"j1={self.j1}, phi_deg={self.phi_deg} give no bump: need "
                               "2·j1·cos(phi) > 2")

    def to_dict(self) -> dict:
        return asdict(self)


class RodentCircuit(ReferenceCircuit):
    """The rodent reference circuit (see the module docstring); 3 × 64 units."""

    name = "rodent"
    stream = 101
    config_class = RodentConfig

    version = VERSION

    def _build(self) -> CircuitParts:
        c = self.config
        n = c.n
        pd = 2.0 * np.pi * np.arange(n) / n
        phi = math.radians(c.phi_deg)
        N = 3 * n
        W = np.zeros((N, N))
        rings = (slice(0, n), slice(n, 2 * n))
        for sigma, source in zip((-1.0, 1.0), rings, strict=True):
            kernel = (c.j0 + c.j1 * np.cos(pd[:, None] - pd[None, :] - sigma * phi)) / n
            for target in rings:
                W[target, source] = kernel
        W *= multiplicative_jitter(self._rng(_WEIGHTS), W.shape, c.weight_jitter)
        av = av_sensitivities(self._rng(_AV), (2, n), c.av_jitter)
        # ADN: cell i reads both rings through its own kernel K_i, with its own threshold t_i.
        adn_pd = pd + math.radians(c.pd_jitter_deg) * self._rng(_ADN_PD).standard_normal(n)
        width = c.adn_fwhm_deg * lognormal_factors(self._rng(_ADN_WIDTH), n, c.adn_fwhm_cv)
        width = np.clip(width, 30.0, 150.0)
        bump = ring_bump(c, pd)
        kernel, threshold = adn_readout(pd, adn_pd, np.radians(width), bump)
        adn = slice(2 * n, 3 * n)
        W[adn, rings[0]] = kernel
        W[adn, rings[1]] = kernel
        tau = np.r_[np.full(2 * n, c.tau_s), np.full(n, c.tau_adn_s)]
        bias = np.r_[np.full(2 * n, c.b0), -threshold]
        sign = np.r_[-av[0], av[1], np.zeros(n)]  # σ_s c_i
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
            av_pos=sign / c.k_omega,    # b_s = b0 + σ_s c_i ω / k_ω, split into [ω]₊ and [−ω]₊
            av_neg=-sign / c.k_omega,
            landmark_gain=landmark,
            from_inputs=np.r_[np.zeros(2 * n, bool), np.ones(n, bool)],
            decoder=np.r_[np.zeros((2 * n, 2)), heading_readout(kernel, threshold, bump)],
        )


def av_sensitivities(rng: np.random.Generator, shape, cv: float) -> np.ndarray:
    """Relative AV drive of the ring cells: c = 0.75 + 0.25·L, L log-normal with CV 4·``cv``,
    rescaled to mean 1 per ring (rows), so c has mean 1 and CV ``cv``.

    Mean 1 keeps the bump-speed calibration. The floor 0.75 keeps every ring cell AV-asymmetric
    enough to be classified a shifter, which is its role (at c = 1 its AV asymmetry is ~0.045,
    the classification threshold 0.03); the long right tail gives a few strongly AV-driven
    cells, as AHV slopes of DTN/LMN cells are skewed.
    """
    excess = lognormal_factors(rng, shape, 4.0 * cv)
    return 0.75 + 0.25 * excess / excess.mean(axis=-1, keepdims=True)


def ring_bump(config: RodentConfig, pd: np.ndarray) -> np.ndarray:
    """[n, G] rate of every ring unit (either ring, at zero AV) for bump centres on a grid of
    G = 12n angles: the fixed point of the noise-free double ring, A [cos x − cos x₀]₊.

    With both rings equal the two rotated kernels sum to 2J₀ + 2J₁cos φ cos Δ, so in the
    continuum 2J₁cos φ (x₀ − sin x₀ cos x₀)/(2π) = 1 fixes the half base width x₀ and
    b₀ + 2J₀ A (sin x₀ − x₀ cos x₀)/π = −A cos x₀ the amplitude A.
    """
    from scipy.optimize import brentq

    j1 = 2.0 * config.j1 * math.cos(math.radians(config.phi_deg))
    x0 = brentq(lambda x: j1 * (x - math.sin(x) * math.cos(x)) / (2 * math.pi) - 1.0,
                1e-6, math.pi)
    denom = -math.cos(x0) - 2.0 * config.j0 * (math.sin(x0) - x0 * math.cos(x0)) / math.pi
    if not denom > 0:
        raise HdbenchError(f"j0={config.j0} gives no bounded bump")
    amplitude = config.b0 / denom
    n_grid = _GRID_PER_UNIT * pd.shape[0]  # a multiple of n: equal cells sample equally
    grid = 2.0 * np.pi * np.arange(n_grid) / n_grid
    return amplitude * np.maximum(np.cos(pd[:, None] - grid[None, :]) - math.cos(x0), 0.0)


def heading_readout(kernel: np.ndarray, threshold: np.ndarray, bump: np.ndarray,
                    ridge: float = 1e-6) -> np.ndarray:
    """[cells, 2] (sin, cos) weights of the least-squares linear heading readout of the ADN cells'
    tuning curves at rest, [K_i · 2 bump − t_i]₊ over the bump positions of ``bump``.

    With equal cells this is the population vector; with cells of different widths the population
    vector is biased towards the broad cells' directions by up to several degrees, the fitted
    readout is not (ridge: relative Tikhonov regularisation).
    """
    rates = np.maximum(kernel @ (2.0 * bump) - threshold[:, None], 0.0)  # [cells, G]
    grid = 2.0 * np.pi * np.arange(bump.shape[1]) / bump.shape[1]
    target = np.stack([np.sin(grid), np.cos(grid)], axis=1)
    gram = rates @ rates.T
    gram += ridge * np.trace(gram) / gram.shape[0] * np.eye(gram.shape[0])
    return np.linalg.solve(gram, rates @ target)


def _kernels(pd: np.ndarray, centre: np.ndarray, kappa: np.ndarray) -> np.ndarray:
    """[cells, n] von Mises kernels over the ring columns, each summing to 1."""
    k = np.exp(kappa[:, None] * (np.cos(pd[None, :] - centre[:, None]) - 1.0))
    return k / k.sum(axis=1, keepdims=True)


def _widths(rates: np.ndarray) -> np.ndarray:
    """FWHM (rad) of single-peaked curves [cells, G] sampled on a uniform circular grid."""
    lo, hi = rates.min(axis=1, keepdims=True), rates.max(axis=1, keepdims=True)
    return 2.0 * np.pi * np.mean(rates >= 0.5 * (lo + hi), axis=1)


def adn_readout(pd: np.ndarray, centre: np.ndarray, width: np.ndarray, bump: np.ndarray):
    """Kernels K [cells, n] and thresholds t [cells] that give each ADN cell its tuning width.

    One monotone parameter p ∈ [−1, 1] per cell: p ≤ 0 keeps the sharpest kernel and raises the
    threshold to −p·0.95 of the peak input (narrower than the ring); p > 0 keeps t = 0 and widens
    the kernel (broader). p is found by bisection on the cell's FWHM at rest, computed from the
    input 2·K_i·bump (the two rings are equal at zero AV). Targets outside the reachable range
    end at its bounds.
    """
    cells = centre.shape[0]
    sharp = np.full(cells, _KAPPA_SHARP)
    peak = (_kernels(pd, centre, sharp) @ (2.0 * bump)).max(axis=1)

    def build(p):
        kappa = np.where(p > 0, _KAPPA_SHARP * (_KAPPA_BROAD / _KAPPA_SHARP) ** np.maximum(p, 0),
                         _KAPPA_SHARP)
        threshold = np.where(p < 0, -p * _MAX_THRESHOLD * peak, 0.0)
        return _kernels(pd, centre, kappa), threshold

    lo, hi = np.full(cells, -1.0), np.full(cells, 1.0)
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        kernel, threshold = build(mid)
        rates = np.maximum(kernel @ (2.0 * bump) - threshold[:, None], 0.0)
        too_wide = _widths(rates) > width
        hi = np.where(too_wide, mid, hi)
        lo = np.where(too_wide, lo, mid)
    return build(0.5 * (lo + hi))
