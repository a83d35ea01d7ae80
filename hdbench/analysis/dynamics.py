"""Dynamics: silencing experiments, slow points, drift and diffusion, robustness, generalisation.

Heading estimates come from the system's own outputs (``Activity.decoded_heading``); the bump is
the population vector of the compass units (papers.md §1.7). Times are task steps internally;
drifts are reported in rad/s using the task's ``dt``. AV > 0 is a counter-clockwise (CCW) turn.

Slow points (Sussillo & Barak 2013; papers.md §1.8) need the system's autonomous vector field.
:func:`vector_field` provides it

- for the :class:`~hdbench.models.CTRNN`, from its parameters:
  ``F(a) = α (−a + (W ⊙ mask) f(a) + b)``, the change of the pre-activation per task step at
  zero input (AV = 0, cue off);
- for any other system that implements the **vector-field protocol**:

  ``system.vector_field(a: torch.Tensor[, dt: float]) -> torch.Tensor``
      the change of the state per task step of ``dt`` seconds at zero input (``(da/dt) · dt``
      for a continuous-time circuit), differentiable with torch, for states ``a`` of shape
      ``[..., n_units]`` in the coordinates of ``Activity.preactivations`` (``dt`` is passed
      when the method takes it);
  ``system.state_rates(a: torch.Tensor) -> torch.Tensor`` (optional)
      the rates ``[..., n_units]`` of a state, used to read the heading of a slow point;
  and ``simulate`` fills ``Activity.preactivations`` ``[batch, time, n_units]``, the states
  from which the search starts.

Until the reference circuits implement the protocol, :func:`vector_field` builds their field
from their integration parameters (threshold-linear units, per-unit ``dt/τ``).
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hdbench.analysis.integration import weighted_slopes
from hdbench.analysis.tuning import TWO_PI, population_vector
from hdbench.errors import HdbenchError
from hdbench.system import Silence
from hdbench.task import TaskSpec, decode_heading, get_spec, make_trials

TUNED = ("compass", "shifter_cw", "shifter_ccw")


# --------------------------------------------------------------------------------------------
# Helpers


def _wrap(x):
    return np.angle(np.exp(1j * np.asarray(x)))


def unwrapped_heading(activity) -> np.ndarray:
    """The system's decoded heading, unwrapped along time [batch, time] (rad)."""
    return np.unwrap(activity.decoded_heading(), axis=1)


def _spec(spec) -> TaskSpec:
    return get_spec(spec)


def _group_units(table: pd.DataFrame) -> dict[str, tuple[int, ...]]:
    """Unit groups of a classified table: compass, shifter_cw, shifter_ccw, shifters."""
    types = table["cell_type"].to_numpy()
    groups = {t: tuple(int(i) for i in np.nonzero(types == t)[0]) for t in TUNED}
    groups["shifters"] = tuple(sorted(groups["shifter_cw"] + groups["shifter_ccw"]))
    return groups


def _bump_units(table: pd.DataFrame) -> np.ndarray:
    """Compass units, or all HD-tuned units when there are none."""
    types = table["cell_type"].to_numpy()
    units = np.nonzero(types == "compass")[0]
    return units if units.size else np.nonzero(np.isin(types, TUNED))[0]


def _simulate(system, inputs, *, seed=None, silence=None, noise_std=0.0):
    """system.simulate, passing ``noise_std`` only to systems that accept it."""
    if noise_std > 0:
        if "noise_std" not in inspect.signature(system.simulate).parameters:
            raise HdbenchError(f"{type(system).__name__}.simulate has no noise_std option; "
                               "use input noise instead")
        return system.simulate(inputs, seed=seed, silence=silence, noise_std=noise_std)
    return system.simulate(inputs, seed=seed, silence=silence)


def _fit_slopes(y: np.ndarray) -> np.ndarray:
    """Least-squares slope per row of y [rows, time] against the step index."""
    t = np.arange(y.shape[1], dtype=np.float64)
    tc = t - t.mean()
    return ((y - y.mean(1, keepdims=True)) * tc).sum(1) / (tc**2).sum()


# --------------------------------------------------------------------------------------------
# Silencing


#: Effect measures of a silencing run, compared with the matched random controls.
SILENCING_MEASURES = ("drift", "gain", "abs_gain", "amplitude")


def _silencing_groups(table: pd.DataFrame, extra_groups: bool) -> dict[str, tuple[int, ...]]:
    """The silenced groups: the cell types, both shifter types, and optionally the fifth of the
    HD-tuned units with the highest and with the lowest |A| (class-free groups)."""
    groups = {"none": (), **_group_units(table)}
    if extra_groups:
        tuned = np.nonzero(table["cell_type"].isin(TUNED).to_numpy())[0]
        k = int(round(tuned.size / 5))
        if k:
            a = np.abs(table["av_asymmetry"].to_numpy()[tuned])
            order = tuned[np.argsort(a, kind="stable")]
            groups["high_abs_A"] = tuple(sorted(int(i) for i in order[-k:]))
            groups["low_abs_A"] = tuple(sorted(int(i) for i in order[:k]))
    return groups


@dataclass
class _Runs:
    """What the silencing measures need from one simulated condition (holds + turns)."""

    theta: np.ndarray  # unwrapped decoded heading on holds [trials, time]
    est: np.ndarray  # decoded heading change over the window on turns [trials]
    rel: np.ndarray  # bump amplitude of the non-silenced tuned units, relative [trials, time]
    bump: np.ndarray  # amplitude of the compass bump, relative [trials, time]
    norm: np.ndarray  # output norm on holds [trials, time]


