"""Figures across many models: cell-type fractions, the leaderboard, the Kao grid, sparse
recordings.

3. :func:`cell_type_figure` — cell-type fractions of the networks that integrate, across
   models and training speeds, and the distribution of AV modulation they are cut from;
7. :func:`leaderboard_figure` — heatmap of normalised scores with confidence intervals;
8. :func:`kao_figure` — single-unit (tuning) vs population likeness over the Kao grid;
9. :func:`sparse_figure` — similarity of unrecorded neurons and generalisation vs the
   recorded fraction.

Each takes DataFrames and returns a matplotlib Figure.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from hdbench.errors import HdbenchError
from hdbench.figures.style import (
    ACTIVATION_COLORS,
    CELL_TYPE_COLORS,
    CELL_TYPE_LABELS,
    CELL_TYPE_ORDER,
    RATE_MARKERS,
    SCORE_CMAP,
    heading,
    kao_parts,
    system_color,
    text_color,
)

SPEED_LABELS = {"ctrnn-cueva-0p1x": "0.1×", "ctrnn": "1×", "ctrnn-cueva-3x": "3×"}
#: The neural families whose mean is brain-likeness, in display order.
NEURAL_FAMILIES = ("tuning", "representation", "connectivity", "dynamics", "properties")


def _require(frame, columns, what):
    if frame is None or not isinstance(frame, pd.DataFrame):
        raise HdbenchError(f"{what} must be a pandas DataFrame")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise HdbenchError(f"{what} lacks columns {', '.join(missing)}")
    if frame.empty:
        raise HdbenchError(f"{what} is empty")


def _panel_label(ax, letter: str) -> None:
    """A bold panel letter above the top-left corner, left of any centred title."""
    ax.annotate(letter, xy=(0, 1), xycoords="axes fraction", xytext=(-26, 4),
                textcoords="offset points", fontweight="bold", fontsize=10, ha="left",
                va="bottom")


# -- 3. cell types ---------------------------------------------------------------------------


def _integrating(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of the (model, seed) pairs that integrate (all rows without the column)."""
    return frame[frame["integrates"].astype(bool)] if "integrates" in frame else frame


def _fraction_panel(ax, frame: pd.DataFrame, x: str, order: list, xlabels: list,
                    types: list) -> None:
    """Grouped bars (mean over the seeds that integrate) per x, one dot per such seed; an x
    whose seeds all fail to integrate gets no bar but a note."""
    n = len(types)
    width = 0.8 / n
    ok = _integrating(frame)
    for j, cell_type in enumerate(types):
        rows = ok[ok["cell_type"] == cell_type]
        pos = np.arange(len(order)) - 0.4 + width * (j + 0.5)
        means = [rows.loc[rows[x] == o, "fraction"].mean() * 100 for o in order]
        ax.bar(pos, means, width=width * 0.92, color=CELL_TYPE_COLORS[cell_type],
               label=CELL_TYPE_LABELS[cell_type], edgecolor="0.35", lw=0.4)
        for k, o in enumerate(order):
            vals = rows.loc[rows[x] == o, "fraction"].to_numpy() * 100
            if vals.size > 1:
                ax.plot([pos[k]] * 2, [vals.min(), vals.max()], color="black", lw=0.7)
            ax.scatter(np.full(vals.size, pos[k]), vals, s=5, color="black", zorder=3, lw=0)
    xlabels = list(xlabels)
    for k, o in enumerate(order):
        seeds = frame[(frame[x] == o) & (frame["cell_type"] == types[0])]
        refused = seeds[~seeds["integrates"].astype(bool)] if "integrates" in seeds else \
            seeds.iloc[:0]
        if len(refused) == len(seeds) and len(seeds):
            # No bar and no dot here: the note takes the empty slot.
            gains = ", ".join(f"{g:.2f}" for g in refused["gain"])
            ax.text(k, 50, f"not compared:\nno seed\nintegrates\n(gain {gains})",
                    ha="center", va="center", fontsize=5.5, color="0.25")
        elif len(refused):
            # Bars and dots fill the slot: the note goes under the tick label.
            gains = ", ".join(f"{g:.2f}" for g in refused["gain"])
            xlabels[k] += f"\n{len(refused)} left out:\nno integration\n(gain {gains})"
    ax.set_xticks(np.arange(len(order)), xlabels, rotation=30 if len(order) > 5 else 0,
                  ha="right" if len(order) > 5 else "center")
    ax.set_xlim(-0.6, len(order) - 0.4)
    ax.set_ylim(0, 100)
    ax.set_ylabel("units (%)")


