"""The whole analysis of one system: tuning and cell types, connectivity, dynamics.

:func:`analyze` runs everything on a trained run directory, a reference-circuit name or a system
object and returns an :class:`Analysis`; :func:`format_summary` prints it (``hdbench analyze``).
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
from hdbench.analysis.dynamics import (
    drift_diffusion,
    generalization,
    noise_robustness,
    silencing_experiment,
    silencing_signature,
    slow_point_analysis,
)
from hdbench.analysis.tuning import (
    CLASSES,
    class_counts,
    classify_units,
    compare_cell_types,
    gmm_agreement,
    threshold_sensitivity,
)
from hdbench.errors import HdbenchError
from hdbench.task import PRESETS, TaskSpec, get_spec, make_trials

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
            "class_counts": class_counts(self.table),
            "gmm_counts": {c: int(v) for c, v in
                           self.table.get("cell_type_gmm", pd.Series(dtype=object))
                           .value_counts().items()},
            "gmm_agreement": _num(gmm_agreement(self.table)),
            "tuning_by_class": tuning_by_class(self.table),
            "connectivity": self.connectivity.to_dict(),
            "silencing": [_row_deg(r) for r in self.silencing.to_dict("records")],
            "silencing_signature": self.signature,
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


_DEG_PER_S = {"drift", "abs_drift"}


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
    """A trained run directory or a reference-circuit name -> (system, task spec, name).

    References are built noise-free (``noise_std=0``) for the analysis.
    """
    path = Path(target)
    if path.is_dir() or path.suffix == ".pt":
        from hdbench.training import load_model

        run_dir = path if path.is_dir() else path.parent
        config_file = run_dir / "config.json"
        task = "cueva-1x"
        if config_file.exists():
            task = json.loads(config_file.read_text())["config"].get("task", task)
        return load_model(path), get_spec(task), str(target)
    import reference_circuits

    if target in reference_circuits.available():
        system = reference_circuits.load(target, noise_std=0.0)
        return system, get_spec(target if target in PRESETS else "cueva-1x"), target
    raise HdbenchError(f"{target!r} is neither a run directory nor a reference circuit "
                       f"(known circuits: {', '.join(reference_circuits.available())})")


def _noisy_copy(name: str):
    """A reference circuit with its default intrinsic noise (None for anything else)."""
    import reference_circuits

    if name in reference_circuits.available():
        return reference_circuits.load(name)
    return None


def analyze(target, *, spec=None, n_trials: int = 1000, seed: int = 0, extras: bool = True,
            thresholds: dict | None = None, progress: bool = False) -> Analysis:
    """Run the whole analysis on one system.

    Parameters
    ----------
    target : str or System
        A run directory, a reference-circuit name, or a system object.
    spec : str or TaskSpec, optional
        Task statistics (default: the run's training task, the circuit's own preset, or
        ``cueva-1x`` for other systems).
    n_trials : int
        Noise-free trials for tuning and classification.
    seed : int
        Seed of every set of trials.
    extras : bool
        Also run drift/diffusion with noise, input-noise robustness and generalisation.
    thresholds : dict, optional
        Classification thresholds (``inactive_rate``, ``min_r``, ``kappa``).
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
        system, default_spec, name = target, get_spec("cueva-1x"), type(target).__name__
    spec = get_spec(spec) if spec is not None else default_spec
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
    del activity
    done("tuning")

    stage("connectivity")
    conn = connectivity_summary(system.recurrent_weights(), table)
    done("connectivity")

    stage("silencing")
    silencing = silencing_experiment(system, table, spec, seed=seed)
    signature = silencing_signature(silencing)
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
                      sensitivity=sensitivity, slow_points=sp, slow_summary=summary,
                      slow_points_skipped=skipped, truth=truth, timings=timings)
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


def format_summary(result: Analysis) -> str:
    """A short plain-text report of an :class:`Analysis` (degrees, °/s)."""
    th = result.table.attrs.get("thresholds", {})
    counts = class_counts(result.table)
    lines = [f"{result.name}: {result.n_units} units, task {result.spec.name}, "
             f"{result.n_trials} trials, {result.timings.get('total', float('nan')):.1f} s",
             "cell types (kappa {kappa:g}, min_r {min_r:g}, inactive < {inactive_rate:g}): "
             .format(**th) + ", ".join(f"{c} {counts[c]}" for c in CLASSES)]
    if "cell_type_gmm" in result.table:
        gmm = result.table["cell_type_gmm"].value_counts()
        agree = gmm_agreement(result.table)
        lines.append("  mixture check (no kappa): " + ", ".join(
            f"{c} {int(gmm.get(c, 0))}" for c in ("compass", "shifter_cw", "shifter_ccw"))
            + (f"; agrees on {100 * agree:.0f} % of HD-tuned units" if np.isfinite(agree)
               else ""))
    if result.truth is not None:
        lines.append(f"  vs ground truth: {100 * result.truth['accuracy']:.1f} % of "
                     f"{result.truth['n_compared']} units"
                     + (f" (excluded inhibitory: {result.truth['excluded']})"
                        if result.truth["excluded"] else ""))
    c = result.connectivity
    cc = c.pairs[(c.pairs.target == "compass") & (c.pairs.source == "compass")] \
        if not c.pairs.empty else c.pairs
    lines.append(f"connectivity: ring score {c.ring_score:.2f}" + (
        f"; compass<-compass exc lobe {cc.exc_lobe.iloc[0]:.3g} at {_deg(cc.offset.iloc[0])}, "
        f"inh lobe {cc.inh_lobe.iloc[0]:.3g}, symmetry {cc.symmetry.iloc[0]:.2f}"
        if len(cc) and np.isfinite(cc.offset.iloc[0]) else "; no compass<-compass weights"))
    lines.append(f"  shifter offsets onto {c.offset_target}: CW "
                 f"{_deg(c.shifter_offsets.get('shifter_cw'))}, CCW "
                 f"{_deg(c.shifter_offsets.get('shifter_ccw'))} (opposite signs: "
                 f"{'yes' if c.offsets_opposite else 'no'})")
    lines.append("silencing      units  drift°/s   gain  bump during/after  recovery s  "
                 "(n/a: no read-out left / no recovery)")
    for r in result.silencing.itertuples():
        if not r.n_units and r.group != "none":
            lines.append(f"  {r.group:<12} {0:>5}  (no units)")
            continue
        lines.append(f"  {r.group:<12} {r.n_units:>5} {_fmt(np.degrees(r.drift), '+9.1f')} "
                     f"{_fmt(r.gain, '6.2f')}  {_fmt(r.amplitude, '6.2f')} / "
                     f"{_fmt(r.amplitude_after, '<6.2f')}   {_fmt(r.recovery, '6.2f')}")
    sig = {k: v for k, v in result.signature.items() if v is not None}
    lines.append("  signature: " + (", ".join(f"{k} {'yes' if v else 'NO'}"
                                              for k, v in sig.items()) or "n/a"))
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
