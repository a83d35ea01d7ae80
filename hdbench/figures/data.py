"""The loader layer: what the figures need, read from a results folder or computed from it.

Everything here returns plain data (DataFrames, :class:`~hdbench.system.Activity`, tuning tables)
for the figure functions. Nothing is trained: trained models come from ``<results>/zoo``, scores
from the leaderboard CSV, experiments from ``<results>/experiments``; the reference circuits are
code. When something is missing a :class:`MissingData` names the command that produces it.
Simulations use noise-free systems on the analysis trial stream (as ``hdbench analyze`` does),
with fewer trials, so that the whole figure set renders in a few minutes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hdbench.errors import HdbenchError

#: Trials per system for the tuning-based figures (``hdbench analyze`` uses 1000).
N_TRIALS = 200
REFERENCES = ("rodent", "fly")
SPARSE_COLUMNS = ("teacher", "record_fraction", "seed", "measure", "value")
SILENCED_GROUPS = ("none", "compass", "shifter_cw", "shifter_ccw", "shifters")
_RUN_DIR = re.compile(r"^(?P<model>.+)-seed(?P<seed>\d+)$")
_ANALYSIS_STREAM = 12  # hdbench.analysis.summary.ANALYSIS_STREAM, the analysis trials
_SILENCING_STREAM = 7  # hdbench.analysis.dynamics.silencing_experiment's holds


class MissingData(HdbenchError):
    """A figure's data is not in the results folder; ``command`` produces it."""

    def __init__(self, what: str, command: str):
        super().__init__(f"{what} (produce it with: {command})")
        self.what, self.command = what, command


# -- simulated systems -----------------------------------------------------------------------


@dataclass
class SystemData:
    """One system simulated on test trials and classified like ``hdbench analyze`` does.

    Attributes
    ----------
    name : display label, e.g. ``"ctrnn seed 0"`` or ``"rodent reference"``
    key : colour key (model id or reference name), see :func:`~hdbench.figures.style.system_color`
    kind : ``"model"`` or ``"reference"``
    trials, activity : the noise-free test trials and what the system did on them
    table : :func:`hdbench.analysis.classify_units` table (``pd``, ``r``, ``cell_type``, ...)
    weights : ``W[target, source]``
    system : the system object itself (silencing and slow points simulate it again)
    """

    name: str
    key: str
    kind: str
    trials: object
    activity: object
    table: pd.DataFrame
    weights: np.ndarray
    system: object = None

    @property
    def spec(self):
        return self.trials.spec


def system_data(system, *, name: str, key: str, spec, kind: str = "model",
                n_trials: int = N_TRIALS, seed: int = 0) -> SystemData:
    """Simulate ``system`` on ``n_trials`` noise-free trials of ``spec`` and classify its units."""
    from hdbench.analysis import classify_units
    from hdbench.task import make_trials

    trials = make_trials(spec, int(n_trials), [_ANALYSIS_STREAM, seed])
    activity = system.simulate(trials)
    table = classify_units(activity, trials, gmm=False, seed=seed)
    return SystemData(name=name, key=key, kind=kind, trials=trials, activity=activity,
                      table=table, weights=np.asarray(system.recurrent_weights()), system=system)


def reference_data(name: str, *, instance_seed: int = 0, n_trials: int = N_TRIALS,
                   seed: int = 0) -> SystemData:
    """A reference circuit (noise-free) on its own task preset."""
    import reference_circuits

    circuit = reference_circuits.load(name, instance_seed=instance_seed, noise_std=0.0)
    return system_data(circuit, name=f"{name} reference", key=name, kind="reference",
                       spec=circuit.task, n_trials=n_trials, seed=seed)


@dataclass(frozen=True)
class ZooRun:
    """A trained model in ``<results>/zoo/<model-id>-seed<k>``."""

    model: str
    seed: int
    path: Path

    @property
    def task(self) -> str:
        """The training task preset (from the run's config; a damaged one is an error)."""
        from hdbench.runs import Run

        return Run.load(self.path).task

    def load(self):
        from hdbench.runs import load_model

        return load_model(self.path)