def _forest(ax, frame: pd.DataFrame, order: list, cell_type: str) -> None:
    """One cell type: per system (rows) the mean share of units over the seeds that integrate
    (large dot), those seeds (small dots) and their range (line); seeds that do not integrate
    are grey crosses, left out of the mean."""
    color = CELL_TYPE_COLORS[cell_type]
    rows = frame[frame["cell_type"] == cell_type]
    for y, system in enumerate(order):
        mine = rows[rows["model"] == system]
        ok = _integrating(mine)
        vals = ok["fraction"].to_numpy() * 100
        refused = mine.loc[~mine.index.isin(ok.index), "fraction"].to_numpy() * 100
        if refused.size:
            ax.scatter(refused, np.full(refused.size, y), s=12, marker="x", color="0.55",
                       lw=0.8, zorder=3)
        if not vals.size:
            continue
        ax.plot([vals.min(), vals.max()], [y, y], color=color, lw=1.4, solid_capstyle="round")
        ax.scatter(vals, np.full(vals.size, y), s=6, color="black", lw=0, zorder=3)
        ax.scatter([vals.mean()], [y], s=30, color=color, edgecolor="black", lw=0.6,
                   zorder=4)
    ax.set_xlim(-3, 103)
    ax.set_xticks([0, 50, 100])
    ax.set_ylim(len(order) - 0.5, -0.5)
    ax.grid(axis="y", color="0.92", lw=0.6)
    ax.set_xlabel("units (%)")
    ax.set_title(CELL_TYPE_LABELS[cell_type], color=text_color(color), fontsize=8)


def _strips(ax, modulation: pd.DataFrame, order: list, column: str, kappa: float | None,
            xlabel: str) -> None:
    """One row per system: every HD-tuned unit's value (all seeds pooled, jittered) and the
    median; dashed lines at ±kappa. The axis spans the central 98 % of all values (at most
    ±1); values beyond sit on its edges as open marks (e.g. units of tanh networks with
    negative rates)."""
    rng = np.random.default_rng(0)
    pooled = modulation[column].to_numpy(dtype=float)
    pooled = pooled[np.isfinite(pooled)]
    lim = min(float(np.quantile(np.abs(pooled), 0.98)) * 1.1, 1.0) if pooled.size else 1.0
    lim = max(lim, 0.05)
    for y, system in enumerate(order):
        vals = modulation.loc[modulation["model"] == system, column].to_numpy(dtype=float)
        vals = vals[np.isfinite(vals)]
        if not vals.size:
            continue
        jitter = y + rng.uniform(-0.3, 0.3, vals.size)
        inside = np.abs(vals) <= lim
        ax.scatter(vals[inside], jitter[inside], s=1.5, lw=0, color=system_color(system),
                   alpha=0.6, rasterized=True)
        if (~inside).any():
            ax.scatter(np.clip(vals[~inside], -lim, lim), jitter[~inside], s=6, lw=0.5,
                       facecolor="none", edgecolor=system_color(system), clip_on=False)
        ax.plot([np.median(vals)] * 2, [y - 0.38, y + 0.38], color="black", lw=0.8)
    ax.set_xlim(-lim, lim)
    if kappa is not None:
        for k in (-kappa, kappa):
            ax.axvline(k, color="0.4", lw=0.6, ls="--")
    ax.axvline(0, color="0.75", lw=0.5)
    ax.set_ylim(len(order) - 0.5, -0.5)
    ax.grid(axis="y", color="0.92", lw=0.6)
    ax.set_xlabel(xlabel)
    ax.tick_params(labelleft=False)