def _relative_amplitude(rates, preferred, units, on, locked: bool = True) -> np.ndarray:
    """Bump amplitude of ``units`` relative to its mean over the 40 steps before ``on``
    [trials, time] (NaN without units): the amplitude of their population vector.

    ``locked``: only its heading-locked part, each trial's vector minus the mean vector over
    trials at the same step. The trials start at random headings, so a bump's vectors average
    out, while a uniform rise of cells with unequal gains (which points the same way on every
    trial) does not pass for a bump; nor does a bump that re-forms at the same place on every
    trial, which no longer holds the trial's heading.
    """
    if not len(units):
        return np.full(rates.shape[:2], np.nan)
    units = np.asarray(units)
    vec = np.clip(rates[..., units], 0.0, None) @ np.exp(1j * preferred[units])
    amp = np.abs(vec - vec.mean(0, keepdims=True)) if locked else np.abs(vec)
    ref = amp[:, on - 40:on].mean(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return amp / ref[:, None]


def _run(system, inputs, n, units, on, off, settle, preferred, tuned, bump) -> _Runs:
    """Simulate holds and turns (stacked in ``inputs``, holds first) with ``units`` silenced."""
    act = _simulate(system, inputs, silence=Silence(units, on, off) if units else None)
    dhat = unwrapped_heading(act)
    rates = act.rates[:n]
    keep = np.setdiff1d(tuned, np.asarray(units, dtype=np.int64))
    return _Runs(theta=dhat[:n], est=dhat[n:, off - 1] - dhat[n:, on + settle],
                 rel=_relative_amplitude(rates, preferred, keep, on),
                 bump=_relative_amplitude(rates, preferred, bump, on, locked=False),
                 norm=np.linalg.norm(act.outputs[:n], axis=-1))


def _recovery(r: _Runs, off: int, level: float, dt: float, silenced: bool) -> dict:
    """Compass bump over the last 50 steps, and the time after release until it is back to
    ``level`` for good."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        after = float(np.nanmean(r.bump[:, -50:]))
        mean = np.nanmean(r.bump[:, off:], axis=0)
    recovery = np.nan
    if silenced:
        ok = mean >= level
        stays = np.flip(np.logical_and.accumulate(np.flip(ok)))  # ok from here to the end
        recovery = float((np.argmax(stays) + 1) * dt) if stays.any() else np.nan
    return {"amplitude_after": after, "recovery": recovery}


def _per_trial(r: _Runs, on, off, settle, dt, min_output):
    """Per-trial drift (rad/s) and bump amplitude over the window, the output norm relative
    to before, and whether the read-out still carries a heading."""
    with np.errstate(invalid="ignore", divide="ignore"):  # an all-zero read-out: NaN
        norm = r.norm[:, on + settle:off].mean() / r.norm[:, on - 40:on].mean()
    drift = _fit_slopes(r.theta[:, on + settle:off]) / dt
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a vanished bump gives NaN means
        amp = np.nanmean(r.rel[:, on + settle:off], axis=1)
    return drift, amp, float(norm), bool(norm >= min_output)


def _estimates(drift, est, true, amp, readout: bool, w):
    """Drift, gain and amplitude for trial weights w [B, trials] (w = ones: the estimate)."""
    sw = w.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        d = (w @ drift) / sw if readout else np.full(w.shape[0], np.nan)
        g = weighted_slopes(true, est, w) if readout else np.zeros(w.shape[0])
        ok = np.isfinite(amp)
        a = (w[:, ok] @ amp[ok]) / w[:, ok].sum(1) if ok.any() else np.full(w.shape[0], np.nan)
    return {"drift": d, "gain": g, "abs_gain": np.abs(g), "amplitude": a}


def _outside(value: float, p05: float, p95: float) -> int:
    """+1 above the control range, −1 below, 0 within or undecidable."""
    if not (np.isfinite(value) and np.isfinite(p05) and np.isfinite(p95)):
        return 0
    return 1 if value > p95 else (-1 if value < p05 else 0)


def silencing_experiment(system, table: pd.DataFrame, spec="cueva-1x", *, n_trials: int = 32,
                         n_steps: int = 400, window: tuple[int, int] = (100, 250),
                         settle: int = 10, recovery_level: float = 0.9,
                         min_output: float = 0.05, n_draws: int = 20, extra_groups: bool = True,
                         n_boot: int = 1000, level: float = 0.9, seed: int = 0) -> pd.DataFrame:
    """Silence each cell group over a window, and as many random HD-tuned units, and measure
    what the bump does.

    Two sets of trials, both without forced-zero epochs: zero-AV holds (cue, then AV = 0) and
    AV trials of ``spec``. Each group (none, compass, shifter_cw, shifter_ccw, shifters, and
    with ``extra_groups`` the fifth of the HD-tuned units with the highest and the lowest |A|)
    has its rates forced to 0 on steps ``window[0] <= t < window[1]``. Each group of k units
    is matched by ``n_draws`` **controls**: k units drawn at random (without replacement) from
    all HD-tuned units, silenced over the same window on the same trials. An effect is specific
    only when the group's value lies outside the controls' 5–95 % range.

    Parameters
    ----------
    system : System
    table : DataFrame
        From :func:`~hdbench.analysis.classify_units` (``pd``, ``cell_type``, ``av_asymmetry``).
    spec : str or TaskSpec
        Task statistics of the AV trials and ``dt``.
    n_trials, n_steps : int
        Trials per set and their length.
    window : (int, int)
        Silenced steps. Measures start ``settle`` steps after onset.
    recovery_level : float
        Bump amplitude (relative to before silencing) that counts as recovered.
    min_output : float
        Below this output norm (relative to before silencing) the read-out carries no heading:
        the drift is NaN and the gain 0 (the estimate no longer follows the turns).
    n_draws : int
        Random control draws per group size (groups of the same size share them; 0: none).
    extra_groups : bool
        Add the high-|A| and low-|A| groups.
    n_boot, level : int, float
        Bootstrap resamples of trials and confidence level of the intervals.
    seed : int

    Returns
    -------
    DataFrame, one row per group, with

    - ``n_units``;
    - ``drift``: rad/s of the decoded heading at zero AV during silencing (> 0 is CCW);
      ``gain``: slope of the decoded against the true heading change over the window (AV
      trials); ``abs_gain``: its absolute value; ``amplitude``: bump amplitude of the HD-tuned
      units that are not silenced, during silencing, relative to theirs before (the
      heading-locked part of their population vector, see :func:`_relative_amplitude`); each
      with ``_lo`` / ``_hi``, its interval over trials;
    - ``amplitude_after``: population-vector amplitude of the compass units over the last 50
      steps, relative to before (wherever the bump re-formed); ``output_norm``: |outputs|
      during silencing, relative to before; ``recovery``: s after release until the compass
      amplitude is back to ``recovery_level`` for good (NaN if it never is or nothing was
      silenced);
    - for the controls, ``n_draws`` and per measure ``ctrl_<m>_median``, ``ctrl_<m>_p05``,
      ``ctrl_<m>_p95`` (over draws) and ``<m>_vs_control`` (+1 above the control range, −1
      below, 0 within).

    ``attrs["controls"]`` holds every draw (``n_units``, ``draw`` and the measures),
    ``attrs["level"]`` the confidence level.
    """
    from hdbench.analysis.stats import bootstrap_counts, percentile_interval

    spec = _spec(spec)
    on, off = (int(w) for w in window)
    if not (spec.cue_steps + 50 <= on < off - settle - 2 and off + 50 <= n_steps):
        raise HdbenchError(f"window {window} must leave >= 50 steps after the cue "
                           f"({spec.cue_steps}) and after release (n_steps={n_steps})")
    if isinstance(n_draws, bool) or not isinstance(n_draws, (int, np.integer)) or n_draws < 0:
        raise HdbenchError(f"n_draws must be an integer >= 0; got {n_draws!r}")
    base = spec.replace(n_steps=int(n_steps), zero_av_epochs=False)
    holds = make_trials(base.replace(sigma=0.0), n_trials, [7, seed, 0])
    turns = make_trials(base, n_trials, [7, seed, 1])
    inputs = np.concatenate([holds.inputs, turns.inputs])
    true = turns.av[:, on + settle + 1:off].sum(1)
    preferred = table["pd"].to_numpy()
    tuned = np.nonzero(table["cell_type"].isin(TUNED).to_numpy())[0]
    bump = _bump_units(table)
    w = bootstrap_counts(n_trials, int(n_boot), [7, seed, 2]) if n_boot else None
    ones = np.ones((1, n_trials))
    draws: dict[int, list[dict]] = {}

    def controls(k: int) -> list[dict]:
        if k not in draws:
            rng = np.random.default_rng([7, seed, 3, k])
            draws[k] = []
            short = inputs[:, :off]  # controls need no recovery: stop at release
            for d in range(n_draws if 0 < k <= tuned.size else 0):
                units = tuple(sorted(int(u) for u in rng.choice(tuned, k, replace=False)))
                r = _run(system, short, n_trials, units, on, off, settle, preferred, tuned,
                         bump)
                drift, amp, _, readout = _per_trial(r, on, off, settle, spec.dt, min_output)
                est = _estimates(drift, r.est, true, amp, readout, ones)
                draws[k].append({"n_units": k, "draw": d,
                                 **{m: float(v[0]) for m, v in est.items()}})
        return draws[k]

    rows = []
    for name, units in _silencing_groups(table, extra_groups).items():
        row = {"group": name, "n_units": len(units)}
        rows.append(row)
        if name != "none" and not units:
            continue
        r = _run(system, inputs, n_trials, units, on, off, settle, preferred, tuned, bump)
        drift, amp, row["output_norm"], readout = _per_trial(r, on, off, settle, spec.dt,
                                                             min_output)
        point = _estimates(drift, r.est, true, amp, readout, ones)
        boot = _estimates(drift, r.est, true, amp, readout, w) if w is not None else None
        for m in SILENCING_MEASURES:
            row[m] = float(point[m][0])
            row[f"{m}_lo"], row[f"{m}_hi"] = percentile_interval(boot[m], level) \
                if boot is not None else (np.nan, np.nan)
        row.update(_recovery(r, off, recovery_level, spec.dt, bool(units)))
        if not units:
            continue
        ctrl = controls(len(units))
        row["n_draws"] = len(ctrl)
        for m in SILENCING_MEASURES:
            vals = np.array([c[m] for c in ctrl], dtype=np.float64)
            vals = vals[np.isfinite(vals)]
            med, p05, p95 = (np.quantile(vals, [0.5, 0.05, 0.95]) if vals.size
                             else (np.nan, np.nan, np.nan))
            row[f"ctrl_{m}_median"], row[f"ctrl_{m}_p05"], row[f"ctrl_{m}_p95"] = \
                float(med), float(p05), float(p95)
            row[f"{m}_vs_control"] = _outside(row[m], p05, p95)
    columns = ["group", "n_units", *(f"{m}{s}" for m in SILENCING_MEASURES
                                     for s in ("", "_lo", "_hi")),
               "amplitude_after", "output_norm", "recovery", "n_draws",
               *(f"ctrl_{m}_{q}" for m in SILENCING_MEASURES for q in ("median", "p05", "p95")),
               *(f"{m}_vs_control" for m in SILENCING_MEASURES)]
    out = pd.DataFrame(rows).reindex(columns=columns)
    out.attrs["controls"] = pd.DataFrame([c for k in sorted(draws) for c in draws[k]],
                                         columns=["n_units", "draw", *SILENCING_MEASURES])
    out.attrs["level"] = level
    return out


#: The effects of the silencing signature: (key, group, measure, expected side of the control
#: range: +1 above, -1 below).
SIGNATURE = (("cw_off_drifts_ccw", "shifter_cw", "drift", 1),
             ("ccw_off_drifts_cw", "shifter_ccw", "drift", -1),
             ("both_off_stops_integration", "shifters", "abs_gain", -1),
             ("compass_off_loses_bump", "compass", "amplitude", -1))


def silencing_signature(result: pd.DataFrame, *, drift_tol: float = 0.02,
                        gain_tol: float = 0.25, amplitude_tol: float = 0.25,
                        controls: bool = True) -> dict:
    """Check the expected signature of papers.md §1.7 on a :func:`silencing_experiment` table.

    - ``cw_off_drifts_ccw``: silencing CW shifters gives drift > ``drift_tol`` rad/s at zero AV;
    - ``ccw_off_drifts_cw``: silencing CCW shifters gives drift < −``drift_tol``;
    - ``both_off_stops_integration``: silencing all shifters gives |gain| < ``gain_tol`` (or
      removes the bump altogether, as in circuits whose bump lives in the shifters);
    - ``compass_off_loses_bump``: the bump of the remaining HD-tuned units falls below
      ``amplitude_tol`` of its amplitude before;
    - ``bump_reforms``: the compass bump is back above 1 − ``amplitude_tol`` by the end (a
      recovery, not a perturbation effect: it has no control).

    With ``controls`` (default), each of the first four holds only when the effect is also
    **specific**: the group's value lies beyond the 5–95 % range of its matched random controls
    on the expected side: above it for the CW drift, below it for the CCW drift, the bump
    amplitude and |gain| (integration stops more than with random units). A table without
    controls (``n_draws`` = 0) fails every such check. Values are None where the group is empty
    or the measure undefined (e.g. no read-out left to drift).
    """
    by = result.set_index("group")

    def get(group, column):
        if group not in by.index or not by.loc[group, "n_units"] or column not in by:
            return None
        value = float(by.loc[group, column])
        return value if np.isfinite(value) else None

    shows = {
        "cw_off_drifts_ccw": lambda v: v > drift_tol,
        "ccw_off_drifts_cw": lambda v: v < -drift_tol,
        "both_off_stops_integration": lambda v: abs(v) < gain_tol,
        "compass_off_loses_bump": lambda v: v < amplitude_tol,
    }
    out = {}
    for key, group, measure, side in SIGNATURE:
        value = get(group, measure)
        if key == "both_off_stops_integration":
            amplitude = get(group, "amplitude")
            if value is None and amplitude is None:
                out[key] = None
                continue
            shown = (value is not None and shows[key](value)) or \
                (amplitude is not None and amplitude < amplitude_tol)  # no bump to integrate
        elif value is None:
            out[key] = None
            continue
        else:
            shown = bool(shows[key](value))
        if controls:
            outside = get(group, f"{measure}_vs_control")
            shown = shown and outside is not None and int(outside) == side
        out[key] = bool(shown)
    after = get("compass", "amplitude_after")
    out["bump_reforms"] = None if after is None else bool(after > 1 - amplitude_tol)
    return out


# --------------------------------------------------------------------------------------------
# Vector field and slow points


@dataclass
class VectorField:
    """A system's autonomous dynamics at zero input (see the module docstring).

    Attributes
    ----------
    field : callable
        ``a -> da`` per task step (torch tensors ``[..., n_state]``), differentiable.
    n_state : int
    states : callable
        ``trials -> [batch, time, n_state]`` NumPy states along noise-free trajectories.
    rates : callable, optional
        ``a -> rates [..., n_units]`` (torch).
    heading : callable, optional
        ``states [P, n_state] -> heading [P]`` (NumPy, rad): the system's own read-out.
    jacobian : callable, optional
        ``a [P, n] -> dF/da [P, n, n]`` (torch, float64) in closed form; autograd otherwise.
    """

    field: Callable
    n_state: int
    states: Callable
    rates: Callable | None = None
    heading: Callable | None = None
    jacobian: Callable | None = None

    def __call__(self, a):
        return self.field(a)


def vector_field(system, dt: float = 0.025) -> VectorField:
    """The vector field of ``system`` at zero input, per task step of ``dt`` seconds.

    Works for a CTRNN (from its parameters), for any system implementing the vector-field
    protocol of the module docstring, and, until they implement that protocol, for the
    reference circuits (through their integration parameters). Anything else raises
    :class:`HdbenchError` naming what is missing.
    """
    import torch

    from hdbench.core import activation_fn, integrate
    from hdbench.models import CTRNN

    if isinstance(system, CTRNN):
        with torch.no_grad():
            W = (system.W * system.W_mask).detach().clone()
            b = system.b.detach().clone()
            U = system.U.detach().clone()
            a0 = system.a0.detach().clone()
            V = system.V.detach().double().numpy()
        alpha = float(system.config["alpha"])
        name = system.config["activation"]
        f = activation_fn(name)

        def field(a):
            return alpha * (-a + f(a) @ W.to(a.dtype).T + b.to(a.dtype))

        def states(trials):
            x = torch.as_tensor(_inputs_of(trials), dtype=torch.float32)
            with torch.no_grad():
                drive = torch.nn.functional.linear(x, U, b)
                _, pre = integrate(drive, W, a0, alpha, activation=name,
                                   return_preactivations=True)
            return pre.numpy()

        def heading(points):
            with torch.no_grad():
                out = f(torch.as_tensor(points, dtype=torch.float64)).numpy() @ V.T
            return decode_heading(out)

        def jacobian(a):
            return alpha * (W.to(a.dtype)[None] * _derivative(f, a)[:, None, :]
                            - torch.eye(a.shape[-1], dtype=a.dtype))

        return VectorField(field=field, n_state=system.n_units, states=states, rates=f,
                           heading=heading if np.any(V) else None, jacobian=jacobian)
    if callable(getattr(system, "vector_field", None)):
        def states(trials):
            act = system.simulate(trials)
            if act.preactivations is None:
                raise HdbenchError(f"{type(system).__name__}.simulate does not fill "
                                   "Activity.preactivations, needed to start the slow-point "
                                   "search")
            return np.asarray(act.preactivations)

        rates = getattr(system, "state_rates", None)
        field = system.vector_field
        if "dt" in inspect.signature(field).parameters:
            field = functools.partial(field, dt=dt)
        return VectorField(field=field, n_state=int(system.n_units), states=states,
                           rates=rates if callable(rates) else None)
    if all(hasattr(system, k) for k in ("_parts", "_W", "_alpha", "_drive", "substeps",
                                        "initial_state", "decode")):
        return _reference_field(system, dt)
    raise HdbenchError(
        f"{type(system).__name__} provides no vector field: slow points need a CTRNN or a system "
        "with vector_field(a) (and Activity.preactivations); see hdbench.analysis.dynamics")


def _reference_field(system, dt: float) -> VectorField:
    """Stopgap for :class:`reference_circuits.base.ReferenceCircuit` until it implements the
    protocol: ``F(a) = α ⊙ (−a + W [a]₊ + bias)`` with its per-unit ``α = dt/τ`` (relays:
    the sub-step count), and states from its own integrator.
    """
    import torch

    k = system.substeps(dt)
    alpha = system._alpha(dt, k).double()
    W = system._W.double()
    bias = torch.as_tensor(system._parts.bias, dtype=torch.float64)

    def field(a):
        return (alpha.to(a.dtype) * (-a + torch.relu(a) @ W.to(a.dtype).T
                                     + bias.to(a.dtype)))

    def states(trials):
        from hdbench.core import integrate

        x = np.asarray(_inputs_of(trials), dtype=np.float32)
        with torch.no_grad():
            a0 = system.initial_state(x[:, 0, 1:3].astype(np.float64), dt)
            _, pre = integrate(system._drive(torch.as_tensor(x), dt), system._W, a0,
                               system._alpha(dt, k), activation="relu", substeps=k,
                               return_preactivations=True)
        return pre.numpy()

    def heading(points):
        return system.decode(np.maximum(points, 0.0))

    def jacobian(a):
        slope = (a > 0).to(a.dtype)
        return alpha.to(a.dtype)[None, :, None] * (
            W.to(a.dtype)[None] * slope[:, None, :] - torch.eye(a.shape[-1], dtype=a.dtype))

    return VectorField(field=field, n_state=int(system.n_units), states=states,
                       rates=torch.relu, heading=heading, jacobian=jacobian)


def _derivative(f, a):
    """f'(a) of an elementwise rate function, by autograd."""
    import torch

    with torch.enable_grad():
        x = a.detach().clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(f(x).sum(), x)
    return grad


def _inputs_of(trials):
    return trials.inputs if hasattr(trials, "inputs") else np.asarray(trials)


@dataclass
class SlowPoints:
    """Result of :func:`find_slow_points`.

    Attributes
    ----------
    points : [P, n_state] final states
    q : [P] ½‖F‖² at the final states (per task step squared)
    slow : [P] bool, q below the tolerance
    eigenvalues : [P, n_state] complex eigenvalues of the Jacobian of F (per task step)
    heading : [P] heading read out at each point (rad; NaN if unknown)
    initial : [P, n_state] starting states
    q_tol : the q tolerance used
    eig_tol : [P] the near-zero eigenvalue tolerance at each point
    """

    points: np.ndarray
    q: np.ndarray
    slow: np.ndarray
    eigenvalues: np.ndarray
    heading: np.ndarray
    initial: np.ndarray
    q_tol: float
    eig_tol: np.ndarray

    def near_zero(self) -> np.ndarray:
        """Number of eigenvalues with |λ| < eig_tol, per point."""
        return (np.abs(self.eigenvalues) < self.eig_tol[:, None]).sum(1)

    def unstable(self) -> np.ndarray:
        """Number of eigenvalues with Re λ > eig_tol, per point."""
        return (self.eigenvalues.real > self.eig_tol[:, None]).sum(1)


def find_slow_points(system_or_field, initial_states, *, n_iter: int = 0, lr: float = 0.01,
                     n_newton: int = 30, q_tol: float | None = None, q_rel: float = 1e-2,
                     eig_rel: float = 0.1,
                     table: pd.DataFrame | None = None,
                     reference: tuple[np.ndarray, np.ndarray] | None = None) -> SlowPoints:
    """Minimise q(a) = ½‖F(a)‖² from each initial state (Sussillo & Barak 2013).

    A short Adam descent on q is followed by per-point Levenberg–Marquardt steps
    ``δ = −(JᵀJ + λI)⁻¹ JᵀF`` (float64), which converge on ring attractors (singular J along
    the ring) and on threshold-linear circuits, where first-order methods stall at the kinks.

    Parameters
    ----------
    system_or_field : System or VectorField
    initial_states : [P, n_state]
        Starting states, e.g. states on task trajectories (as :func:`slow_point_analysis`
        picks them).
    n_iter, lr : int, float
        Optional Adam iterations before the Newton phase, and their learning rate (decayed to
        1 % along the run); rarely needed.
    n_newton : int
        Levenberg–Marquardt iterations.
    q_tol : float, optional
        Points with q below it are slow points (per task step squared). Default:
        ``q_rel`` × the median q of the initial states, i.e. with ``q_rel = 1e-2`` a slow point
        moves at most 10 % of the typical speed along the trajectories it was started from.
    eig_rel : float
        A Jacobian eigenvalue is near zero if |λ| < ``eig_rel`` × the median |λ| of the
        spectrum at that point (slower than a tenth of the system's typical relaxation rate).
    table : DataFrame, optional
        Tuning table: its compass and shifter PDs read the heading of points from their rates
        when the system has no read-out of its own.
    reference : (states [M, n], heading [M]), optional
        Fallback heading read-out: the heading of the nearest reference state.

    Returns
    -------
    SlowPoints
    """
    import torch

    vf = system_or_field if isinstance(system_or_field, VectorField) \
        else vector_field(system_or_field)
    a0 = np.asarray(initial_states, dtype=np.float64)
    if a0.ndim != 2 or a0.shape[1] != vf.n_state or a0.shape[0] < 1:
        raise HdbenchError(f"initial_states must be [points, {vf.n_state}]; got {a0.shape}")
    a = torch.tensor(a0, dtype=torch.float32, requires_grad=True)
    if n_iter > 0:
        opt = torch.optim.Adam([a], lr=lr)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 0.01 ** (i / max(n_iter, 1)))
        for _ in range(int(n_iter)):
            opt.zero_grad(set_to_none=True)
            (0.5 * vf(a).pow(2).sum()).backward()
            opt.step()
            sched.step()
    field64 = _float64(vf)
    jacobian = vf.jacobian or torch.func.vmap(torch.func.jacrev(field64))
    with torch.no_grad():
        q_start = 0.5 * field64(torch.as_tensor(a0)).pow(2).sum(-1)
    if q_tol is None:
        q_tol = float(q_rel * torch.median(q_start))
    points = a.detach().double()
    with torch.no_grad():
        F = field64(points)
    q = 0.5 * F.pow(2).sum(-1)
    lam = torch.full_like(q, 1e-3)
    eye = torch.eye(vf.n_state, dtype=torch.float64)
    for _ in range(int(n_newton)):
        active = (q > q_tol * 1e-6) & (lam < 1e6)  # converged, or stuck at a kink
        if not bool(active.any()):
            break
        J = jacobian(points[active])
        Jt = J.transpose(1, 2)
        rhs = -(Jt @ F[active].unsqueeze(-1))
        step = torch.linalg.solve(Jt @ J + lam[active, None, None] * eye, rhs).squeeze(-1)
        with torch.no_grad():
            trial = points[active] + step
            F_trial = field64(trial)
            q_trial = 0.5 * F_trial.pow(2).sum(-1)
        better = q_trial < q[active]
        idx = torch.nonzero(active).squeeze(-1)
        accept = idx[better]
        points[accept], F[accept], q[accept] = trial[better], F_trial[better], q_trial[better]
        lam[accept] = (lam[accept] / 3.0).clamp_min(1e-9)
        reject = idx[~better]
        lam[reject] = (lam[reject] * 4.0).clamp_max(1e6)
    jac = jacobian(points).numpy()
    eig = np.linalg.eigvals(jac)
    q = q.numpy()
    heading = _heading_of(vf, points.numpy(), table, reference)
    eig_tol = eig_rel * np.median(np.abs(eig), axis=1)
    return SlowPoints(points=points.numpy(), q=q, slow=q < q_tol, eigenvalues=eig,
                      heading=heading, initial=a0, q_tol=float(q_tol), eig_tol=eig_tol)


