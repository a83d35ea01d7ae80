"""Figure 11: which training recipe reproduces which Cueva et al. (2020) claim.

From the tidy table of ``hdbench experiment cueva-reproduction`` (each cell's final run):

A. Silverman's p of the AV asymmetry A per recipe of the factorial (small p: several modes,
   i.e. discrete compass / shifter classes; the line is p = 0.05);
B. the class counts at the default κ and the inactive units per recipe;
C. the updates each recipe needed to reach validation NE < 1 % (crosses at the top: not
   reached by the cap);
D. the compass fraction against the AV statistics' speed (speed presets);
E. the speed-normalised AV slope (median |slope per AV SD| of the HD-tuned units) against speed.

Seeds are dots (filled: the network integrates, gain 0.8–1.2; open: it does not); bars and lines
are means over the integrating seeds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hdbench.errors import HdbenchError
from hdbench.figures.style import CELL_TYPE_COLORS, CELL_TYPE_LABELS, heading, system_color

COLUMNS = ("stage", "task", "recipe", "seed", "final", "measure", "value")
SPEED_ORDER = ("cueva-0.1x", "cueva-1x", "cueva-3x")
COUNTED = ("compass", "shifter_cw", "shifter_ccw", "inactive")
_SPEED_COLORS = {"cueva-0.1x": system_color("ctrnn-cueva-0p1x"), "cueva-1x": system_color("ctrnn"),
                 "cueva-3x": system_color("ctrnn-cueva-3x")}


def final_cells(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (stage, task, recipe, seed): the final run's measures as columns."""
    if not isinstance(table, pd.DataFrame):
        raise HdbenchError("the cueva-reproduction table must be a pandas DataFrame")
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise HdbenchError(f"the cueva-reproduction table lacks columns {', '.join(missing)}")
    final = table[table["final"].astype(str).str.lower().isin(("true", "1", "1.0"))]
    if final.empty:
        raise HdbenchError("the cueva-reproduction table has no final runs")
    wide = final.pivot_table(index=["stage", "task", "recipe", "seed"], columns="measure",
                             values="value", aggfunc="first").reset_index()
    wide.columns.name = None
    return wide


