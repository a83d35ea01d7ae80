"""The whole analysis of one system: tuning and cell types, connectivity, dynamics.

:func:`analyze` runs everything on a trained run directory, a reference-circuit name or a system
object and returns an :class:`Analysis`; :func:`format_summary` prints it (``hdbench analyze``)
and :func:`compare_cell_types_across` sets the cell-type fractions of several systems side by
side, refusing those that do not integrate.
"""

from __future__ import annotations

import inspect
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hdbench.analysis.connectivity import ConnectivitySummary, connectivity_summary
from hdbench.analysis.continuum import MEASURES, cell_type_continuum
from hdbench.analysis.dynamics import (
    drift_diffusion,
    generalization,
    noise_robustness,
    silencing_experiment,
    silencing_signature,
    slow_point_analysis,
)
from hdbench.analysis.integration import integration_gain, integration_refusal
from hdbench.analysis.tuning import (
    CLASSES,
    class_counts,
    classify_units,
    compare_cell_types,
    gmm_agreement,
    threshold_sensitivity,
)
from hdbench.errors import HdbenchError
from hdbench.task import TaskSpec, get_spec, make_trials

ANALYSIS_STREAM = 12  # first word of the seeds of the analysis trials
TRAINING_NOISE_STD = 0.1  # rate-noise SD of the drift test for trainable models (papers.md §1.1)