def zoo_runs(results) -> list[ZooRun]:
    """Trained runs in ``<results>/zoo`` (folders ``<model-id>-seed<k>`` with a model.pt)."""
    zoo = Path(results) / "zoo"
    runs = []
    if zoo.is_dir():
        for path in sorted(zoo.iterdir()):
            match = _RUN_DIR.match(path.name)
            if match and (path / "model.pt").is_file():
                runs.append(ZooRun(match["model"], int(match["seed"]), path))
    return sorted(runs, key=lambda r: (r.model, r.seed))


def model_data(run: ZooRun, *, n_trials: int = N_TRIALS, seed: int = 0) -> SystemData:
    """A zoo run simulated on its own training task."""
    return system_data(run.load(), name=f"{run.model} seed {run.seed}", key=run.model,
                       spec=run.task, n_trials=n_trials, seed=seed)


def example_model(results, model: str | None = None) -> ZooRun:
    """The run shown beside the references: ``model``'s lowest seed; by default ``ctrnn``'s,
    else the first run of the zoo."""
    runs = zoo_runs(results)
    if not runs:
        raise MissingData(f"no trained model in {Path(results) / 'zoo'}",
                          f"hdbench leaderboard --out {results}")
    chosen = [r for r in runs if r.model == (model or "ctrnn")]
    if model is not None and not chosen:
        known = ", ".join(sorted({r.model for r in runs}))
        raise HdbenchError(f"no model {model!r} in {Path(results) / 'zoo'}; it holds {known}")
    return (chosen or runs)[0]


# -- cell types across the zoo ---------------------------------------------------------------


@dataclass
class Classified:
    """One classified system of the cell-type figure: its tuning table and integration gain
    (NaN when unknown)."""

    model: str
    seed: int
    kind: str
    task: str
    table: pd.DataFrame
    gain: float = float("nan")


def _gain(data: SystemData) -> float:
    from hdbench.analysis import integration_gain

    try:
        return integration_gain(data.activity, data.trials, n_boot=0)["gain"]
    except HdbenchError:
        return float("nan")


def classified(item, *, n_trials: int = N_TRIALS, seed: int = 0) -> Classified:
    """A :class:`Classified` from a :class:`ZooRun`, a :class:`SystemData` or a
    ``(model, seed, table[, gain])`` tuple."""
    if isinstance(item, Classified):
        return item
    if isinstance(item, ZooRun):
        data = model_data(item, n_trials=n_trials, seed=seed)
        return Classified(item.model, item.seed, "model", item.task, data.table, _gain(data))
    if isinstance(item, SystemData):
        return Classified(item.key, 0, item.kind, item.spec.name, item.table, _gain(item))
    model, run_seed, table, *gain = item
    return Classified(model, run_seed, "model", "", table,
                      float(gain[0]) if gain else float("nan"))


def cell_type_fractions(items, *, n_trials: int = N_TRIALS, seed: int = 0) -> pd.DataFrame:
    """Fraction of units per cell type, one row per (model, seed, cell type).

    ``items`` are :class:`ZooRun` objects, :class:`SystemData`, :class:`Classified` or
    ``(model, seed, table[, gain])`` tuples. Returns columns ``model``, ``seed``, ``kind``,
    ``task``, ``cell_type``, ``fraction``, ``gain`` (decoded-vs-true heading gain on the
    trials, :func:`hdbench.analysis.integration_gain`; NaN when unknown) and ``integrates``
    (gain within :data:`hdbench.analysis.INTEGRATION_RANGE`; True when unknown).
    """
    from hdbench.analysis import CLASSES, INTEGRATION_RANGE

    rows = []
    for item in items:
        c = classified(item, n_trials=n_trials, seed=seed)
        counts = c.table["cell_type"].value_counts()
        total = max(int(counts.sum()), 1)
        integrates = bool(not np.isfinite(c.gain)
                          or INTEGRATION_RANGE[0] <= c.gain <= INTEGRATION_RANGE[1])
        for cell_type in CLASSES:
            rows.append({"model": c.model, "seed": c.seed, "kind": c.kind, "task": c.task,
                         "cell_type": cell_type, "fraction": counts.get(cell_type, 0) / total,
                         "gain": c.gain, "integrates": integrates})
    return pd.DataFrame(rows, columns=["model", "seed", "kind", "task", "cell_type",
                                       "fraction", "gain", "integrates"])