def cell_type_figure(fractions: pd.DataFrame, modulation: pd.DataFrame | None = None, *,
                     note: str | None = None, title: bool | str | None = False):
    """Figure 3: cell types as thresholded labels of a continuum.

    A: fraction of units per cell type across models and references (one column per cell type:
    large dot = mean over the seeds that integrate, small dots = those seeds, line = their
    range; grey crosses: seeds that do not integrate, whose fractions are not compared).
    B, C (with ``modulation``): the AV asymmetry A and the AV slope per AV SD of every HD-tuned
    unit, the distributions the classes are cut from (dashed: ±κ). Last panel (B without
    ``modulation``, else D): across the training AV speeds 0.1×, 1×, 3× of the Cueva CTRNN
    (bars = means over the seeds that integrate; the legend sits under it, clear of the bars).

    ``fractions`` has columns ``model``, ``seed``, ``cell_type``, ``fraction`` and optionally
    ``kind`` (``reference`` rows are drawn first), ``gain`` and ``integrates``; see
    :func:`hdbench.figures.data.cell_type_fractions` and :func:`~hdbench.figures.data.
    av_modulation`. ``title``: True for the paper's caption, a string for your own, False/None
    for none; ``note`` is added under it.
    """
    import matplotlib.pyplot as plt

    from hdbench.analysis import DEFAULT_THRESHOLDS, INTEGRATION_RANGE

    _require(fractions, ("model", "seed", "cell_type", "fraction"), "cell-type fractions")
    frame = fractions.copy()
    if "kind" not in frame:
        frame["kind"] = "model"
    types = [t for t in CELL_TYPE_ORDER if t in set(frame["cell_type"])]
    refs = list(dict.fromkeys(frame.loc[frame["kind"] == "reference", "model"]))
    models = sorted(set(frame.loc[frame["kind"] != "reference", "model"]) - set(refs))
    order = refs + models
    seeds = frame.groupby("model")["seed"].nunique()
    refused = (frame[~frame["integrates"].astype(bool)].groupby("model")["seed"].nunique()
               if "integrates" in frame else pd.Series(dtype=int))
    speeds = [m for m in SPEED_LABELS if m in set(models)]
    strips = modulation is not None and not modulation.empty
    height = max(4.6, 0.24 * len(order) + 1.7)
    extra = 2 if strips else 0
    fig = plt.figure(figsize=(1.35 * len(types) + 1.9 * extra + 5.2, height),
                     layout="constrained")
    grid = fig.add_gridspec(2, len(types) + extra + 1,
                            width_ratios=[1.0] * len(types) + [1.4] * extra + [2.6],
                            height_ratios=(3.0, height - 3.0))
    first = None
    for k, cell_type in enumerate(types):
        ax = fig.add_subplot(grid[:, k], sharey=first)
        _forest(ax, frame, order, cell_type)
        if first is None:
            first = ax
            _panel_label(ax, "A")
            ax.set_yticks(np.arange(len(order)), [
                f"{m} (n={seeds[m]}" + (f", {refused[m]} not integrating" if m in refused
                                        else "") + ")" for m in order])
            for tick, m in zip(ax.get_yticklabels(), order, strict=True):
                tick.set_color(text_color(system_color(m)))
            ax.set_ylabel("system (n = seeds or reference instances)")
        else:
            ax.tick_params(labelleft=False)
        if refs and models:
            ax.axhline(len(refs) - 0.5, color="0.5", lw=0.6)
    if strips:
        kappa = DEFAULT_THRESHOLDS["kappa"]
        for j, (column, label, letter, k) in enumerate((
                ("av_asymmetry", "AV asymmetry A", "B", kappa),
                ("av_slope_norm", "AV slope × AV SD / peak", "C", None))):
            ax = fig.add_subplot(grid[:, len(types) + j], sharey=first)
            _panel_label(ax, letter)
            _strips(ax, modulation, order, column, k, label)
            ax.set_title("tuned units, seeds pooled" if j == 0 else "speed-normalised",
                         fontsize=7)
            if refs and models:
                ax.axhline(len(refs) - 0.5, color="0.5", lw=0.6)
    ax = fig.add_subplot(grid[0, -1])
    _panel_label(ax, "D" if strips else "B")
    ax.set_title("across training AV speeds (CTRNN)")
    if speeds:
        speed_labels = [f"{SPEED_LABELS[m]}\n(n={seeds[m]})" for m in speeds]
        _fraction_panel(ax, frame, "model", speeds, speed_labels, types)
        missing = [SPEED_LABELS[m] for m in SPEED_LABELS if m not in speeds]
        if missing:
            ax.text(0.98, 0.03, f"not trained yet: {', '.join(missing)}",
                    transform=ax.transAxes, ha="right", va="bottom", fontsize=6, color="0.3")
        # The legend gets its own slot under panel B, clear of the bars and seed dots.
        holder = fig.add_subplot(grid[1, -1])
        holder.axis("off")
        holder.legend(*ax.get_legend_handles_labels(), fontsize=6, frameon=False,
                      loc="upper center", ncol=3, title="cell type (bars: mean over the "
                      "seeds that integrate; dots: seeds)", title_fontsize=6)
    else:
        ax.text(0.5, 0.5, "no speed-preset models yet", transform=ax.transAxes, ha="center",
                va="center", color="0.4")
        ax.set_ylim(0, 100)
        ax.set_ylabel("units (%)")
    ax.set_xlabel("training AV SD (× Cueva et al. 2020)")
    low, high = INTEGRATION_RANGE
    heading(fig, title, f"Cell types are thresholded labels (min_r 0.3, κ 0.03); fractions are "
                        f"compared only for networks that integrate (heading gain "
                        f"{low:g}-{high:g})", note=note)
    return fig