@dataclass
class Analysis:
    """Everything :func:`analyze` measured (angles in rad, drifts in rad/s).

    ``to_dict()`` gives the JSON summary (degrees, labelled); the DataFrames stay available
    for further work.
    """

    name: str
    n_units: int
    spec: TaskSpec
    n_trials: int
    table: pd.DataFrame
    connectivity: ConnectivitySummary
    silencing: pd.DataFrame
    signature: dict
    sensitivity: pd.DataFrame
    integration: dict = field(default_factory=dict)
    continuum: dict = field(default_factory=dict)
    signature_uncontrolled: dict = field(default_factory=dict)
    slow_points: object = None
    slow_summary: dict | None = None
    slow_points_skipped: str | None = None
    drift: dict | None = None
    robustness: pd.DataFrame | None = None
    generalization: pd.DataFrame | None = None
    truth: dict | None = None
    timings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-friendly summary; angles in degrees, drifts in °/s, diffusion in rad²/s."""
        out = {
            "name": self.name, "n_units": self.n_units, "task": self.spec.name,
            "n_trials": self.n_trials, "thresholds": self.table.attrs.get("thresholds", {}),
            "integration": self.integration,
            "class_counts": class_counts(self.table),
            "class_counts_note": "thresholded labels (see continuum and kappa_table)",
            "continuum": self.continuum,
            "gmm_counts": {c: int(v) for c, v in
                           self.table.get("cell_type_gmm", pd.Series(dtype=object))
                           .value_counts().items()},
            "gmm_agreement": _num(gmm_agreement(self.table)),
            "tuning_by_class": tuning_by_class(self.table),
            "connectivity": self.connectivity.to_dict(),
            "silencing": [_row_deg(r) for r in self.silencing.to_dict("records")],
            "silencing_level": self.silencing.attrs.get("level"),
            "silencing_signature": self.signature,
            "silencing_signature_uncontrolled": self.signature_uncontrolled,
            "slow_points": self.slow_summary,
            "slow_points_skipped": self.slow_points_skipped,
            "drift_diffusion": _drift_deg(self.drift) if self.drift else None,
            "robustness": None if self.robustness is None else [
                _row_deg(r) for r in self.robustness.to_dict("records")],
            "generalization": None if self.generalization is None else [
                _row_deg(r) for r in self.generalization.to_dict("records")],
            "sensitivity": self.sensitivity.to_dict("records"),
            "timings_s": self.timings,
        }
        if self.truth is not None:
            out["ground_truth"] = {
                "accuracy": _num(self.truth["accuracy"]),
                "n_compared": self.truth["n_compared"],
                "excluded": self.truth["excluded"],
                "confusion": {str(k): {str(c): int(v) for c, v in row.items()}
                              for k, row in self.truth["confusion"].to_dict("index").items()},
            }
        return json.loads(json.dumps(out, default=_num))


def tuning_by_class(table: pd.DataFrame) -> dict:
    """Medians of the tuning columns per cell type (FWHM in degrees, ATI in s; the ATI median
    is over units with an interior optimum, ``ati_defined`` their fraction)."""
    out = {}
    for cell_type, g in table.groupby("cell_type"):
        out[str(cell_type)] = {
            "n": int(len(g)), "r": _num(g["r"].median()),
            "fwhm_deg": _num(np.degrees(g["fwhm"].median())),
            "abs_av_asymmetry": _num(g["av_asymmetry"].abs().median()),
            "info_bits": _num(g["info"].median()), "peak_rate": _num(g["peak_rate"].median()),
            "ati_s": _num(g["ati"].median()) if g["ati"].notna().any() else None,
            "ati_defined": _num(g["ati"].notna().mean()),
        }
    return out


def _num(x):
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating, float)):
        return None if not np.isfinite(x) else float(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return str(x)


_DEG_PER_S = {"drift", "abs_drift", "drift_lo", "drift_hi", "ctrl_drift_median",
              "ctrl_drift_p05", "ctrl_drift_p95"}


def _row_deg(row: dict) -> dict:
    out = {}
    for k, v in row.items():
        if k in _DEG_PER_S:
            out[f"{k}_deg_s"] = _num(np.degrees(v))
        elif k == "rms_error":
            out["rms_error_deg"] = _num(np.degrees(v))
        else:
            out[k] = _num(v) if isinstance(v, (float, np.floating, np.integer)) else v
    return out


def _drift_deg(d: dict) -> dict:
    return {**_row_deg({k: v for k, v in d.items() if k != "final_rms"}),
            "final_rms_deg": _num(np.degrees(d["final_rms"]))}


def load_target(target: str):
    """A run directory, zoo run id, reference-circuit name or ``FILE.py:FACTORY`` -> (system,
    its own task preset or None, name) (:func:`hdbench.runs.load_system`; references are built
    noise-free for the analysis)."""
    from hdbench.runs import load_system

    loaded = load_system(target)
    return loaded.system, loaded.task, loaded.name


def _noisy_copy(name: str):
    """A reference circuit with its default intrinsic noise (None for anything else)."""
    import reference_circuits

    if name in reference_circuits.available():
        return reference_circuits.load(name)
    return None


def analyze(target, *, spec=None, n_trials: int = 1000, seed: int = 0, extras: bool = True,
            thresholds: dict | None = None, n_draws: int = 20, n_boot: int = 1000,
            progress: bool = False) -> Analysis:
    """Run the whole analysis on one system.

    Parameters
    ----------
    target : str or System
        A run directory, a reference-circuit name, or a system object.
    spec : str or TaskSpec, optional
        Task statistics (default: the run's training task or the circuit's own preset; a
        system without a task of its own, e.g. from ``FILE.py:FACTORY``, needs one).
    n_trials : int
        Noise-free trials for tuning and classification.
    seed : int
        Seed of every set of trials.
    extras : bool
        Also run drift/diffusion with noise, input-noise robustness and generalisation.
    thresholds : dict, optional
        Classification thresholds (``inactive_rate``, ``min_r``, ``kappa``).
    n_draws : int
        Random control draws per silenced group size.
    n_boot : int
        Bootstrap resamples of every interval (and ``n_boot − 1`` PD shuffles of the
        connectivity p-values); intervals are 90 %.
    progress : bool
        Print each stage as it starts (to stderr).
    """
    import sys

    t_all = time.perf_counter()
    timings = {}

    def stage(name):
        if progress:
            print(f"analyze: {name}", file=sys.stderr, flush=True)
        timings[name] = time.perf_counter()

    def done(name):
        timings[name] = round(time.perf_counter() - timings[name], 3)

    if isinstance(target, (str, Path)):
        system, default_spec, name = load_target(str(target))
    else:
        system, name = target, type(target).__name__
        default_spec = getattr(target, "task", None)
    if spec is None and default_spec is None:
        raise HdbenchError(f"{name} has no task of its own: give the task statistics to "
                           "analyse it on (--task PRESET)")
    spec = get_spec(spec if spec is not None else default_spec)
    if isinstance(n_trials, bool) or not isinstance(n_trials, (int, np.integer)) or n_trials < 4:
        raise HdbenchError(f"n_trials must be an integer >= 4; got {n_trials!r}")

    stage("tuning")
    trials = make_trials(spec, int(n_trials), [ANALYSIS_STREAM, seed])
    activity = system.simulate(trials)
    table = classify_units(activity, trials, seed=seed, **(thresholds or {}))
    truth = None
    if "true_type" in table:
        truth = compare_cell_types(table["cell_type"], table["true_type"])
    sensitivity = threshold_sensitivity(table)
    integration = integration_gain(activity, trials, n_boot=n_boot, seed=seed)
    integration["refusal"] = integration_refusal(integration["gain"], name)
    del activity
    continuum = cell_type_continuum(table, seed=seed)
    done("tuning")

    stage("connectivity")
    conn = connectivity_summary(system.recurrent_weights(), table, n_boot=n_boot,
                                n_perm=max(n_boot - 1, 0), seed=seed)
    done("connectivity")

    stage("silencing")
    silencing = silencing_experiment(system, table, spec, seed=seed, n_draws=n_draws,
                                     n_boot=n_boot)
    signature = silencing_signature(silencing)
    uncontrolled = silencing_signature(silencing, controls=False)
    done("silencing")

    stage("slow_points")
    sp = summary = skipped = None
    try:
        sp, summary = slow_point_analysis(system, table, spec, seed=seed)
    except HdbenchError as err:
        skipped = str(err)
    done("slow_points")

    result = Analysis(name=name, n_units=int(system.n_units), spec=spec, n_trials=int(n_trials),
                      table=table, connectivity=conn, silencing=silencing, signature=signature,
                      sensitivity=sensitivity, integration=integration, continuum=continuum,
                      signature_uncontrolled=uncontrolled, slow_points=sp,
                      slow_summary=summary, slow_points_skipped=skipped, truth=truth,
                      timings=timings)
    if extras:
        stage("drift")
        result.drift = _drift(system, name, spec, seed)
        done("drift")
        stage("robustness")
        result.robustness = noise_robustness(system, spec, n_trials=100, seed=seed)
        done("robustness")
        stage("generalization")
        result.generalization = generalization(system, spec, n_trials=100, seed=seed)
        done("generalization")
    timings["total"] = round(time.perf_counter() - t_all, 3)
    return result


def _drift(system, name: str, spec: TaskSpec, seed: int) -> dict:
    """Drift and diffusion with the system's own noise: the training noise of a trainable
    model, a reference's default drive noise, else noise on the AV input (0.1 × its SD)."""
    if "noise_std" in inspect.signature(system.simulate).parameters:
        return {**drift_diffusion(system, spec, noise_std=TRAINING_NOISE_STD, seed=seed),
                "noise": f"training-noise SD {TRAINING_NOISE_STD}"}
    noisy = _noisy_copy(name)
    if noisy is not None:
        return {**drift_diffusion(noisy, spec, noise_std=0.0, seed=seed),
                "noise": f"circuit drive noise SD {noisy.config.noise_std}"}
    av = 0.1 * spec.stationary_sd
    return {**drift_diffusion(system, spec, noise_std=0.0, av_noise=av, seed=seed),
            "noise": f"AV input noise SD {av:.3g} rad/step"}