def _float64(vf: VectorField):
    """The field evaluated in float64 when it accepts it, else in float32 and cast."""
    import torch

    try:
        vf(torch.zeros(1, vf.n_state, dtype=torch.float64))
        double = True
    except (RuntimeError, TypeError):
        double = False

    def field(a):
        return (vf(a) if double else vf(a.float())).double()
    return field


def _heading_of(vf: VectorField, points: np.ndarray, table, reference) -> np.ndarray:
    """Heading of states: the system's read-out, else the population vector of the tuned
    units (table PDs), else the heading of the nearest reference state, else NaN."""
    import torch

    if vf.heading is not None:
        return np.asarray(vf.heading(points), dtype=np.float64)
    if vf.rates is not None and table is not None:
        tuned = np.nonzero(table["cell_type"].isin(TUNED).to_numpy())[0]
        if tuned.size:
            with torch.no_grad():
                rates = vf.rates(torch.as_tensor(points, dtype=torch.float64)).numpy()
            return population_vector(rates, table["pd"].to_numpy(), tuned)[0]
    if reference is not None:
        states, heading = (np.asarray(r) for r in reference)
        d = ((points[:, None, :] - states[None, :, :]) ** 2).sum(-1)
        return heading[np.argmin(d, axis=1)]
    return np.full(points.shape[0], np.nan)