# -- 7. leaderboard --------------------------------------------------------------------------


def _ci_halfwidth(error: float, n_seeds: int, level: float = 0.95) -> float:
    """Half-width of a t confidence interval from a standard error over ``n_seeds`` seeds."""
    from scipy import stats

    if not np.isfinite(error):
        return math.nan
    dof = max(int(n_seeds) - 1, 1)
    return float(stats.t.ppf(0.5 + level / 2, dof) * error)


def score_summary(table: pd.DataFrame, validity: dict | None = None) -> pd.DataFrame:
    """Family, brain-likeness and task scores per (model, reference) from the tidy leaderboard
    table (:func:`hdbench.leaderboard.summarise`; with ``validity``, from
    :func:`hdbench.scoring.validity.read_status`, only validated benchmarks enter the neural
    aggregates), with a 95 % confidence half-width ``ci`` (t over seeds; from the benchmark
    errors for 1 seed)."""
    from hdbench.leaderboard import COLUMNS, summarise

    _require(table, COLUMNS, "leaderboard table")
    summary = summarise(table, validity=validity)
    summary["ci"] = [_ci_halfwidth(e, n) for e, n in
                     zip(summary["error"], summary["n_seeds"], strict=True)]
    return summary


def _heatmap(ax, indexed: pd.DataFrame, models: list, columns: list, cmap, norm) -> None:
    """One block of the leaderboard: models × (reference, family) cells, coloured by the score
    clipped to [0, 1] and printed with ± the 95 % half-width and (n/m) coverage when short."""
    values = np.full((len(models), len(columns)), np.nan)
    for i, model in enumerate(models):
        for j, key in enumerate(columns):
            if (model, *key) not in indexed.index:
                continue
            row = indexed.loc[(model, *key)]
            values[i, j] = row["normalised"]
            if not np.isfinite(row["normalised"]):
                text, shade = "n/a", (1, 1, 1, 1)
            else:
                clipped = min(max(row["normalised"], 0.0), 1.0)
                text = f"{clipped:.2f}{'*' if clipped != row['normalised'] else ''}"
                shade = cmap(norm(clipped))
                if np.isfinite(row["ci"]):
                    text += f"\n±{row['ci']:.2f}"
            if row["n"] < row["n_total"]:
                text += f"\n({int(row['n'])}/{int(row['n_total'])})"
            light = 0.299 * shade[0] + 0.587 * shade[1] + 0.114 * shade[2] > 0.5
            ax.text(j, i, text, ha="center", va="center", fontsize=6,
                    color="black" if light else "white")
    ax.imshow(np.clip(values, 0, 1), cmap=cmap, norm=norm, aspect="auto",
              interpolation="nearest")
    ax.set_yticks(np.arange(len(models)), models)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)


