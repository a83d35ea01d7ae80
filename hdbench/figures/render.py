"""Render the figure set from a results folder (``hdbench figures``).

:class:`FigureData` loads (and computes, once) what the figures need; :data:`FIGURES` maps each
figure's name to its builder; :func:`render_figures` writes every figure whose data exists and
skips the others with a one-line message naming the command that produces their data.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from hdbench.errors import HdbenchError
from hdbench.figures import data as fdata
from hdbench.figures import properties, reproduction, summaries, systems, validity
from hdbench.figures.style import check_formats, figure_style, number_heading, save_figure


class FigureData:
    """Lazy, cached access to what the figures need from ``results``.

    Parameters
    ----------
    results : folder with ``zoo/``, ``leaderboard.csv`` (or ``quick/leaderboard.csv``) and
        ``experiments/``
    n_trials : test trials simulated per system
    model : model id shown beside the references (its lowest seed; default ``ctrnn``, else
        the first model of the zoo)
    """

    def __init__(self, results="results", *, n_trials: int = fdata.N_TRIALS,
                 model: str | None = None):
        self.results = Path(results)
        self.n_trials = int(n_trials)
        self.model = model

    @cached_property
    def systems(self) -> list[fdata.SystemData]:
        run = fdata.example_model(self.results, self.model)
        return [fdata.model_data(run, n_trials=self.n_trials),
                *(fdata.reference_data(name, n_trials=self.n_trials)
                  for name in fdata.REFERENCES)]

    @cached_property
    def classified(self) -> tuple[list, list[str]]:
        """Every reference instance and zoo run classified, and the runs that failed."""
        runs = fdata.zoo_runs(self.results)
        if not runs:
            raise fdata.MissingData(f"no trained model in {self.results / 'zoo'}",
                                    f"hdbench leaderboard --out {self.results}")
        items, failed = fdata.reference_systems(n_trials=self.n_trials), []
        for run in runs:
            try:
                items.append(fdata.classified(run, n_trials=self.n_trials))
            except HdbenchError as err:  # e.g. a model type this installation cannot build
                failed.append(f"{run.path.name} ({str(err)[:60]})")
        return items, failed

    @cached_property
    def fractions(self):
        items, failed = self.classified
        out = fdata.cell_type_fractions(items)
        out.attrs["failed"] = failed
        return out

    @cached_property
    def modulation(self):
        return fdata.av_modulation(self.classified[0])

    @cached_property
    def silencing(self):
        import pandas as pd

        frames = [fdata.silencing_traces(d) for d in self.systems]
        out = pd.concat(frames, ignore_index=True)
        out.attrs["window_s"] = frames[0].attrs["window_s"]
        return out

    @cached_property
    def silencing_effects(self):
        import pandas as pd

        return pd.concat([fdata.silencing_effects(d) for d in self.systems], ignore_index=True)

    @cached_property
    def slow_points(self) -> list[fdata.SlowPointData]:
        return [fdata.slow_points(d) for d in self.systems]

    @cached_property
    def leaderboard(self):
        return fdata.leaderboard_table(self.results)

    @cached_property
    def validity_status(self) -> dict | None:
        """Which benchmarks are validated (None: the battery has not been run)."""
        return fdata.validity_status(self.results)

    @cached_property
    def validity(self):
        return fdata.validity_tables(self.results)

    @cached_property
    def sparse(self):
        return fdata.sparse_recordings(self.results)

    @cached_property
    def properties(self):
        return fdata.property_table(self.results)

    @cached_property
    def reproduction(self):
        return fdata.cueva_reproduction(self.results)


def _fig_kao(d: FigureData):
    table, note = d.leaderboard
    if summaries.kao_scores(table).empty:
        raise fdata.MissingData(f"no kao-* models in {table.attrs.get('source', 'leaderboard')}",
                                f"hdbench leaderboard --out {d.results}")
    return summaries.kao_figure(table, note=note, title=True)


@dataclass(frozen=True)
class FigureSpec:
    """One figure: file stem, number, what it shows and how to build it from FigureData."""

    name: str
    number: int
    title: str
    build: Callable = field(repr=False)

    @property
    def stem(self) -> str:
        return f"fig{self.number}-{self.name}"


FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("task", 1, "example trials: AV, true and decoded heading",
               lambda d: systems.task_figure(d.systems, title=True)),
    FigureSpec("tuning", 2, "HD tuning curves and HD × AV maps",
               lambda d: systems.tuning_figure(d.systems, title=True)),
    FigureSpec("cell-types", 3, "cell-type fractions of integrating networks, and the "
               "distribution of AV modulation",
               lambda d: summaries.cell_type_figure(
                   d.fractions, d.modulation, title=True,
                   note=("could not load: " + "; ".join(d.fractions.attrs["failed"])
                         if d.fractions.attrs["failed"] else None))),
    FigureSpec("connectivity", 4, "sorted weights and weight profiles",
               lambda d: systems.connectivity_figure(d.systems, title=True)),
    FigureSpec("silencing", 5, "decoded heading with cell groups silenced, and the effects "
               "against matched random controls",
               lambda d: systems.silencing_figure(d.silencing, d.silencing_effects,
                                                  title=True)),
    FigureSpec("dynamics", 6, "trajectories and slow points in the top two PCs",
               lambda d: systems.dynamics_figure(d.systems, d.slow_points, title=True)),
    FigureSpec("leaderboard", 7, "brain-likeness, family scores and task competence",
               lambda d: summaries.leaderboard_figure(d.leaderboard[0],
                                                      validity=d.validity_status,
                                                      note=d.leaderboard[1], title=True)),
    FigureSpec("kao", 8, "tuning vs population scores over the Kao grid", _fig_kao),
    FigureSpec("sparse", 9, "sparse recordings: unrecorded neurons and generalisation",
               lambda d: summaries.sparse_figure(d.sparse, title=True)),
    FigureSpec("properties", 10, "measured vs published property values",
               lambda d: properties.property_figure(d.properties, title=True)),
    FigureSpec("validity", 11, "validity battery: tests passed per benchmark, scores of "
               "degraded references",
               lambda d: validity.validity_figure(*d.validity, title=True)),
    FigureSpec("reproduction", 12, "Cueva reproduction: unimodality, classes and training per "
               "recipe; compass units vs speed",
               lambda d: reproduction.reproduction_figure(d.reproduction, title=True)),
)


def build_figure(spec: FigureSpec, data: FigureData):
    """The figure of ``spec`` built from ``data``, its heading numbered ``Figure <N>.``"""
    fig = spec.build(data)
    number_heading(fig, spec.number)
    return fig


def select(only=None) -> list[FigureSpec]:
    """Figures named in ``only`` (names, numbers or stems such as ``fig3``; a list or a
    comma-separated string), all of them by default."""
    if only is None:
        return list(FIGURES)
    if isinstance(only, str):
        only = only.split(",")
    keys = {}
    for spec in FIGURES:
        for key in (spec.name, str(spec.number), f"fig{spec.number}", spec.stem):
            keys[key] = spec
    chosen, bad = [], []
    for item in only:
        item = str(item).strip().lower()
        if not item:
            continue
        if item in keys:
            if keys[item] not in chosen:
                chosen.append(keys[item])
        else:
            bad.append(item)
    if bad or not chosen:
        raise HdbenchError(f"unknown figure(s) {', '.join(bad) or '(none given)'}; known: "
                           + ", ".join(f"{s.number} {s.name}" for s in FIGURES))
    return sorted(chosen, key=lambda s: s.number)


@dataclass
class RenderReport:
    """What :func:`render_figures` did: written files, skipped and failed figures."""

    written: dict[str, list[Path]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def render_figures(results="results", out="results/figures", formats=("png",), only=None, *,
                   n_trials: int = fdata.N_TRIALS, model: str | None = None,
                   log: Callable[[str], None] | None = None,
                   data: FigureData | None = None) -> RenderReport:
    """Render the chosen figures of ``results`` into ``out`` (``fig<N>-<name>.<format>``).

    A figure whose data is missing is skipped with a one-line message naming the command that
    produces it; a figure whose data is malformed is reported as failed; neither stops the
    others.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    formats = check_formats(formats)
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 4:
        raise HdbenchError(f"n_trials must be an integer >= 4 (test trials per system); "
                           f"got {n_trials!r}")
    chosen = select(only)
    results = Path(results)
    if not results.is_dir():
        raise HdbenchError(f"results folder {results} does not exist")
    if model is not None and fdata.zoo_runs(results):
        fdata.example_model(results, model)  # an unknown model id is a usage error
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise HdbenchError(f"cannot create output folder {out}: {err}") from None
    data = data or FigureData(results, n_trials=n_trials, model=model)
    report = RenderReport()
    for spec in chosen:
        start = time.perf_counter()
        try:
            with figure_style():
                fig = build_figure(spec, data)
                try:
                    paths = save_figure(fig, out / spec.stem, formats)
                finally:
                    plt.close(fig)
        except fdata.MissingData as missing:
            report.skipped[spec.name] = missing.command
            log(f"skipped {spec.stem}: {missing.what}; run `{missing.command}`")
            continue
        except HdbenchError as err:
            report.failed[spec.name] = str(err)
            log(f"failed {spec.stem}: {err}")
            continue
        report.written[spec.name] = paths
        report.seconds[spec.name] = round(time.perf_counter() - start, 2)
        log(f"wrote {', '.join(str(p) for p in paths)} ({report.seconds[spec.name]:.1f} s)")
    return report