def unique_points(points: np.ndarray, tol: float = 1e-3) -> np.ndarray:
    """Indices of representatives of ``points`` [P, n] that lie more than ``tol`` apart."""
    keep: list[int] = []
    for i, p in enumerate(np.asarray(points)):
        if all(np.linalg.norm(p - points[j]) > tol for j in keep):
            keep.append(i)
    return np.asarray(keep, dtype=np.int64)


def slow_point_summary(sp: SlowPoints, *, n_bins: int = 36) -> dict:
    """Ring coverage, q distribution and Jacobian spectrum of slow points.

    ``ring_coverage`` is the fraction of ``n_bins`` equal heading bins holding at least one
    slow point; ``near_zero_median`` the median count of near-zero eigenvalues at slow points
    (1 for a ring attractor); ``unstable_median`` the median count of eigenvalues with positive
    real part above ``eig_tol``.
    """
    slow = sp.slow & np.isfinite(sp.heading)
    idx = np.minimum((np.mod(sp.heading[slow], TWO_PI) * n_bins / TWO_PI).astype(int),
                     n_bins - 1)
    covered = np.unique(idx).size / n_bins if slow.any() else 0.0
    nz, un = sp.near_zero()[sp.slow], sp.unstable()[sp.slow]
    quant = np.quantile(sp.q, [0.1, 0.5, 0.9]) if sp.q.size else [np.nan] * 3
    return {
        "n_points": int(sp.q.size), "n_slow": int(sp.slow.sum()),
        "ring_coverage": float(covered),
        "q_p10": float(quant[0]), "q_median": float(quant[1]), "q_p90": float(quant[2]),
        "q_tol": sp.q_tol,
        "near_zero_median": float(np.median(nz)) if nz.size else float("nan"),
        "unstable_median": float(np.median(un)) if un.size else float("nan"),
        "heading_bins": n_bins,
    }