def _validity_line(table: pd.DataFrame, validity: dict | None) -> str:
    """Which neural benchmarks the brain-likeness counts."""
    from hdbench.leaderboard import TASK_FAMILY, counted

    leaves = table[["reference", "family", "benchmark", "version"]].drop_duplicates(
        ["reference", "benchmark"])
    neural = leaves[leaves["family"] != TASK_FAMILY]
    if validity is None:
        return f"all {len(neural)} neural benchmarks\n(no validity battery yet)"
    return f"{len(counted(neural, validity))} of {len(neural)} neural\nbenchmarks (validated)"


def leaderboard_figure(table: pd.DataFrame, *, validity: dict | None = None,
                       note: str | None = None, title: bool | str | None = False):
    """Figure 7: the leaderboard as heatmaps of normalised scores, models ranked by
    brain-likeness.

    Left to right: brain-likeness over all references (the headline and the rank: the mean over
    the neural families tuning, representation, connectivity, dynamics, properties; validated
    benchmarks only when ``validity`` is given, see :func:`hdbench.leaderboard.summarise`);
    per reference its brain-likeness and neural families; then task competence (all references
    and per reference) in its own grey scale, apart, because it does not enter the rank.
    Colours show the score clipped to [0, 1] (0 = untrained floor, 1 = reference ceiling);
    cells print the score (``*`` = clipped), ± the 95 % confidence half-width, and (n/m) when
    only n of the m benchmarks were scored.

    ``validity``: :func:`hdbench.scoring.validity.read_status` output (None: every benchmark
    counts). ``note``: a line under the heading (e.g. the source table). ``title``: True for
    the paper's caption, a string for your own, False/None for none.
    """
    import matplotlib.pyplot as plt
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import ListedColormap, Normalize

    from hdbench.leaderboard import TASK_FAMILY
    from hdbench.leaderboard_render import ranking

    summary = score_summary(table, validity)
    models = ranking(summary)
    models += sorted(set(summary["model"]) - set(models))  # no brain-likeness: last
    references = sorted(set(summary["reference"]) - {"all"})
    present = set(zip(summary["reference"], summary["family"], strict=True))
    neural = [f for f in NEURAL_FAMILIES if any((r, f) in present for r in references)]
    neural += sorted({f for _, f in present} - set(neural) - {"overall", TASK_FAMILY})
    blocks = [("brain-likeness\n(all references; the rank)", [("all", "overall")],
               ["brain-likeness"], "brain")]
    for reference in references:
        if (reference, "overall") not in present:
            continue  # no validated neural benchmark of this reference: nothing to draw
        cols = [(reference, "overall")] + [(reference, f) for f in neural
                                          if (reference, f) in present]
        blocks.append((f"vs {reference}", cols,
                       ["brain-likeness"] + [f for _, f in cols[1:]], "brain"))
    task = [(r, TASK_FAMILY) for r in ["all", *references] if (r, TASK_FAMILY) in present]
    if task:
        blocks.append(("task competence\n(apart: not in the rank)", task,
                       ["all references" if r == "all" else f"vs {r}" for r, _ in task],
                       "task"))
    widths = [len(b[1]) for b in blocks]
    fig, axes = plt.subplots(1, len(blocks), sharey=True, squeeze=False,
                             figsize=(0.62 * sum(widths) + 3.6, 0.42 * len(models) + 2.2),
                             width_ratios=widths, layout="constrained")
    norm = Normalize(0, 1)
    # Task competence in greys (light to mid-dark), visibly apart from the brain-likeness map.
    greys = ListedColormap(plt.get_cmap("Greys")(np.linspace(0.05, 0.75, 256)), name="greys")
    cmaps = {"brain": plt.get_cmap(SCORE_CMAP), "task": greys}
    indexed = summary.set_index(["model", "reference", "family"])
    for ax, (name, cols, labels, kind) in zip(axes[0], blocks, strict=True):
        _heatmap(ax, indexed, models, cols, cmaps[kind], norm)
        if kind == "brain" and len(cols) > 1:
            ax.axvline(0.5, color="white", lw=3)  # brain-likeness | its families
        ax.set_xticks(np.arange(len(cols)), labels, rotation=40, ha="right")
        for tick in ax.get_xticklabels()[:1] if kind == "brain" else []:
            tick.set_fontweight("bold")
        ax.set_title(name, fontweight="bold" if ax is axes[0, 0] else "normal")
    axes[0, 0].set_xlabel(_validity_line(table, validity), fontsize=6)
    if task:
        axes[0, -1].set_xlabel("test-trial task scores", fontsize=6)
    for tick, model in zip(axes[0, 0].get_yticklabels(), models, strict=True):
        tick.set_color(text_color(system_color(model)))
    axes[0, 0].set_ylabel("model (ranked by brain-likeness)")
    brain_axes = [ax for ax, b in zip(axes[0], blocks, strict=True) if b[3] == "brain"]
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmaps["brain"]), ax=brain_axes, shrink=0.6,
                 location="bottom", aspect=40, pad=0.01,
                 label="brain-likeness and family scores (0 = untrained, 1 = reference)")
    if task:
        fig.colorbar(ScalarMappable(norm=norm, cmap=cmaps["task"]), ax=axes[0, -1],
                     shrink=0.9, location="bottom", aspect=12, pad=0.01,
                     label="task competence\n(0 = untrained, 1 = reference)")
    heading(fig, title, "Leaderboard: normalised scores, ranked by brain-likeness (± 95 % CI "
                        "over seeds; * = clipped to [0, 1]; (n/m) = benchmarks scored / "
                        "counted)", note=f"source: {note}" if note else None)
    return fig


