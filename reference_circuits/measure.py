"""Measurements that check a reference circuit against its spec (circuits.md §6).

Each function simulates a small batch through the circuit's own ``simulate`` and returns plain
numbers; ``python -m reference_circuits.measure rodent`` prints the whole report: the spec
measurements of instance 0 (bump width, drift, AV gain curve, decode error on the task preset,
sub-step accuracy, speed) and, per instance (``--instances 0-4``), decode error, gain, drift and
the distributions of the cells' tuning widths, peak rates and AV slopes.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import numpy as np

from hdbench.errors import HdbenchError

SETTLE_STEPS = 40  # 1 s at 25 ms before AV is switched on


def wrap(angle: np.ndarray) -> np.ndarray:
    """Angles wrapped to (−π, π]."""
    return np.angle(np.exp(1j * np.asarray(angle)))


def decode_metrics(decoded: np.ndarray, heading: np.ndarray, mask: np.ndarray | None = None
                   ) -> dict:
    """Circular RMS error (degrees) and gain of a decoded heading against the true one.

    ``gain`` is the least-squares slope through the origin of the unwrapped decoded heading
    against the unwrapped true heading, both taken relative to the first masked step of each
    trial (1 = the estimate turns exactly as much as the animal).
    """
    decoded, heading = np.asarray(decoded, float), np.asarray(heading, float)
    if decoded.shape != heading.shape or decoded.ndim != 2:
        raise HdbenchError(f"need decoded and true heading of equal shape [batch, time]; got "
                           f"{decoded.shape} and {heading.shape}")
    mask = np.ones_like(decoded, dtype=bool) if mask is None else np.asarray(mask, bool)
    err = wrap(decoded - heading)[mask]
    first = np.argmax(mask, axis=1)
    rows = np.arange(decoded.shape[0])
    x = np.unwrap(heading, axis=1)
    y = np.unwrap(decoded, axis=1)
    x = (x - x[rows, first][:, None])[mask]
    y = (y - y[rows, first][:, None])[mask]
    gain = float(np.sum(x * y) / np.sum(x * x)) if np.any(x) else float("nan")
    return {"rms_error_deg": float(np.degrees(np.sqrt(np.mean(err ** 2)))), "gain": gain}


def task_error(circuit, preset: str, n_trials: int = 100, seed=(3, 0), sim_seed: int = 0
               ) -> dict:
    """Decode error of a circuit on ``n_trials`` trials of a task preset (after the cue)."""
    from hdbench.task import make_trials

    trials = make_trials(preset, n_trials, seed=list(seed))
    activity = circuit.simulate(trials, seed=sim_seed)
    return decode_metrics(activity.decoded_heading(), trials.heading, trials.mask)


def constant_av_inputs(av_deg_s, n_steps: int, dt: float = 0.025, theta0: float = 0.0,
                       settle_steps: int = SETTLE_STEPS) -> np.ndarray:
    """Inputs [len(av), n_steps, 3]: cue at θ0 for 10 steps, AV on from ``settle_steps``."""
    av = np.radians(np.atleast_1d(np.asarray(av_deg_s, float)))
    x = np.zeros((av.size, n_steps, 3), np.float32)
    x[:, :10, 1], x[:, :10, 2] = math.sin(theta0), math.cos(theta0)
    x[:, settle_steps:, 0] = (av * dt)[:, None]
    return x


def bump_velocity(circuit, av_deg_s, duration_s: float = 4.0, dt: float = 0.025,
                  seed: int = 0, n_starts: int = 4) -> np.ndarray:
    """Bump speed (°/s) under constant AV.

    Each AV is driven for ``duration_s`` after 1 s of settling, from ``n_starts`` evenly spaced
    headings; the speed is the slope of the unwrapped decoded heading over all but the first
    0.5 s of the drive, averaged over the starts (which averages out the decoder's small
    position-dependent bias).
    """
    av = np.atleast_1d(np.asarray(av_deg_s, float))
    n_drive = round(duration_s / dt)
    starts = 2.0 * np.pi * np.arange(n_starts) / n_starts
    x = np.concatenate([constant_av_inputs(av, SETTLE_STEPS + n_drive, dt, theta0=t0)
                        for t0 in starts])
    heading = np.unwrap(circuit.simulate(x, seed=seed, dt=dt).decoded_heading(), axis=1)
    t = np.arange(x.shape[1]) * dt
    window = slice(SETTLE_STEPS + round(0.5 / dt), None)
    slopes = np.polyfit(t[window], heading[:, window].T, 1)[0]
    return np.degrees(slopes.reshape(n_starts, av.size).mean(axis=0))


def calibrate_av_gain(circuit, av_deg_s) -> float:
    """Factor by which to multiply the circuit's AV gain constant (k_ω or k_v, which divide the
    AV drive) so that bump speed / AV is closest to 1 over ``av_deg_s`` (least squares in
    relative error, noise-free bump speeds expected)."""
    av = np.asarray(av_deg_s, float)
    ratio = bump_velocity(circuit, av) / av
    return float(np.sum(ratio ** 2) / np.sum(ratio))


def fwhm_deg(rates: np.ndarray, preferred: np.ndarray) -> float:
    """Full width at half maximum (degrees) of one bump of rates over preferred directions.

    Units are sorted by PD relative to the bump's PVA centre; half-maximum crossings on each
    side of the peak are found by linear interpolation.
    """
    rates, preferred = np.asarray(rates, float), np.asarray(preferred, float)
    centre = np.angle(np.sum(rates * np.exp(1j * preferred)))
    rel = wrap(preferred - centre)
    order = np.argsort(rel)
    rel, r = rel[order], rates[order]
    half = 0.5 * r.max()
    peak = int(np.argmax(r))
    rel = np.r_[rel - 2 * np.pi, rel, rel + 2 * np.pi]
    r = np.r_[r, r, r]
    peak += len(order)
    right = peak
    while r[right] >= half:
        right += 1
    left = peak
    while r[left] >= half:
        left -= 1
    x_right = np.interp(half, [r[right], r[right - 1]], [rel[right], rel[right - 1]])
    x_left = np.interp(half, [r[left], r[left + 1]], [rel[left], rel[left + 1]])
    return float(np.degrees(x_right - x_left))


def count_bumps(rates: np.ndarray, preferred: np.ndarray, level: float = 0.5) -> int:
    """Number of separate runs of units above ``level``·max around the ring (sorted by PD)."""
    above = np.asarray(rates)[np.argsort(preferred)] >= level * np.max(rates)
    if above.all():
        return 1
    return int(np.sum(above & ~np.roll(above, 1)))


def steady_state(circuit, n_steps: int = 120, theta0: float = 1.0, seed: int = 0) -> np.ndarray:
    """Rates after ``n_steps`` at zero AV, starting from the cue at θ0 (one trial)."""
    x = constant_av_inputs([0.0], n_steps, theta0=theta0)
    return circuit.simulate(x, seed=seed).rates[0, -1]


def drift_deg_per_s(circuit, duration_s: float = 20.0, n_starts: int = 16,
                    dt: float = 0.025) -> dict:
    """Mean and max |bump drift| (°/s) at zero AV from ``n_starts`` headings, after 1 s."""
    n = round(duration_s / dt) + SETTLE_STEPS
    theta0 = np.linspace(0, 2 * np.pi, n_starts, endpoint=False)
    x = np.zeros((n_starts, n, 3), np.float32)
    x[:, :10, 1], x[:, :10, 2] = np.sin(theta0)[:, None], np.cos(theta0)[:, None]
    h = np.unwrap(circuit.simulate(x, dt=dt).decoded_heading(), axis=1)
    rate = np.abs(np.degrees(h[:, -1] - h[:, SETTLE_STEPS])) / duration_s
    return {"mean": float(rate.mean()), "max": float(rate.max())}


def substep_agreement(name: str, preset: str, n_trials: int = 20, factor: int = 10,
                      seed=(3, 0), **options) -> np.ndarray:
    """|final decoded heading difference| (degrees) per trial between the default sub-step and
    one ``factor`` times finer, same instance and noise."""
    import reference_circuits
    from hdbench.task import make_trials

    trials = make_trials(preset, n_trials, seed=list(seed))
    coarse = reference_circuits.load(name, **options)
    fine = reference_circuits.load(name, **{**options,
                                            "max_step_s": coarse.config.max_step_s / factor})
    a = coarse.simulate(trials).decoded_heading()[:, -1]
    b = fine.simulate(trials).decoded_heading()[:, -1]
    return np.abs(np.degrees(wrap(a - b)))


def simulate_seconds(circuit, n_trials: int = 100, n_steps: int = 500, repeats: int = 3,
                     preset: str | None = None) -> float:
    """Best wall time (s) of simulating ``n_trials`` × ``n_steps`` task steps."""
    from hdbench.task import make_trials

    trials = make_trials(preset or circuit.name, n_trials, seed=[3, 0])
    if n_steps != trials.n_steps:
        raise HdbenchError("simulate_seconds uses the preset's trial length")
    circuit.simulate(trials.inputs[:2, :20])  # template and warm-up
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        circuit.simulate(trials)
        best = min(best, time.perf_counter() - start)
    return best


def _quantiles(values: np.ndarray, digits: int = 4) -> dict:
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return {"n": 0}
    q = np.percentile(values, [5, 25, 50, 75, 95])
    mean, sd = float(values.mean()), float(values.std())
    out = {"n": int(values.size), "mean": round(mean, digits), "sd": round(sd, digits)}
    if np.all(values > 0):
        out["cv"] = round(sd / mean, 4)
    return {**out, "q05_q25_q50_q75_q95": np.round(q, digits).tolist()}


TUNED = ("compass", "shifter_cw", "shifter_ccw")


def cell_statistics(circuit, preset: str, n_trials: int = 64, seed=(7, 0)) -> dict:
    """Distributions over the HD-tuned cells of a noise-free circuit on task trials, measured as
    the benchmarks measure any system (:func:`hdbench.analysis.classify_units`, default
    thresholds, ground truth unused): tuning width (FWHM, degrees), peak rate, and signed AV
    slope (mean of the CCW slope and minus the CW slope, per rad/s, divided by the peak rate);
    plus the classified cell-type counts."""
    from hdbench.analysis import classify_units
    from hdbench.task import make_trials

    trials = make_trials(preset, n_trials, seed=list(seed))
    table = classify_units(circuit.simulate(trials), trials, gmm=False, max_shift_s=0.0)
    tuned = table[table["cell_type"].isin(TUNED)]
    peak = tuned["peak_rate"].to_numpy(float)
    slope = 0.5 * (tuned["av_slope_ccw"].to_numpy(float) - tuned["av_slope_cw"].to_numpy(float))
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = np.where(peak > 0, slope / peak, np.nan)
    return {"cell_types": table["cell_type"].value_counts().sort_index().to_dict(),
            "fwhm_deg": _quantiles(np.degrees(tuned["fwhm"].to_numpy(float)), 2),
            "peak_rate": _quantiles(peak),
            "av_slope_per_peak": _quantiles(slope)}


def instance_report(name: str, instance_seed: int, n_trials: int = 100, **options) -> dict:
    """Decode error and gain on the task preset (with the circuit's noise), noise-free drift, and
    :func:`cell_statistics` of one instance."""
    import reference_circuits

    circuit = reference_circuits.load(name, instance_seed=instance_seed, **options)
    quiet = reference_circuits.load(name, instance_seed=instance_seed,
                                    **{**options, "noise_std": 0.0})
    return {"instance_seed": int(instance_seed), "task": task_error(circuit, name, n_trials),
            "drift_deg_per_s_noise_free": drift_deg_per_s(quiet, duration_s=10.0),
            **cell_statistics(quiet, name)}


SPEC = {
    "rodent": {"velocity_av": [50, 100, 200, 300, 400, 500, 600, 700], "population": "ADN"},
    "fly": {"velocity_av": [55, 80, 110, 140, 170], "saturation_av": [230, 300, 400, 600],
            "population": "EPG"},
}


def report(name: str, n_trials: int = 100, instances=()) -> dict:
    """All spec measurements of a circuit (instance 0, default options), and
    :func:`instance_report` of each of ``instances``."""
    import reference_circuits

    circuit = reference_circuits.load(name)
    quiet = reference_circuits.load(name, noise_std=0.0)
    spec = SPEC[name]
    out: dict = {"circuit": name, "config": circuit.config.to_dict()}
    rates = steady_state(quiet) / quiet.gains  # the bump without the cells' gain differences
    uniform = ~quiet._from_inputs()  # cells of differing widths make no single bump profile
    for pop_name, pop in circuit.populations.items():
        pd = circuit.preferred_directions[pop.units]
        if np.all(np.isfinite(pd)) and np.all(uniform[pop.units]):
            out[f"fwhm_deg_{pop_name}"] = fwhm_deg(rates[pop.units], pd)
            out[f"bumps_{pop_name}"] = count_bumps(rates[pop.units], pd)
    out["drift_deg_per_s_noise_free"] = drift_deg_per_s(quiet)
    av = np.asarray(spec["velocity_av"], float)
    ratio = bump_velocity(quiet, av) / av
    out["velocity_ratio"] = dict(zip(map(str, av.astype(int)), np.round(ratio, 4).tolist(),
                                     strict=True))
    out["velocity_max_dev_from_mean"] = float(np.max(np.abs(ratio / ratio.mean() - 1)))
    out["velocity_max_dev_from_1"] = float(np.max(np.abs(ratio - 1)))
    if "saturation_av" in spec:
        sat = np.asarray(spec["saturation_av"], float)
        out["saturation_speed_deg_s"] = dict(zip(map(str, sat.astype(int)),
                                                 np.round(bump_velocity(quiet, sat), 1).tolist(),
                                                 strict=True))
    out["task"] = task_error(circuit, name, n_trials)
    out["task_noise_free"] = task_error(quiet, name, n_trials)
    agree = substep_agreement(name, name, n_trials=20)
    out["substep_final_diff_deg"] = {"max": float(agree.max()),
                                     "median": float(np.median(agree)),
                                     "rms": float(np.sqrt(np.mean(agree ** 2)))}
    out["simulate_100x500_s"] = simulate_seconds(circuit)
    out["instances"] = [instance_report(name, k, n_trials) for k in instances]
    return out


def _instances(text: str) -> list[int]:
    """``"0-4"`` or ``"0,2,5"`` → instance seeds."""
    try:
        if "-" in text:
            first, last = (int(x) for x in text.split("-"))
            seeds = list(range(first, last + 1))
        else:
            seeds = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"instances look like 0-4 or 0,2,5; got {text!r}") from None
    if any(k < 0 for k in seeds):
        raise argparse.ArgumentTypeError(f"instance seeds must be >= 0; got {text!r}")
    return seeds


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(prog="python -m reference_circuits.measure",
                                     description="measure a reference circuit against its spec")
    parser.add_argument("circuit", choices=sorted(SPEC))
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--instances", type=_instances, default=[0, 1, 2, 3, 4],
                        help="instances to report one by one, e.g. 0-4 (default) or 0,3")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(json.dumps(report(args.circuit, args.trials, args.instances), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