def _fmt(x, spec: str) -> str:
    """``format(x, spec)``, or n/a (padded to the same width) for NaN."""
    width = int("".join(ch for ch in spec.split(".")[0] if ch.isdigit()) or 0)
    return format(x, spec) if np.isfinite(x) else format("n/a", f">{width}")


def _deg(x) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{np.degrees(x):+.1f}°"


def _ci(lo, hi, spec: str = "+.2f", scale: float = 1.0) -> str:
    if lo is None or hi is None or not (np.isfinite(lo) and np.isfinite(hi)):
        return "[n/a]"
    return f"[{format(lo * scale, spec)}, {format(hi * scale, spec)}]"


_SIDE = {1: "above", -1: "below", 0: "within"}
_EFFECTS = {"cw_off_drifts_ccw": "CW off drifts CCW",
            "ccw_off_drifts_cw": "CCW off drifts CW",
            "both_off_stops_integration": "both off stop integration",
            "compass_off_loses_bump": "compass off loses the bump",
            "bump_reforms": "bump re-forms"}


def _integration_lines(result: Analysis) -> list[str]:
    g = result.integration
    if not g:
        return []
    low, high = g["bounds"]
    verdict = "integrates" if g["integrates"] else "does NOT integrate"
    return [f"integration: decoded-vs-true heading gain {g['gain']:.3f} "
            f"{_ci(g['gain_lo'], g['gain_hi'], '.3f')} over {g['n_trials']} trials: {verdict} "
            f"(range {low:g}-{high:g})"]


