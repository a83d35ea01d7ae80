"""Figure 11: the validity battery, the evidence that each benchmark measures what it claims.

A: every benchmark (rows, grouped by reference) × every test of
:mod:`hdbench.scoring.validity` (columns; the tests required for the headline first), each cell
coloured pass / fail / reported only and printed with its statistic; the first column is the
benchmark's status (validated or experimental). B: small multiples of the score of each
benchmark against the degradation step of the reference itself (grounding), the mean over
instances per kind of degradation (thin lines: single instances), with the grounding
correlation of each kind.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from hdbench.errors import HdbenchError
from hdbench.figures.style import heading

#: Columns of ``benchmark_validity.csv`` that the figure needs.
RESULT_COLUMNS = ("reference", "benchmark", "family", "test", "statistic", "threshold",
                  "passed")
#: Columns of ``degradation_scores.csv``.
DEGRADED_COLUMNS = ("benchmark", "kind", "level", "instance", "normalised")
#: Cell colours (Okabe–Ito tints): passed, failed, reported only (no pass/fail).
PASS_COLOR, FAIL_COLOR, REPORTED_COLOR = "#8FD3BC", "#F0A97A", "#E4E4E4"
#: One colour per kind of degradation (Okabe–Ito colours the cell types do not use).
KIND_COLORS = {"shuffle-weights": "#E69F00", "time-constants": "#56B4E9",
               "tuning-scatter": "#CC79A7", "rate-noise": "#000000",
               "heading-remap": "#009E73"}
_FALLBACK_KINDS = ("#0072B2", "#D55E00", "#F0E442", "#999999")
_REPORTED_ORDER = ("separation", "above_floor", "task_dependence")


def _passed(value) -> bool | None:
    """``passed`` as read from a CSV (True/False, "True"/"False", empty = reported only)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "1", "1.0"):
        return True
    if text in ("false", "0", "0.0"):
        return False
    return None