def av_modulation(items, *, n_trials: int = N_TRIALS, seed: int = 0) -> pd.DataFrame:
    """AV asymmetry A and speed-normalised AV slope of every HD-tuned unit, one row per unit:
    ``model``, ``seed``, ``kind``, ``av_asymmetry``, ``av_slope_norm``."""
    frames = []
    for item in items:
        c = classified(item, n_trials=n_trials, seed=seed)
        tuned = c.table[c.table["cell_type"].isin(["compass", "shifter_cw", "shifter_ccw"])]
        frames.append(pd.DataFrame({
            "model": c.model, "seed": c.seed, "kind": c.kind,
            "av_asymmetry": tuned["av_asymmetry"].to_numpy(dtype=np.float64),
            "av_slope_norm": tuned.get("av_slope_norm", pd.Series(np.nan, index=tuned.index))
            .to_numpy(dtype=np.float64)}))
    columns = ["model", "seed", "kind", "av_asymmetry", "av_slope_norm"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else \
        pd.DataFrame(columns=columns)


def reference_systems(*, instances=(0, 1, 2), n_trials: int = N_TRIALS,
                      seed: int = 0) -> list[Classified]:
    """Each reference circuit classified, one 'seed' per independent instance."""
    out = []
    for name in REFERENCES:
        for instance in instances:
            c = classified(reference_data(name, instance_seed=instance, n_trials=n_trials,
                                          seed=seed))
            c.seed = instance
            out.append(c)
    return out


def reference_fractions(*, instances=(0, 1, 2), n_trials: int = N_TRIALS,
                        seed: int = 0) -> pd.DataFrame:
    """Cell-type fractions of each reference circuit, one 'seed' per independent instance."""
    return cell_type_fractions(reference_systems(instances=instances, n_trials=n_trials,
                                                 seed=seed))


# -- silencing and slow points ---------------------------------------------------------------


def silencing_traces(data: SystemData, *, n_trials: int = 8, n_steps: int = 400,
                     window: tuple[int, int] = (100, 250), min_output: float = 0.05,
                     seed: int = 0) -> pd.DataFrame:
    """Decoded heading during zero-AV holds with each cell group silenced over ``window``.

    The holds are those of :func:`hdbench.analysis.silencing_experiment` (cue, then AV = 0).
    Returns a long table: ``system``, ``key``, ``condition``, ``n_units``, ``trial``,
    ``time_s``, ``heading_deg`` (decoded heading minus the cued heading, unwrapped; NaN where
    the read-out has fallen below ``min_output`` of its norm before silencing). ``attrs`` holds
    ``window_s``, the silenced interval in seconds.
    """
    from hdbench.system import Silence
    from hdbench.task import make_trials

    spec = data.spec.replace(n_steps=int(n_steps), zero_av_epochs=False, sigma=0.0)
    holds = make_trials(spec, int(n_trials), [_SILENCING_STREAM, seed, 0])
    types = data.table["cell_type"].to_numpy()
    groups = {"none": (), "compass": np.nonzero(types == "compass")[0],
              "shifter_cw": np.nonzero(types == "shifter_cw")[0],
              "shifter_ccw": np.nonzero(types == "shifter_ccw")[0],
              "shifters": np.nonzero(np.isin(types, ["shifter_cw", "shifter_ccw"]))[0]}
    on, off = window
    time_s = np.arange(spec.n_steps) * spec.dt
    frames = []
    for condition, units in groups.items():
        units = tuple(int(u) for u in units)
        if condition != "none" and not units:
            continue
        act = data.system.simulate(holds, silence=Silence(units, on, off) if units else None)
        theta = np.unwrap(act.decoded_heading(), axis=1)
        theta = np.degrees(theta - theta[:, [spec.cue_steps]])
        norm = np.linalg.norm(act.outputs, axis=-1)
        before = norm[:, on - 40:on].mean(1, keepdims=True)
        theta[norm < min_output * before] = np.nan
        trial, step = np.meshgrid(np.arange(theta.shape[0]), np.arange(theta.shape[1]),
                                  indexing="ij")
        frames.append(pd.DataFrame({
            "system": data.name, "key": data.key, "condition": condition,
            "n_units": len(units), "trial": trial.ravel(), "time_s": time_s[step.ravel()],
            "heading_deg": theta.ravel()}))
    out = pd.concat(frames, ignore_index=True)
    out.attrs["window_s"] = (on * spec.dt, off * spec.dt)
    return out


def silencing_effects(data: SystemData, *, n_trials: int = 16, n_draws: int = 20,
                      seed: int = 0) -> pd.DataFrame:
    """:func:`hdbench.analysis.silencing_experiment` of a system with its matched random
    controls, one row per group, with ``system`` and ``key`` columns added."""
    import warnings

    from hdbench.analysis import silencing_experiment

    with warnings.catch_warnings():  # empty groups and vanished bumps give NaN means
        warnings.simplefilter("ignore", RuntimeWarning)
        table = silencing_experiment(data.system, data.table, data.spec, n_trials=n_trials,
                                     n_draws=n_draws, n_boot=500, seed=seed)
    out = table.assign(system=data.name, key=data.key)
    out.attrs = {}  # the per-draw table stays behind: frames holding frames do not concatenate
    return out


@dataclass
class SlowPointData:
    """Slow points of a system as rates (for projecting into the rates' PCs).

    ``rates`` [P, units], ``slow`` [P] bool, ``heading`` [P] rad; ``note`` says why there are
    none (e.g. a system without a vector field).
    """

    rates: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    slow: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    heading: np.ndarray = field(default_factory=lambda: np.zeros(0))
    note: str | None = None


def slow_points(data: SystemData, *, n_points: int = 72, seed: int = 0) -> SlowPointData:
    """Slow points started on task trajectories (:func:`~hdbench.analysis.slow_point_analysis`)."""
    import torch

    from hdbench.analysis import slow_point_analysis, vector_field

    try:
        vf = vector_field(data.system, dt=data.spec.dt)
        sp, _ = slow_point_analysis(data.system, data.table, data.spec, n_points=n_points,
                                    seed=seed)
    except HdbenchError as err:
        return SlowPointData(note=str(err))
    if vf.rates is None:
        return SlowPointData(note="the system gives no rates of its states")
    with torch.no_grad():
        rates = vf.rates(torch.as_tensor(sp.points, dtype=torch.float64)).numpy()
    return SlowPointData(rates=rates, slow=np.asarray(sp.slow), heading=np.asarray(sp.heading))


# -- tables from disk ------------------------------------------------------------------------


def leaderboard_table(results) -> tuple[pd.DataFrame, str | None]:
    """The tidy leaderboard table and a note on where it came from.

    Reads ``<results>/leaderboard.csv``; when that is absent, falls back to the quick
    leaderboard ``<results>/quick/leaderboard.csv`` and says so in the note (None otherwise).
    """
    from hdbench.leaderboard import COLUMNS, read_table

    results = Path(results)
    path, note = results / "leaderboard.csv", None
    if not path.is_file():
        path = results / "quick" / "leaderboard.csv"
        note = f"quick leaderboard ({path}); the full leaderboard is not published yet"
    if not path.is_file():
        raise MissingData(f"no leaderboard.csv in {results} or {results / 'quick'}",
                          f"hdbench leaderboard --out {results}")
    table = _read_tidy(path, read_table, COLUMNS)
    table.attrs["source"] = str(path)
    return table, note


def _read_tidy(path, reader, columns) -> pd.DataFrame:
    """``reader(path)``, with one-line errors for an unreadable file or missing columns."""
    try:
        table = reader(path)
    except (OSError, ValueError) as err:
        raise HdbenchError(f"cannot read {path}: {err}") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise HdbenchError(f"{path} lacks columns {', '.join(missing)}; expected "
                           f"{', '.join(columns)}")
    return table


def property_table(results) -> pd.DataFrame:
    """The measured property values of ``hdbench properties``: ``<results>/properties/
    properties.csv`` (columns :data:`hdbench.figures.properties.COLUMNS` and more)."""
    from hdbench.figures.properties import COLUMNS

    path = Path(results) / "properties" / "properties.csv"
    if not path.is_file():
        raise MissingData(f"no {path}", f"hdbench properties --results {results} "
                                        f"--out {path.parent}")
    table = _read_tidy(path, pd.read_csv, COLUMNS)
    table["unit"] = table["unit"].fillna("")
    return table


def sparse_recordings(results) -> pd.DataFrame:
    """The sparse-recording experiments of every teacher that has one, concatenated.

    Reads ``<results>/experiments/sparse-recordings-<teacher>.csv`` (``#`` lines are comments)
    with columns ``teacher, record_fraction, seed, measure, value``; extra columns are kept.
    """
    folder = Path(results) / "experiments"
    paths = sorted(folder.glob("sparse-recordings-*.csv")) if folder.is_dir() else []
    if not paths:
        raise MissingData(f"no {folder / 'sparse-recordings-<teacher>.csv'}",
                          "hdbench experiment sparse-recordings --teacher fly")
    frames = []
    for path in paths:
        frames.append(_read_tidy(path, lambda p: pd.read_csv(p, comment="#"), SPARSE_COLUMNS))
    table = pd.concat(frames, ignore_index=True)
    table["record_fraction"] = pd.to_numeric(table["record_fraction"], errors="coerce")
    table["value"] = pd.to_numeric(table["value"], errors="coerce")
    return table.dropna(subset=["record_fraction"])


def validity_status(results) -> dict | None:
    """:func:`hdbench.scoring.validity.read_status` of ``<results>/validity/
    benchmark_validity.csv``; None when the battery has not been run (every benchmark counts)."""
    from hdbench.scoring.validity import read_status

    path = Path(results) / "validity" / "benchmark_validity.csv"
    try:
        return read_status(path) or None
    except (OSError, ValueError, KeyError) as err:
        raise HdbenchError(f"cannot read {path}: {err}") from None


def validity_tables(results) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The validity battery of ``hdbench validate``: ``<results>/validity/
    benchmark_validity.csv`` and ``degradation_scores.csv`` (None when absent)."""
    from hdbench.figures.validity import DEGRADED_COLUMNS, RESULT_COLUMNS

    folder = Path(results) / "validity"
    path = folder / "benchmark_validity.csv"
    if not path.is_file():
        raise MissingData(f"no {path}", f"hdbench validate --out {results}")
    table = _read_tidy(path, pd.read_csv, RESULT_COLUMNS)
    # A column written twice reads back as "<name>.1": keep the first.
    table = table.drop(columns=[c for c in table.columns
                                if c.endswith(".1") and c[:-2] in table.columns])
    degraded_path = folder / "degradation_scores.csv"
    if not degraded_path.is_file() or not degraded_path.read_text().strip():
        return table, None  # no degradations scored (e.g. a battery without grounding)
    return table, _read_tidy(degraded_path, pd.read_csv, DEGRADED_COLUMNS)


def cueva_reproduction(results) -> pd.DataFrame:
    """The tidy table of ``hdbench experiment cueva-reproduction``:
    ``<results>/experiments/cueva-reproduction.csv``."""
    from hdbench.figures.reproduction import COLUMNS

    path = Path(results) / "experiments" / "cueva-reproduction.csv"
    if not path.is_file():
        raise MissingData(f"no {path}", f"hdbench experiment cueva-reproduction --out {results}")
    table = _read_tidy(path, pd.read_csv, COLUMNS)
    table["value"] = pd.to_numeric(table["value"], errors="coerce")
    return table