def _continuum_lines(result: Analysis) -> list[str]:
    c = result.continuum
    if not c:
        return []
    n = next((c[m]["n"] for m in MEASURES if m in c), 0)
    lines = [f"  continuum of the {n} HD-tuned units (Silverman p < 0.05: several modes; "
             "BC > 0.56 suggests bimodality):",
             "    measure                    median  5-95 %            Silverman p   BC    "
             "GMM BIC 1/2/3 comp.     best"]
    for m, label in MEASURES.items():
        d = c.get(m)
        if d is None or d["gmm_best"] is None:
            continue
        if m == "av_slope_norm" and c.get("av_sd"):
            label = f"slope x AV SD ({c['av_sd']:.2f} rad/s)"
        bic = " / ".join(f"{b:.1f}" for b in d["bic"])
        verdict = "multimodal" if d["multimodal"] else "no evidence of modes"
        lines.append(f"    {label:<26} {d['median']:+.3f}  [{d['q05']:+.3f}, {d['q95']:+.3f}]"
                     f"  {d['silverman_p']:<12.3f} {d['bimodality']:.2f}  {bic:<22}  "
                     f"{d['gmm_best']}: {verdict}")
    rows = c.get("kappa_table") or []
    if rows:
        lines.append("    kappa          " + "".join(f"{r['kappa']:>6g}" for r in rows))
        for t, label in (("compass", "compass"), ("shifter_cw", "CW shifter"),
                         ("shifter_ccw", "CCW shifter")):
            lines.append(f"    {label:<15}" + "".join(f"{r[t]:>6d}" for r in rows))
    return lines


def _connectivity_lines(result: Analysis) -> list[str]:
    c = result.connectivity
    level = int(round(100 * c.level))
    lines = [f"connectivity: first-harmonic fits W ~ c + A cos(dPD - offset) per pathway "
             f"({level} % CI over source units; p: shuffled PDs; ring score "
             f"{c.ring_score:.2f})",
             "  target <- source            offset   CI                   A        R2     "
             "p       (argmax, secondary)"]
    for r in c.pairs.itertuples():
        if not np.isfinite(r.offset):
            continue
        lines.append(f"  {r.target:<11} <- {r.source:<11} {_deg(r.offset):>8} "
                     f"{_ci(r.offset_lo, r.offset_hi, '+.1f', 180 / np.pi):<20} "
                     f"{r.amplitude:<8.3g} {r.r2:<6.3f} {r.p_shuffle:<7.3f} "
                     f"({_deg(r.argmax_offset)})")
    so, si = c.shifter_offsets, c.shifter_intervals
    lines.append(f"  shifter offsets onto {c.offset_target}: CW {_deg(so.get('shifter_cw'))} "
                 f"{_ci(*si.get('shifter_cw', (np.nan, np.nan)), '+.1f', 180 / np.pi)}, CCW "
                 f"{_deg(so.get('shifter_ccw'))} "
                 f"{_ci(*si.get('shifter_ccw', (np.nan, np.nan)), '+.1f', 180 / np.pi)}: "
                 f"opposite signs {'yes' if c.offsets_opposite else 'no'}, CIs exclude 0 on "
                 f"those sides {'yes' if c.offsets_resolved else 'no'}")
    return lines