def slow_point_analysis(system, table: pd.DataFrame | None = None, spec="cueva-1x", *,
                        n_points: int = 180, n_trials: int = 128, n_bins: int = 36,
                        seed: int = 0, **options) -> tuple[SlowPoints, dict]:
    """Slow points started from states on noise-free trajectories of ``spec``.

    The ``n_points`` starting states are spread evenly over ``n_bins`` bins of true heading
    (so that the ring coverage measures the attractor, not the sampling). Other options go to
    :func:`find_slow_points`. Returns the :class:`SlowPoints` and its
    :func:`slow_point_summary`.
    """
    spec = _spec(spec)
    vf = vector_field(system, dt=spec.dt)
    trials = make_trials(spec.replace(zero_av_epochs=False), n_trials, [8, seed])
    skip = trials.spec.cue_steps
    states = vf.states(trials)[:, skip:].reshape(-1, vf.n_state)
    heading = trials.heading[:, skip:].reshape(-1)
    start = _stratified(states, heading, n_points, n_bins, seed)
    reference = None
    if vf.heading is None and (vf.rates is None or table is None):
        decoded = system.simulate(trials).decoded_heading()[:, skip:].reshape(-1)
        pick = _stratified(np.arange(states.shape[0])[:, None], heading, 4000, n_bins,
                           seed + 1)[:, 0].astype(np.int64)
        reference = (states[pick], decoded[pick])
    sp = find_slow_points(vf, start, table=table, reference=reference, **options)
    return sp, slow_point_summary(sp, n_bins=n_bins)