# -- 8. Kao grid -----------------------------------------------------------------------------


def kao_scores(table: pd.DataFrame) -> pd.DataFrame:
    """Family scores of the Kao-grid models (``kao-<activation>-rate<penalty>``), with
    ``activation`` and ``rate`` columns; empty when the table has none."""
    summary = score_summary(table)
    per_reference = summary[summary["reference"] != "all"]
    # Family scores over all references: the mean of the references' family scores.
    pooled = per_reference.groupby(["model", "family"], sort=False).agg(
        normalised=("normalised", "mean"),
        error=("error", lambda e: float(np.sqrt((e**2).sum())) / len(e)),
        n=("n", "sum"), n_total=("n_total", "sum"), n_seeds=("n_seeds", "max")).reset_index()
    pooled["reference"] = "all"
    summary = pd.concat([per_reference, pooled], ignore_index=True)
    parts = summary["model"].map(kao_parts)
    kao = summary[parts.notna()].copy()
    kao["activation"] = [p[0] for p in parts[parts.notna()]]
    kao["rate"] = [p[1] for p in parts[parts.notna()]]
    return kao


def kao_figure(table: pd.DataFrame, *, note: str | None = None,
               y_families=("representation", "dynamics"), title: bool | str | None = False):
    """Figure 8: tuning score (single units) against representation and dynamics scores
    (population) of the Kao (2019) activation × rate-penalty grid, one point per model (mean
    over seeds, whiskers ± SEM), colour = activation, marker = rate penalty.

    ``note``: a line under the heading (e.g. the source table). ``title``: True for the
    paper's caption, a string for your own, False/None for none.
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    kao = kao_scores(table)
    if kao.empty:
        raise HdbenchError("the leaderboard table has no kao-<activation>-rate<penalty> models")
    references = sorted(r for r in set(kao["reference"]) if r != "all") + ["all"]
    fig, axes = plt.subplots(len(y_families), len(references), squeeze=False,
                             figsize=(2.7 * len(references) + 1.6, 2.6 * len(y_families) + 0.8),
                             sharex=True, sharey=True, layout="constrained")
    letters = iter("ABCDEFGHIJKL")
    for row, family in enumerate(y_families):
        for col, reference in enumerate(references):
            ax = axes[row, col]
            _panel_label(ax, next(letters))
            sub = kao[kao["reference"] == reference]
            x = sub[sub["family"] == "tuning"].set_index("model")
            y = sub[sub["family"] == family].set_index("model")
            for model in sorted(set(x.index) & set(y.index)):
                xr, yr = x.loc[model], y.loc[model]
                if not (np.isfinite(xr["normalised"]) and np.isfinite(yr["normalised"])):
                    continue
                color = ACTIVATION_COLORS.get(xr["activation"], system_color(model))
                marker = RATE_MARKERS.get(xr["rate"], "D")
                ax.errorbar(xr["normalised"], yr["normalised"],
                            xerr=xr["error"] if np.isfinite(xr["error"]) else None,
                            yerr=yr["error"] if np.isfinite(yr["error"]) else None,
                            fmt=marker, color=color, ms=6, mec="black", mew=0.5,
                            elinewidth=0.8, capsize=0)
            ax.plot([0, 1], [0, 1], color="0.6", lw=0.6, ls="--", zorder=0)
            for v in (0, 1):
                ax.axhline(v, color="0.85", lw=0.5, zorder=0)
                ax.axvline(v, color="0.85", lw=0.5, zorder=0)
            if row == 0:
                ax.set_title("all references" if reference == "all" else f"vs {reference}")
            if row == len(y_families) - 1:
                ax.set_xlabel("tuning score (single units; normalised)")
            if col == 0:
                ax.set_ylabel(f"{family} score\n(population; normalised)")
    handles = [Line2D([], [], ls="", marker="o", color=c, mec="black", mew=0.5, label=a)
               for a, c in ACTIVATION_COLORS.items() if a in set(kao["activation"])]
    handles += [Line2D([], [], ls="", marker=m, color="white", mec="black",
                       label=f"rate penalty {r}")
                for r, m in RATE_MARKERS.items() if r in set(kao["rate"])]
    fig.legend(handles=handles, loc="outside right center", fontsize=7, frameon=False,
               title="activation / penalty")
    heading(fig, title, "Single-unit vs population likeness across the activation × "
                        "rate-penalty grid (Kao 2019)\nnormalised scores (0 = untrained, 1 = "
                        "reference); mean over seeds ± SEM; 'all references': mean of the "
                        "references' scores", note=f"source: {note}" if note else None)
    return fig


# -- 9. sparse recordings --------------------------------------------------------------------

# measure -> (panel title, y label)
_MEASURE_LABELS = {
    "unrecorded.shape_distance": ("unrecorded neurons: shape metric", "shape distance (°)"),
    "unrecorded.cka": ("unrecorded neurons: CKA", "CKA (0–1)"),
    "unrecorded.r2": ("unrecorded neurons: prediction", "cross-validated R² (≤ 1)"),
    "population.shape_distance": ("whole teacher: shape metric", "shape distance (°)"),
    "population.cka": ("whole teacher: CKA", "CKA (0–1)"),
    "population.r2": ("whole teacher: prediction", "cross-validated R² (≤ 1)"),
}
_GROUPS = {"ne": ("test_ne", "generalisation_ne."),
           "decode": ("decode_error_deg.test", "decode_error_deg.")}


def _measure_panels(measures) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """Panels in a fixed order (the similarity measures, NE on test and held-out conditions,
    decoding error) and the measures left out of the figure."""
    measures = sorted(set(measures))
    panels = [(m, [m]) for m in _MEASURE_LABELS if m in measures]
    for group, (primary, prefix) in _GROUPS.items():
        chosen = [m for m in measures if m == primary] + \
            [m for m in measures if m.startswith(prefix) and m != primary]
        if chosen:
            panels.append((group, chosen))
    used = {m for _, ms in panels for m in ms}
    return panels, [m for m in measures if m not in used]


def _line_styles(measures) -> dict[str, str]:
    """Solid for the first measure of a panel, then dashed, dotted, dash-dotted."""
    styles = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)))
    return {m: styles[k % len(styles)] for k, m in enumerate(measures)}


def _short(measure: str) -> str:
    if measure in ("test_ne", "decode_error_deg.test"):
        return "test trials"
    for prefix in ("generalisation_ne.", "decode_error_deg."):
        if measure.startswith(prefix):
            return "held out: " + measure[len(prefix):]
    return measure


def sparse_figure(table: pd.DataFrame, *, title: bool | str | None = False):
    """Figure 9: student networks trained on their outputs plus a fraction p of a teacher
    circuit's neurons (Salatiello & Giese): similarity of the student to the teacher's
    *unrecorded* neurons and to its whole population, and task / held-out NE, against p.

    Lines: mean over seeds at p > 0; dots: single seeds; wide pale horizontal lines: the
    output-only students (p = 0). Shape distances (rad in the table) are shown in degrees.
    Measures other than the similarity, NE and decoding-error ones are listed in a note.
    ``title``: True for the paper's caption, a string for your own, False/None for none.
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import NullLocator

    _require(table, ("teacher", "record_fraction", "seed", "measure", "value"),
             "sparse-recording table")
    frame = table.copy()
    frame["record_pct"] = 100.0 * frame["record_fraction"].astype(float)
    frame["value"] = frame["value"].astype(float)
    panels, others = _measure_panels(frame["measure"])
    if not panels:
        raise HdbenchError("the sparse-recording table has none of the measures "
                           + ", ".join([*_MEASURE_LABELS, "test_ne", "generalisation_ne.*"]))
    teachers = sorted(set(frame["teacher"]))
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, squeeze=False, figsize=(3.0 * ncols + 0.4,
                                                                   2.5 * nrows + 1.1),
                             layout="constrained")
    fractions = np.sort(frame.loc[frame["record_pct"] > 0, "record_pct"].unique())
    log_x = fractions.size > 1 and fractions.max() / fractions.min() > 8
    has_zero = bool((frame["record_pct"] == 0).any())
    letters = iter("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    condition_styles: dict[str, object] = {}
    for k, (panel, measures) in enumerate(panels):
        ax = axes.flat[k]
        _panel_label(ax, next(letters))
        styles = _line_styles(measures)
        for teacher in teachers:
            color = system_color(teacher)
            for measure in measures:
                rows = frame[(frame["teacher"] == teacher) & (frame["measure"] == measure)]
                if rows.empty:
                    continue
                shown = rows["value"]
                if measure.endswith("shape_distance"):
                    shown = np.degrees(shown)
                elif panel == "ne":
                    shown = 100 * shown
                rows = rows.assign(shown=shown)
                positive = rows[rows["record_pct"] > 0]
                mean = positive.groupby("record_pct")["shown"].mean()
                ax.plot(mean.index, mean.to_numpy(), color=color, ls=styles[measure],
                        marker="o", ms=3, lw=1.2)
                ax.scatter(positive["record_pct"], positive["shown"], s=6, color=color,
                           alpha=0.45, lw=0)
                zero = rows.loc[rows["record_pct"] == 0, "shown"]
                if len(zero):
                    ax.axhline(zero.mean(), color=color, ls=styles[measure], lw=4,
                               alpha=0.25)
        if panel in _MEASURE_LABELS:
            title, ylabel = _MEASURE_LABELS[panel]
            ax.set_title(title)
            ax.set_ylabel(ylabel)
        else:
            ax.set_ylabel("normalised error (%)" if panel == "ne" else
                          "decoded heading RMS error (°)")
            ax.set_title("task NE: test and held-out trials" if panel == "ne" else
                         "decoding error: test and held out")
            if len(measures) > 1:
                condition_styles.update({_short(m): styles[m] for m in measures})
        if log_x:
            ax.set_xscale("log")
            ax.xaxis.set_minor_locator(NullLocator())
        if 0 < fractions.size <= 8:
            ax.set_xticks(fractions, [f"{f:g}" for f in fractions])
        ax.set_xlabel("recorded neurons p (% of teacher)")
    spare = list(axes.flat[len(panels):])
    for ax in spare:
        ax.set_visible(False)
    if condition_styles:
        # Line styles name the trial conditions; in a spare slot they hide no data.
        handles = [Line2D([], [], color="0.2", ls=ls, label=label)
                   for label, ls in condition_styles.items()]
        if spare:
            spare[0].set_visible(True)
            spare[0].axis("off")
            spare[0].legend(handles=handles, loc="center", frameon=False,
                            title="line style: trial condition")
        else:
            axes.flat[len(panels) - 1].legend(handles=handles, fontsize=6, frameon=False)
    handles = [Line2D([], [], color=system_color(t), marker="o", ms=3, label=f"teacher: {t}")
               for t in teachers]
    if has_zero:
        handles.append(Line2D([], [], color="0.3", lw=4, alpha=0.25,
                              label="output-only students (p = 0)"))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False)
    shown = None
    if others:
        shown = "also in the table, not shown: " + ", ".join(others[:4]) + (
            f" and {len(others) - 4} more" if len(others) > 4 else "")
    heading(fig, title, "Sparse recordings: students trained on outputs + a fraction p of the "
                        "teacher's neurons\n(lines: mean over seeds; dots: seeds)", note=shown)
    return fig
