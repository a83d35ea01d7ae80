"""An analytic ring system whose published-style properties are known by construction.

Compass units have triangular HD tuning on a baseline (FWHM = the triangle's half base) and
fire ``ati_compass`` seconds ahead of the heading; CW and CCW shifters have the same tuning, fire
``ati_shifter`` ahead, and are gain-modulated by AV through a sigmoid of chosen 10–90 % width
(their bandwidth) on a baseline gain; each shifter projects onto the compass units with a von
Mises kernel centred ``shift`` away from its preferred direction, in its turn direction. Rates
are computed from the trial's true heading (no dynamics), so every property has a closed form:
see :func:`expected_lead`.
"""

from __future__ import annotations

import math

import numpy as np

from hdbench.system import Activity, split_inputs

LN81 = 2.0 * math.log(9.0)


class PropertyRing:
    """The analytic ring (units: compass, then CCW shifters, then CW shifters, then silent).

    Parameters
    ----------
    n_compass, n_side : compass units and shifters per turn direction
    n_silent : extra silent units (inactive)
    fwhm_deg : FWHM of every tuning curve (the triangle's base is twice that)
    baseline : rate floor of the tuning curves (peak is 1 + baseline)
    ati_compass_ms, ati_shifter_ms : how far ahead of the heading the units fire
    shift_deg : offset of each shifter's projection in its turn direction
    gain_base : AV gain g(v) = gain_base + 1 / (1 + exp(−s·v)), v the AV in the unit's turn
        direction (°/s); 0 silences a shifter in the other direction
    bandwidths : 10–90 % width (°/s) of the gain sigmoid: one number or one per shifter
    dt : seconds per step
    """

    def __init__(self, n_compass=36, n_side=36, n_silent=0, fwhm_deg=90.0, baseline=0.1,
                 ati_compass_ms=20.0, ati_shifter_ms=20.0, shift_deg=45.0, gain_base=0.8,
                 bandwidths=145.0, dt=0.025):
        self.n_compass, self.n_side, self.n_silent = n_compass, n_side, n_silent
        self.half_base = math.radians(fwhm_deg)  # a triangle's FWHM is half its base
        self.baseline = baseline
        self.ati = (ati_compass_ms / 1e3, ati_shifter_ms / 1e3)
        self.shift = math.radians(shift_deg)
        self.gain_base = gain_base
        self.bandwidths = np.broadcast_to(np.asarray(bandwidths, dtype=np.float64),
                                          (2 * n_side,)).copy()
        self.dt = dt
        self.pd_compass = 2 * np.pi * (np.arange(n_compass) + 0.5) / n_compass
        self.pd_side = 2 * np.pi * np.arange(n_side) / n_side
        self.sign = np.r_[np.ones(n_side), -np.ones(n_side)]  # CCW then CW
        self.cell_types = ("compass",) * n_compass + ("shifter_ccw",) * n_side + \
            ("shifter_cw",) * n_side + ("other",) * n_silent

    @property
    def n_units(self) -> int:
        return self.n_compass + 2 * self.n_side + self.n_silent

    def gain(self, av_deg_s: np.ndarray) -> np.ndarray:
        """[..., shifters] AV gain of every shifter at AV ``av_deg_s`` [...]."""
        slope = LN81 / self.bandwidths
        v = av_deg_s[..., None] * self.sign
        return self.gain_base + 1.0 / (1.0 + np.exp(-np.clip(slope * v, -60, 60)))

    def _tuning(self, heading: np.ndarray, pd: np.ndarray) -> np.ndarray:
        d = np.abs(np.angle(np.exp(1j * (heading[..., None] - pd))))
        return self.baseline + np.clip(1.0 - d / self.half_base, 0.0, None)

    def _ahead(self, unwrapped: np.ndarray, seconds: float) -> np.ndarray:
        steps = np.arange(unwrapped.shape[1], dtype=np.float64)
        return np.stack([np.interp(steps + seconds / self.dt, steps, row) for row in unwrapped])

    def simulate(self, inputs, seed=None, silence=None) -> Activity:
        array, heading, av = split_inputs(inputs)
        theta0 = np.arctan2(array[:, 0, 1], array[:, 0, 2]).astype(np.float64)
        av_steps = array[:, :, 0].astype(np.float64)
        unwrapped = theta0[:, None] + np.cumsum(av_steps, axis=1)
        compass_heading = self._ahead(unwrapped, self.ati[0])
        shifter_heading = self._ahead(unwrapped, self.ati[1])
        pd_shifters = np.r_[self.pd_side, self.pd_side]
        rates = np.concatenate([
            self._tuning(compass_heading, self.pd_compass),
            self._tuning(shifter_heading, pd_shifters)
            * self.gain(np.degrees(av_steps) / self.dt),
            np.zeros(array.shape[:2] + (self.n_silent,)),
        ], axis=-1)
        outputs = np.stack([np.sin(compass_heading), np.cos(compass_heading)], axis=-1)
        return Activity(rates=rates.astype(np.float32), outputs=outputs.astype(np.float32),
                        inputs=array, heading=heading, av=av, cell_types=self.cell_types)

    def recurrent_weights(self) -> np.ndarray:
        """Shifter → compass von Mises projections (κ = 4) shifted in the turn direction."""
        W = np.zeros((self.n_units, self.n_units))
        pd_shifters = np.r_[self.pd_side, self.pd_side]
        target = pd_shifters + self.sign * self.shift
        W[:self.n_compass, self.n_compass:self.n_compass + 2 * self.n_side] = np.exp(
            4.0 * (np.cos(self.pd_compass[:, None] - target[None, :]) - 1.0))
        return W


def expected_lead(ring: PropertyRing, av_deg_s: np.ndarray) -> float:
    """Lead (°) of the shifters' population vector over the compass one, from the construction.

    In the continuum limit, aligned on the compass vector and mirrored for CW turns, the CCW
    shifters (peak-normalised gain g̃) sum to Σ g̃(v) e^{+iS}, the CW ones to Σ g̃(−v) e^{−iS};
    the lead is the angle of their mean over the samples. Valid when both populations fire
    equally far ahead (same ATI) and all shifters share one bandwidth (then each unit's peak
    normalisation is a common factor).
    """
    v = np.abs(np.asarray(av_deg_s, dtype=np.float64))
    g = ring.gain(v)  # [samples, shifters], in the CCW-turn frame
    vec = (g * np.exp(1j * ring.sign * ring.shift)).sum(1).mean()
    return math.degrees(np.angle(vec))
