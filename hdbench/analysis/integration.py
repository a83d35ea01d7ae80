"""Does a system integrate angular velocity? The decoded-vs-true heading gain.

Cell types of a network are only comparable with another network's if both do the task: a
network that does not integrate AV has no reason to hold CW / CCW shifters, and its AV
asymmetries scale with the AV range it was trained on. :func:`integration_gain` measures it,
:func:`integration_refusal` turns it into a one-line refusal to compare.

Definition: for each trial, the change of the system's decoded heading (unwrapped along time)
from the first step after the cue to the last step, against the true change (the sum of AV over
the same steps). The **gain** is the least-squares slope (with intercept) of the decoded change
on the true change across trials: 1 for a perfect integrator, 0 for a network whose estimate
does not follow the turns, between for one that under-integrates. Its confidence interval
resamples trials. AV > 0 is a counter-clockwise (CCW) turn, for both changes.
"""

from __future__ import annotations

import numpy as np

from hdbench.errors import HdbenchError

#: Gains outside this range: the system does not integrate well enough for its cell types to be
#: compared with another system's (issue 17; a 20 % error in the integrated heading).
INTEGRATION_RANGE = (0.8, 1.2)


def heading_changes(activity, trials=None, *, skip_steps: int | None = None):
    """Decoded and true heading change per trial after the cue (rad): ``(decoded, true)``."""
    av = activity.av if activity.av is not None else getattr(trials, "av", None)
    if av is None:
        raise HdbenchError("the integration gain needs the trials' AV: simulate from a Trials "
                           "object or pass trials=")
    av = np.asarray(av, dtype=np.float64)
    if skip_steps is None:
        skip_steps = trials.spec.cue_steps if trials is not None else 10
    if not 0 <= skip_steps < av.shape[1] - 1:
        raise HdbenchError(f"skip_steps must lie in [0, {av.shape[1] - 1}); got {skip_steps}")
    decoded = np.unwrap(activity.decoded_heading(), axis=1)
    return (decoded[:, -1] - decoded[:, skip_steps],
            av[:, skip_steps + 1:].sum(1))


def weighted_slopes(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted least-squares slopes of y on x, one per row of weights ``w`` [B, n]."""
    sw = w.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx, my = (w @ x) / sw, (w @ y) / sw
        sxy = w @ (x * y) - sw * mx * my
        sxx = w @ (x * x) - sw * mx * mx
        return np.where(sxx > 0, sxy / np.where(sxx > 0, sxx, 1.0), np.nan)


def integration_gain(activity, trials=None, *, skip_steps: int | None = None,
                     n_boot: int = 1000, level: float = 0.9, seed: int = 0,
                     bounds=INTEGRATION_RANGE) -> dict:
    """Decoded-vs-true heading gain of a system on a batch of trials (see the module docstring).

    Parameters
    ----------
    activity : hdbench.system.Activity
        Noise-free simulation of ``trials``.
    trials : hdbench.task.Trials, optional
        Supplies AV and the cue length when the activity lacks them.
    n_boot, level, seed
        Bootstrap resamples of trials, confidence level and seed of the interval.
    bounds : (float, float)
        The range of gains counted as integrating.

    Returns
    -------
    dict with ``gain``, ``gain_lo``, ``gain_hi``, ``n_trials``, ``integrates`` (gain within
    ``bounds``) and ``bounds``.
    """
    from hdbench.analysis.stats import bootstrap_counts, percentile_interval

    decoded, true = heading_changes(activity, trials, skip_steps=skip_steps)
    n = true.size
    if n < 3 or not np.ptp(true) > 0:
        raise HdbenchError(f"the integration gain needs >= 3 trials with different heading "
                           f"changes; got {n}")
    gain = float(weighted_slopes(true, decoded, np.ones((1, n)))[0])
    lo, hi = percentile_interval(weighted_slopes(true, decoded, bootstrap_counts(n, n_boot, seed)),
                                 level) if n_boot > 0 else (np.nan, np.nan)
    low, high = (float(b) for b in bounds)
    return {"gain": gain, "gain_lo": lo, "gain_hi": hi, "n_trials": int(n),
            "integrates": bool(low <= gain <= high), "bounds": [low, high]}


def integration_refusal(gain: float, name: str = "the system",
                        bounds=INTEGRATION_RANGE) -> str | None:
    """None when ``gain`` lies within ``bounds``; else the one-line reason why the cell types
    of ``name`` are not compared with another system's."""
    low, high = (float(b) for b in bounds)
    if np.isfinite(gain) and low <= gain <= high:
        return None
    return (f"{name} does not integrate AV (decoded-vs-true heading gain {gain:.2f}, outside "
            f"{low:g}-{high:g}): its cell-type fractions are not compared")


__all__ = ["INTEGRATION_RANGE", "heading_changes", "integration_gain", "integration_refusal",
           "weighted_slopes"]