def _stratified(values: np.ndarray, heading: np.ndarray, n: int, n_bins: int, seed) -> np.ndarray:
    """About ``n`` rows of ``values`` spread evenly over ``n_bins`` heading bins."""
    rng = np.random.default_rng(seed)
    idx = np.minimum((np.mod(heading, TWO_PI) * n_bins / TWO_PI).astype(np.int64), n_bins - 1)
    per_bin = max(1, n // n_bins)
    picks = []
    for b in range(n_bins):
        rows = np.nonzero(idx == b)[0]
        if rows.size:
            picks.append(rng.choice(rows, size=min(per_bin, rows.size), replace=False))
    return values[np.concatenate(picks)] if picks else values[:0]


# --------------------------------------------------------------------------------------------
# Drift, diffusion, robustness, generalisation


def _noisy(trials, av_noise: float, cue_noise: float, seed) -> np.ndarray:
    """Inputs with Gaussian noise on the AV channel (every step) and on the cue channels."""
    x = trials.inputs.copy()
    rng = np.random.default_rng(seed)
    if av_noise > 0:
        x[:, :, 0] += (av_noise * rng.standard_normal(x.shape[:2])).astype(np.float32)
    if cue_noise > 0:
        c = trials.spec.cue_steps
        x[:, :c, 1:] += (cue_noise * rng.standard_normal((x.shape[0], c, 2))).astype(np.float32)
    return x


def _hold_errors(system, trials, inputs, *, noise_std=0.0, seed=None, settle=10):
    """Unwrapped decoded minus true heading after the cue [trials, time]."""
    act = _simulate(system, inputs, seed=seed, noise_std=noise_std)
    err = _wrap(act.decoded_heading() - trials.heading)
    start = trials.spec.cue_steps + settle
    return np.unwrap(err[:, start:], axis=1)


def _drift_stats(err: np.ndarray, dt: float) -> dict:
    slopes = _fit_slopes(err) / dt
    var = err.var(0)
    t = np.arange(err.shape[1]) * dt
    diffusion = float(np.polyfit(t, var, 1)[0] / 2) if err.shape[0] > 1 else float("nan")
    return {"drift": float(slopes.mean()), "abs_drift": float(np.abs(slopes).mean()),
            "diffusion": diffusion, "final_rms": float(np.sqrt((err[:, -1] ** 2).mean()))}


def drift_diffusion(system, spec="cueva-1x", *, n_trials: int = 64, n_steps: int = 1000,
                    noise_std: float = 0.1, av_noise: float = 0.0, seed: int = 0) -> dict:
    """Drift and diffusion of the decoded heading during zero-AV holds with noise.

    Parameters
    ----------
    noise_std : float
        Intrinsic training noise (for systems whose ``simulate`` takes ``noise_std``).
    av_noise : float
        SD (rad/step) of Gaussian noise on the AV input channel.

    Returns
    -------
    dict with ``drift`` (mean signed, rad/s; > 0 is CCW), ``abs_drift`` (mean |drift| per
    trial, rad/s), ``diffusion`` D (rad²/s, from var(error) = σ0² + 2Dt) and ``final_rms``
    (rad).
    """
    spec = _spec(spec)
    holds = make_trials(spec.replace(sigma=0.0, n_steps=int(n_steps), zero_av_epochs=False),
                        n_trials, [9, seed])
    err = _hold_errors(system, holds, _noisy(holds, av_noise, 0.0, [9, seed, 1]),
                       noise_std=noise_std, seed=seed)
    return {**_drift_stats(err, spec.dt), "noise_std": noise_std, "av_noise": av_noise}


def _ne(system, trials, inputs) -> float:
    from hdbench.training.losses import normalized_error

    act = system.simulate(inputs)
    return normalized_error(act.outputs, trials.targets, trials.mask)


def noise_robustness(system, spec="cueva-1x", *, av_noise=None, cue_noise=(0.0, 0.1, 0.3, 1.0),
                     n_trials: int = 200, hold_steps: int | None = None,
                     seed: int = 0) -> pd.DataFrame:
    """NE and zero-AV drift as functions of input noise on the AV channel and on the cue.

    Parameters
    ----------
    av_noise : sequence of float, optional
        SDs (rad/step) of noise on the AV channel (default 0, 0.1, 0.2, 0.5, 1 × the spec's
        stationary AV SD).
    cue_noise : sequence of float
        SDs of noise on the (sin, cos) cue channels during the cue.
    hold_steps : int, optional
        Length of the zero-AV holds (default: the spec's trial length).

    Returns
    -------
    DataFrame with ``channel`` (av / cue), ``noise_sd``, ``ne`` (on task trials), ``abs_drift``
    (rad/s) and ``diffusion`` (rad²/s) on zero-AV holds.
    """
    spec = _spec(spec)
    if av_noise is None:
        av_noise = tuple(f * spec.stationary_sd for f in (0.0, 0.1, 0.2, 0.5, 1.0))
    task = make_trials(spec, n_trials, [10, seed, 0])
    holds = make_trials(spec.replace(sigma=0.0, zero_av_epochs=False,
                                     n_steps=int(hold_steps or spec.n_steps)),
                        max(n_trials // 4, 2), [10, seed, 1])
    rows = []
    for channel, levels in (("av", av_noise), ("cue", cue_noise)):
        for k, sd in enumerate(levels):
            sd = float(sd)
            if sd < 0:
                raise HdbenchError(f"noise SDs must be >= 0; got {sd}")
            a, c = (sd, 0.0) if channel == "av" else (0.0, sd)
            ne = _ne(system, task, _noisy(task, a, c, [10, seed, 2, k]))
            err = _hold_errors(system, holds, _noisy(holds, a, c, [10, seed, 3, k]))
            stats = _drift_stats(err, spec.dt)
            rows.append({"channel": channel, "noise_sd": sd, "ne": ne,
                         "abs_drift": stats["abs_drift"], "diffusion": stats["diffusion"]})
    return pd.DataFrame(rows)


def generalization(system, spec="cueva-1x", *, n_trials: int = 200, speed_factor: float = 3.0,
                   length_factor: int = 2, hold_factor: int = 4, seed: int = 0) -> pd.DataFrame:
    """NE outside the training distribution.

    Conditions: ``trained`` (the spec), ``faster`` (AV innovation SD × ``speed_factor``),
    ``longer`` (trials × ``length_factor``), ``hold`` (zero AV for ``hold_factor`` × the trial
    length). Returns a DataFrame with ``condition``, ``n_steps``, ``sigma``, ``ne`` and
    ``rms_error`` (rad, circular, over post-cue steps).
    """
    from hdbench.training.losses import normalized_error

    spec = _spec(spec)
    conditions = {
        "trained": spec,
        "faster": spec.replace(sigma=spec.sigma * speed_factor),
        "longer": spec.replace(n_steps=spec.n_steps * int(length_factor)),
        "hold": spec.replace(sigma=0.0, zero_av_epochs=False,
                             n_steps=spec.n_steps * int(hold_factor)),
    }
    rows = []
    for k, (name, s) in enumerate(conditions.items()):
        trials = make_trials(s, n_trials if name != "hold" else max(n_trials // 4, 2),
                             [11, seed, k])
        act = system.simulate(trials)
        err = _wrap(act.decoded_heading() - trials.heading)[:, s.cue_steps:]
        rows.append({"condition": name, "n_steps": s.n_steps, "sigma": s.sigma,
                     "ne": normalized_error(act.outputs, trials.targets, trials.mask),
                     "rms_error": float(np.sqrt((err**2).mean()))})
    return pd.DataFrame(rows)


__all__ = ["SIGNATURE", "SILENCING_MEASURES", "SlowPoints", "VectorField", "drift_diffusion",
           "find_slow_points", "generalization", "noise_robustness", "silencing_experiment",
           "silencing_signature", "slow_point_analysis", "slow_point_summary", "unique_points",
           "unwrapped_heading", "vector_field"]