def _cell(value, lo, hi, spec: str, scale: float = 1.0, side: str = "") -> str:
    """``value [lo, hi] side`` (n/a for NaN)."""
    if value is None or not np.isfinite(value):
        return "n/a"
    return f"{format(value * scale, spec)} {_ci(lo, hi, spec, scale)}" + \
        (f" {side}" if side else "")


def _silencing_lines(result: Analysis) -> list[str]:
    sil = result.silencing
    level = int(round(100 * (sil.attrs.get("level") or 0.9)))
    deg = 180 / np.pi
    lines = [f"silencing ({level} % CI over trials; 'random k': k random HD-tuned units "
             "silenced instead, median [5-95 %] over draws, and where the group lies: above, "
             "below or within)",
             f"  {'group':<17}{'drift (deg/s)':<32}{'gain':<29}{'bump during':<29}"
             "after  recovery s"]
    for r in sil.itertuples():
        if not r.n_units and r.group != "none":
            lines.append(f"  {r.group:<17}(no units)")
            continue
        label = f"{r.group} ({r.n_units})" if r.n_units else r.group
        lines.append(f"  {label:<17}{_cell(r.drift, r.drift_lo, r.drift_hi, '+.1f', deg):<32}"
                     f"{_cell(r.gain, r.gain_lo, r.gain_hi, '+.2f'):<29}"
                     f"{_cell(r.amplitude, r.amplitude_lo, r.amplitude_hi, '.2f'):<29}"
                     f"{_fmt(r.amplitude_after, '5.2f')}  {_fmt(r.recovery, '6.2f')}")
        if r.n_units and np.isfinite(r.n_draws) and r.n_draws > 0:
            cells = []
            for m, spec, scale, width in (("drift", "+.1f", deg, 32), ("gain", "+.2f", 1.0, 29),
                                          ("amplitude", ".2f", 1.0, 1)):
                q = [getattr(r, f"ctrl_{m}_{k}") for k in ("median", "p05", "p95")]
                side = _SIDE.get(int(getattr(r, f"{m}_vs_control")), "?")
                cells.append(f"{_cell(*q, spec, scale, side):<{width - 1}} ")
            lines.append(f"    {f'random {r.n_units}':<15}" + "".join(cells).rstrip())
    n_draws = sil["n_draws"].dropna()
    parts = []
    for key, label in _EFFECTS.items():
        raw, specific = result.signature_uncontrolled.get(key), result.signature.get(key)
        if raw is None:
            parts.append(f"{label}: n/a")
        elif key == "bump_reforms":
            parts.append(f"{label}: {'yes' if raw else 'no'}")
        else:
            parts.append(f"{label}: " + ("no" if not raw else
                                         "yes, specific" if specific else "yes, NOT specific"))
    lines.append(f"  signature ({int(n_draws.max()) if len(n_draws) else 0} draws per size; "
                 "specific = beyond the controls' 5-95 % on the expected side):")
    lines.append("    " + "; ".join(parts))
    return lines