def validity_columns(results: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The tests as columns: (required ones in :data:`~hdbench.scoring.validity.REQUIRED`
    order, one column per grounding kind; the reported ones)."""
    from hdbench.scoring.validity import REQUIRED

    tests = list(dict.fromkeys(results["test"].astype(str)))
    required = []
    for name in REQUIRED:
        required += sorted(t for t in tests if t == name or t.startswith(name + ":"))
    reported = [t for t in _REPORTED_ORDER if t in tests]
    reported += sorted(t for t in tests if t not in required and t not in reported)
    return required, reported


def _cell_text(statistic: float, passed: bool | None, test: str) -> str:
    if not np.isfinite(statistic):
        if np.isnan(statistic):
            return "n/m" if passed is False else "–"
        return "∞" if statistic > 0 else "−∞"
    if test == "above_floor" or test == "saturation":
        return f"{100 * statistic:.0f}%"
    return f"{statistic:.2f}"


def _kind_color(kind: str, kinds: list[str]) -> str:
    if kind in KIND_COLORS:
        return KIND_COLORS[kind]
    return _FALLBACK_KINDS[kinds.index(kind) % len(_FALLBACK_KINDS)]


def _grid_panel(ax, results: pd.DataFrame, benchmarks: list[str], status: pd.DataFrame,
                required: list[str], reported: list[str]) -> None:
    """Panel A: benchmark × test cells with the statistic; status first."""
    from matplotlib.patches import Rectangle

    columns = ["status", *required, *reported]
    by = results.set_index(["benchmark", "test"])
    for i, bench in enumerate(benchmarks):
        validated = bool(status.loc[bench, "validated"])
        ax.add_patch(Rectangle((-0.5, i - 0.5), 1, 1, facecolor=PASS_COLOR if validated
                               else FAIL_COLOR, edgecolor="white", lw=1))
        ax.text(0, i, "validated" if validated else "experimental", ha="center", va="center",
                fontsize=5.5, fontweight="bold" if validated else "normal")
        for j, test in enumerate(columns[1:], start=1):
            if (bench, test) not in by.index:
                continue
            row = by.loc[(bench, test)]
            if isinstance(row, pd.DataFrame):  # a duplicated row: the first one
                row = row.iloc[0]
            passed = _passed(row["passed"])
            statistic = float(row["statistic"]) if pd.notna(row["statistic"]) else math.nan
            color = REPORTED_COLOR if passed is None else PASS_COLOR if passed else FAIL_COLOR
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor=color,
                                   edgecolor="white", lw=1))
            ax.text(j, i, _cell_text(statistic, passed, test), ha="center", va="center",
                    fontsize=5.5)
    ax.set_xlim(-0.5, len(columns) - 0.5)
    ax.set_ylim(len(benchmarks) - 0.5, -0.5)
    labels = [c.replace("grounding:", "grounding:\n").replace("_", " ") for c in columns]
    ax.set_xticks(np.arange(len(columns)), labels, rotation=30, ha="left",
                  rotation_mode="anchor", fontsize=6.5)
    ax.xaxis.tick_top()
    ax.set_yticks(np.arange(len(benchmarks)), benchmarks, fontsize=6)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.axvline(0.5, color="black", lw=0.8)
    if reported:
        ax.axvline(len(required) + 0.5, color="black", lw=0.8)
    references = [b.split(".")[0] for b in benchmarks]
    for i in range(1, len(benchmarks)):
        if references[i] != references[i - 1]:
            ax.axhline(i - 0.5, color="black", lw=0.8)
    thresholds = results.groupby("test")["threshold"].first()
    notes = [f"{c.split(':')[0]} {_threshold_text(c, thresholds.get(c, math.nan))}"
             for c in required if not c.startswith("grounding:")]
    ax.set_xlabel("required (pass: " + "; ".join(notes) + "; grounding ρ ≤ −0.9 and a drop "
                  "≥ 0.5) | reported only (grey)", fontsize=6)


def _threshold_text(test: str, threshold: float) -> str:
    if not np.isfinite(threshold):
        return ""
    if test == "saturation":
        return f"≤ {100 * threshold:.0f}%"
    if test == "specificity":
        return f"> {threshold:g}"
    return f"≥ {threshold:g}"


def _degradation_panels(subfig, degraded: pd.DataFrame, results: pd.DataFrame,
                        benchmarks: list[str], ncols: int) -> None:
    """Panel B: per benchmark, mean normalised score over instances against the degradation
    step (each kind's levels in order, 0 = intact: the kinds' level scales differ by orders of
    magnitude), one line per kind (thin: instances), with each kind's grounding ρ. Each panel
    has its own y range: a few benchmarks score the reference itself far below 0."""
    from matplotlib.lines import Line2D

    shown = [b for b in benchmarks if (degraded["benchmark"] == b).any()]
    kinds = sorted(set(degraded["kind"].astype(str)))
    nrows = math.ceil(len(shown) / ncols)
    axes = subfig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=False)
    by = results.set_index(["benchmark", "test"])
    for ax, bench in zip(axes.flat, shown, strict=False):
        mine = degraded[degraded["benchmark"] == bench]
        lines = []
        for kind, rows in mine.groupby("kind", sort=True):
            color = _kind_color(str(kind), kinds)
            steps = {lv: i for i, lv in enumerate(sorted(rows["level"].unique()))}
            rows = rows.assign(level=rows["level"].map(steps))
            for _, inst in rows.groupby("instance"):
                inst = inst.sort_values("level")
                ax.plot(inst["level"], inst["normalised"], color=color, lw=0.5, alpha=0.35)
            mean = rows.groupby("level")["normalised"].mean()
            ax.plot(mean.index, mean.to_numpy(), color=color, lw=1.4, marker="o", ms=2.5)
            key = (bench, f"grounding:{kind}")
            if key in by.index:
                row = by.loc[key]
                row = row.iloc[0] if isinstance(row, pd.DataFrame) else row
                rho = float(row["statistic"]) if pd.notna(row["statistic"]) else math.nan
                mark = {True: "✓", False: "✗", None: ""}[_passed(row["passed"])]
                lines.append((f"ρ {rho:+.2f} {mark}" if np.isfinite(rho) else f"ρ n/a {mark}",
                              color))
        for k, (text, color) in enumerate(lines):
            ax.text(0.98, 0.97 - 0.14 * k, text, transform=ax.transAxes, ha="right", va="top",
                    fontsize=5.5, color=color)
        for v in (0.0, 1.0):
            ax.axhline(v, color="0.8", lw=0.5, zorder=0)
        ax.set_title(bench, fontsize=6)
    for ax in axes.flat[len(shown):]:
        ax.set_visible(False)
    for ax in axes[-1, :]:
        ax.set_xlabel("degradation step", fontsize=7)
    for ax in axes[:, 0]:
        ax.set_ylabel("normalised score", fontsize=7)
    handles = [Line2D([], [], color=_kind_color(k, kinds), lw=1.4, marker="o", ms=2.5,
                      label=k) for k in kinds]
    subfig.legend(handles=handles, loc="outside lower center", ncol=len(handles),
                  frameon=False, title="degradation of the reference (thick: mean over "
                                       "instances; thin: instances; ρ: grounding, ✓ passed)")


def validity_figure(results: pd.DataFrame, degraded: pd.DataFrame | None = None, *,
                    ncols: int = 6, title: bool | str | None = False):
    """Figure 11 from ``benchmark_validity.csv`` and, optionally, ``degradation_scores.csv``
    of ``hdbench validate`` (:mod:`hdbench.scoring.battery`).

    Parameters
    ----------
    results : one row per (benchmark, test): columns :data:`RESULT_COLUMNS`
    degraded : one row per (benchmark, kind, level, instance): :data:`DEGRADED_COLUMNS`
        (None or empty: panel A only)
    ncols : small multiples per row of panel B
    title : True for the paper's caption, a string for your own, False/None for none
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from hdbench.scoring.validity import status as validity_status

    if not isinstance(results, pd.DataFrame):
        raise HdbenchError("the validity table must be a pandas DataFrame")
    missing = [c for c in RESULT_COLUMNS if c not in results.columns]
    if missing:
        raise HdbenchError(f"the validity table lacks columns {', '.join(missing)}")
    if results.empty:
        raise HdbenchError("the validity table is empty")
    if degraded is not None and not degraded.empty:
        missing = [c for c in DEGRADED_COLUMNS if c not in degraded.columns]
        if missing:
            raise HdbenchError(f"the degradation table lacks columns {', '.join(missing)}")
    if isinstance(ncols, bool) or not isinstance(ncols, int) or ncols < 1:
        raise HdbenchError(f"ncols must be a positive integer; got {ncols!r}")
    results = results.copy()
    results["test"] = results["test"].astype(str)
    results["statistic"] = pd.to_numeric(results["statistic"], errors="coerce")
    results["threshold"] = pd.to_numeric(results["threshold"], errors="coerce")
    results["passed"] = [_passed(v) for v in results["passed"]]
    order = results.drop_duplicates("benchmark").sort_values(["reference", "family",
                                                              "benchmark"])
    benchmarks = order["benchmark"].tolist()
    status = validity_status(results).set_index("benchmark")
    required, reported = validity_columns(results)
    with_degraded = degraded is not None and not degraded.empty and \
        degraded["benchmark"].isin(benchmarks).any()
    n_small = int(degraded["benchmark"].isin(benchmarks).groupby(degraded["benchmark"])
                  .any().sum()) if with_degraded else 0
    grid_height = 0.2 * len(benchmarks) + 2.2
    small_height = 1.5 * math.ceil(n_small / ncols) + 0.9 if with_degraded else 0.0
    width = max(0.62 * (1 + len(required) + len(reported)) + 3.2, 1.9 * ncols + 0.6)
    fig = plt.figure(figsize=(width, grid_height + small_height), layout="constrained")
    if with_degraded:
        top, bottom = fig.subfigures(2, 1, height_ratios=(grid_height, small_height))
    else:
        top, bottom = fig.subfigures(1, 1), None
    ax = top.subplots()
    _grid_panel(ax, results, benchmarks, status, required, reported)
    n_valid = int(status["validated"].sum())
    top.suptitle(f"A  tests per benchmark: {n_valid} of {len(status)} benchmarks validated "
                 "(every required test passed); cells print the statistic", fontsize=8,
                 x=0.01, ha="left", fontweight="bold")
    top.legend(handles=[Patch(facecolor=PASS_COLOR, label="passed"),
                        Patch(facecolor=FAIL_COLOR, label="failed (or not measured: n/m)"),
                        Patch(facecolor=REPORTED_COLOR, label="reported only"),
                        Patch(facecolor="white", edgecolor="0.7", label="not applicable")],
               loc="outside lower center", ncol=4, frameon=False, fontsize=6.5)
    if bottom is not None:
        degraded = degraded.copy()
        degraded["level"] = pd.to_numeric(degraded["level"], errors="coerce")
        degraded["normalised"] = pd.to_numeric(degraded["normalised"], errors="coerce")
        _degradation_panels(bottom, degraded, results, benchmarks, ncols)
        bottom.suptitle("B  score against degradation of the reference itself (grounding)",
                        fontsize=8, x=0.01, ha="left", fontweight="bold")
    heading(fig, title, "Benchmark validity: the tests each benchmark passes, and its score "
                        "as the reference is degraded")
    return fig