def _get(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame:
        return np.full(len(frame), np.nan)
    return frame[column].to_numpy(dtype=np.float64)


def _integrates(frame: pd.DataFrame) -> np.ndarray:
    return _get(frame, "integration.integrates") > 0.5


def _dots(ax, x: float, values, filled, color, width: float = 0.25) -> None:
    values = np.asarray(values, dtype=np.float64)
    offsets = np.linspace(-width / 2, width / 2, len(values)) if len(values) > 1 else [0.0]
    for dx, v, f in zip(offsets, values, filled, strict=True):
        if np.isfinite(v):
            ax.scatter([x + dx], [v], s=16, zorder=3, linewidths=0.8, edgecolors=color,
                       facecolors=color if f else "white")


def _recipe_panels(axes, factorial: pd.DataFrame) -> None:
    recipes = list(dict.fromkeys(factorial["recipe"]))
    x = np.arange(len(recipes))
    longest = np.r_[_get(factorial, "updates_done"), _get(factorial, "updates_needed"), 1.0]
    cap = float(np.nanmax(longest))
    ax_p, ax_counts, ax_updates = axes
    for k, recipe in enumerate(recipes):
        rows = factorial[factorial["recipe"] == recipe].sort_values("seed")
        ok = _integrates(rows)
        p = _get(rows, "A.silverman_p")
        if ok.any() and np.isfinite(p[ok]).any():
            ax_p.bar(k, np.nanmean(p[ok]), width=0.6, color="0.85", zorder=1)
        _dots(ax_p, k, p, ok, "0.15")
        for j, cell_type in enumerate(COUNTED):
            counts = _get(rows, f"count.{cell_type}")
            xj = k + (j - 1.5) * 0.2
            if ok.any():
                ax_counts.plot([xj - 0.08, xj + 0.08], [np.nanmean(counts[ok])] * 2,
                               color=CELL_TYPE_COLORS[cell_type], lw=1.5, zorder=2)
            _dots(ax_counts, xj, counts, ok,
                  "0.5" if cell_type == "inactive" else CELL_TYPE_COLORS[cell_type], width=0.1)
        needed = _get(rows, "updates_needed")
        shown = np.where(np.isfinite(needed), needed, np.nan)
        _dots(ax_updates, k, shown, ok, "0.15")
        # an unfinished ladder (table written with --no-train) has no verdict yet
        unfinished = _get(rows, "ladder_complete") == 0
        missed = int((~np.isfinite(needed) & ~unfinished).sum())
        for count, marker, y in ((missed, "x", 1.15), (int(unfinished.sum()), "$?$", 1.25)):
            if count:
                ax_updates.scatter([k], [cap * y], marker=marker, s=20, color="0.15", zorder=3)
                ax_updates.annotate(f"{count}", (k, cap * y), xytext=(4, -2),
                                    textcoords="offset points", fontsize=6)
    ax_p.axhline(0.05, color="0.3", ls="--", lw=0.8)
    ax_p.set_ylim(0, 1.02)
    ax_p.set_ylabel("Silverman p of A")
    ax_p.set_title("unimodality of the AV asymmetry")
    ax_counts.set_ylabel("units (κ = 0.03)")
    ax_counts.set_title("class counts")
    handles = [ax_counts.scatter([], [], s=16, color="0.5" if c == "inactive"
                                 else CELL_TYPE_COLORS[c], label=CELL_TYPE_LABELS[c])
               for c in COUNTED]
    ax_counts.figure.legend(handles=handles, loc="outside lower center", ncol=len(handles),
                            frameon=False, title="panel B, left to right in each recipe")
    ax_updates.set_ylabel("updates to validation NE < 1 %")
    ax_updates.set_title("updates needed\n(x: missed, ?: unfinished)")
    ax_updates.set_ylim(0, cap * 1.35)
    for ax in axes:
        ax.set_xticks(x, recipes, rotation=40, ha="right")
        ax.set_xlim(-0.6, len(recipes) - 0.4)


def _speed_panels(axes, speed: pd.DataFrame) -> None:
    tasks = [t for t in SPEED_ORDER if t in set(speed["task"])] + \
        sorted(set(speed["task"]) - set(SPEED_ORDER))
    for ax, column, label in zip(axes, ("fraction.compass", "slope_norm.median_abs"),
                                 ("compass fraction (κ = 0.03)",
                                  "median |AV slope per AV SD|"), strict=True):
        means = []
        for k, task in enumerate(tasks):
            rows = speed[speed["task"] == task].sort_values("seed")
            ok = _integrates(rows)
            values = _get(rows, column)
            _dots(ax, k, values, ok, _SPEED_COLORS.get(task, "0.2"))
            means.append(np.nanmean(values[ok]) if ok.any() and np.isfinite(values[ok]).any()
                         else np.nan)
        ax.plot(np.arange(len(tasks)), means, color="0.3", lw=1, zorder=2)
        ax.set_xticks(np.arange(len(tasks)), [t.removeprefix("cueva-") for t in tasks])
        ax.set_xlim(-0.5, len(tasks) - 0.5)
        ax.set_xlabel("AV statistics (speed preset)")
        ax.set_ylabel(label)
    axes[0].set_title("compass units vs speed")
    axes[1].set_title("speed-normalised AV tuning")


def reproduction_figure(table: pd.DataFrame, *, title: bool | str | None = False):
    """Figure 12 from the tidy table of ``hdbench experiment cueva-reproduction``.

    ``title``: True for the paper's caption, a string for your own, False/None for none."""
    import matplotlib.pyplot as plt

    cells = final_cells(table)
    factorial = cells[cells["stage"] == "factorial"]
    speed = cells[cells["stage"] == "speed"]
    if factorial.empty and speed.empty:
        raise HdbenchError("the cueva-reproduction table has no factorial or speed stage rows")
    n = 3 * (not factorial.empty) + 2 * (not speed.empty)
    fig, axes = plt.subplots(1, n, figsize=(2.6 * n + 0.6, 3.4), layout="constrained",
                             squeeze=False)
    axes = list(axes.flat)
    letters = iter("ABCDE")
    for ax in axes:
        ax.annotate(next(letters), xy=(0, 1), xycoords="axes fraction", xytext=(-26, 4),
                    textcoords="offset points", fontweight="bold", fontsize=10)
    if not factorial.empty:
        _recipe_panels(axes[:3], factorial)
        axes = axes[3:]
    caption = ("Cueva reproduction: recipes of the factorial on cueva-1x (noise location - "
               "input lr factor - schedule)")
    if not speed.empty:
        _speed_panels(axes, speed)
        caption += f" and speed presets trained with {speed['recipe'].iloc[0]}"
    heading(fig, title, caption, note="dots: seeds, filled = integrates (gain 0.8-1.2); bars "
                                      "and lines: means over integrating seeds")
    return fig