def format_summary(result: Analysis) -> str:
    """A plain-text report of an :class:`Analysis` (degrees, °/s)."""
    th = result.table.attrs.get("thresholds", {})
    counts = class_counts(result.table)
    lines = [f"{result.name}: {result.n_units} units, task {result.spec.name}, "
             f"{result.n_trials} trials, {result.timings.get('total', float('nan')):.1f} s",
             *_integration_lines(result),
             "cell types, thresholded (kappa {kappa:g}, min_r {min_r:g}, inactive < "
             "{inactive_rate:g}): ".format(**th) + ", ".join(f"{c} {counts[c]}"
                                                            for c in CLASSES)]
    if "cell_type_gmm" in result.table:
        gmm = result.table["cell_type_gmm"].value_counts()
        agree = gmm_agreement(result.table)
        lines.append("  3-component mixture on (r, A), no kappa: " + ", ".join(
            f"{c} {int(gmm.get(c, 0))}" for c in ("compass", "shifter_cw", "shifter_ccw"))
            + (f"; agrees on {100 * agree:.0f} % of HD-tuned units" if np.isfinite(agree)
               else ""))
    if result.truth is not None:
        lines.append(f"  vs ground truth: {100 * result.truth['accuracy']:.1f} % of "
                     f"{result.truth['n_compared']} units"
                     + (f" (excluded inhibitory: {result.truth['excluded']})"
                        if result.truth["excluded"] else ""))
    lines += _continuum_lines(result)
    lines += _connectivity_lines(result)
    lines += _silencing_lines(result)
    if result.slow_summary is not None:
        s = result.slow_summary
        lines.append(f"slow points: {s['n_slow']}/{s['n_points']} slow (q < {s['q_tol']:.2g}), "
                     f"ring coverage {100 * s['ring_coverage']:.0f} % of {s['heading_bins']} "
                     f"heading bins, median q {s['q_median']:.2g}, near-zero eigenvalues "
                     f"{s['near_zero_median']:g}, unstable {s['unstable_median']:g}")
    elif result.slow_points_skipped:
        lines.append(f"slow points: skipped ({result.slow_points_skipped})")
    if result.drift is not None:
        d = result.drift
        lines.append(f"zero-AV holds with {d['noise']}: drift {np.degrees(d['drift']):+.2f} °/s,"
                     f" |drift| {np.degrees(d['abs_drift']):.2f} °/s, "
                     f"D {d['diffusion']:.2g} rad²/s")
    if result.generalization is not None:
        lines.append("NE: " + ", ".join(f"{r.condition} {100 * r.ne:.2f} %"
                                         for r in result.generalization.itertuples()))
    if result.robustness is not None:
        rb = result.robustness
        lines.append("NE vs input noise: " + "; ".join(
            f"{ch} " + ", ".join(f"{g.noise_sd:.3g}: {100 * g.ne:.1f} %"
                                 for g in rb[rb.channel == ch].itertuples())
            for ch in ("av", "cue")))
    return "\n".join(lines)


def compare_cell_types_across(results) -> pd.DataFrame:
    """Cell-type fractions of several analysed systems side by side.

    One row per system: its integration gain, the fraction of units per class, and
    ``compared`` (False, with the one-line ``reason``, for a system that does not integrate:
    its fractions are not compared with the others' and are left NaN).
    """
    rows = []
    for r in results:
        counts = class_counts(r.table)
        total = max(sum(counts.values()), 1)
        reason = r.integration.get("refusal") if r.integration else None
        rows.append({"system": r.name, "gain": r.integration.get("gain", np.nan),
                     "compared": reason is None, "reason": reason or "",
                     **{c: (counts[c] / total if reason is None else np.nan)
                        for c in CLASSES}})
    return pd.DataFrame(rows)


def format_comparison(table: pd.DataFrame) -> str:
    """Plain text of :func:`compare_cell_types_across`."""
    lines = ["cell-type fractions (%, thresholded) of the systems that integrate:",
             f"  {'system':<36} {'gain':>6}  " + " ".join(f"{c:>11}" for c in CLASSES)]
    for r in table.itertuples():
        if r.compared:
            lines.append(f"  {r.system:<36} {r.gain:6.3f}  " + " ".join(
                f"{100 * getattr(r, c):11.1f}" for c in CLASSES))
        else:
            lines.append(f"  {r.system:<36} {r.gain:6.3f}  refused: {r.reason}")
    return "\n".join(lines)
