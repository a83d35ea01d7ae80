"""Figures of simulated systems, a trained model and the references side by side.

1. :func:`task_figure` — example trials: AV input, true and decoded heading, decoding error;
2. :func:`tuning_figure` — HD tuning curves of example units and their joint HD × AV maps;
4. :func:`connectivity_figure` — weights sorted by cell type and PD, weight profiles;
5. :func:`silencing_figure` — decoded heading with cell groups silenced, and the effects
   against matched random controls;
6. :func:`dynamics_figure` — trajectories in the top two PCs with the slow points.

Each takes :class:`~hdbench.figures.data.SystemData` (or the tables built from it) and returns
a matplotlib Figure. Angles are shown in degrees, AV in °/s, time in s.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from hdbench.errors import HdbenchError
from hdbench.figures.style import (
    CELL_TYPE_COLORS,
    CELL_TYPE_LABELS,
    HEADING_CMAP,
    WEIGHT_CMAP,
    heading,
    system_color,
)

TUNED = ("compass", "shifter_cw", "shifter_ccw")
_CONDITION_LABELS = {"none": "no silencing", "compass": "compass silenced",
                     "shifter_cw": "CW shifters silenced", "shifter_ccw": "CCW shifters silenced",
                     "shifters": "all shifters silenced"}


def _check_systems(systems) -> list:
    systems = list(systems)
    if not systems:
        raise HdbenchError("need at least one system to plot")
    return systems


def _panel_label(ax, letter: str) -> None:
    """A bold panel letter above the top-left corner, left of any centred title."""
    ax.annotate(letter, xy=(0, 1), xycoords="axes fraction", xytext=(-26, 4),
                textcoords="offset points", fontweight="bold", fontsize=10, ha="left",
                va="bottom")


def _letters():
    return iter("ABCDEFGHIJKLMNOPQRSTUVWXYZ")


# -- 1. task ---------------------------------------------------------------------------------


def task_figure(systems: Sequence, *, trial: int | None = None,
                title: bool | str | None = False):
    """Figure 1: an example trial per system: AV input, true vs decoded heading, error.

    Parameters
    ----------
    systems : sequence of SystemData
    trial : int, optional
        Trial index shown (default: the first trial without a forced zero-AV stretch).
    title : True for the paper's caption, a string for your own, False/None for none
    """
    import matplotlib.pyplot as plt

    systems = _check_systems(systems)
    fig, axes = plt.subplots(3, len(systems), figsize=(2.7 * len(systems) + 0.6, 5.4),
                             sharex="col", squeeze=False, height_ratios=(1, 1.4, 0.8),
                             layout="constrained")
    letters = _letters()
    for col, data in enumerate(systems):
        spec = data.spec
        i = len(data.trials) // 2 if trial is None else int(trial)
        if not 0 <= i < len(data.trials):
            raise HdbenchError(f"trial {i} out of range for {len(data.trials)} trials")
        t = np.arange(spec.n_steps) * spec.dt
        cue = spec.cue_steps * spec.dt
        color = system_color(data.key)
        av = np.degrees(data.trials.av[i]) / spec.dt
        true = np.degrees(np.unwrap(data.trials.heading[i]))
        error = np.degrees(np.angle(np.exp(1j * (data.activity.decoded_heading()[i]
                                                 - data.trials.heading[i]))))
        decoded = true + error
        ax_av, ax_hd, ax_err = axes[:, col]
        ax_av.plot(t, av, color="0.2", lw=0.8)
        ax_av.axhline(0, color="0.6", lw=0.5)
        ax_av.set_title(f"{data.name}\n(task {spec.name})")
        ax_hd.plot(t, true, color="black", lw=1.8, label="true")
        ax_hd.plot(t, decoded, color=color, lw=1.0, ls="--", label="decoded from output")
        ax_err.plot(t, error, color=color, lw=0.8)
        ax_err.axhline(0, color="0.6", lw=0.5)
        rms = np.sqrt(np.mean(error[spec.cue_steps:] ** 2))
        ax_err.set_title(f"RMS error after the cue {rms:.1f}°", fontsize=7, loc="right")
        for ax in (ax_av, ax_hd, ax_err):
            ax.axvspan(0, cue, color="0.85", lw=0, zorder=0)
            _panel_label(ax, next(letters))
        ax_err.set_xlabel("time (s)")
        ax_hd.legend(loc="best", frameon=True, framealpha=0.9, fontsize=6)
    axes[0, 0].set_ylabel("AV input (°/s)\n(> 0: CCW)")
    axes[1, 0].set_ylabel("heading, unwrapped (°)")
    axes[2, 0].set_ylabel("decoded − true (°)")
    axes[0, 0].text(cue, 1.0, " cue", transform=axes[0, 0].get_xaxis_transform(), fontsize=6,
                    va="top", color="0.4")
    heading(fig, title, "Angular-velocity integration: example trials")
    return fig


# -- 2. tuning -------------------------------------------------------------------------------


def example_units(table: pd.DataFrame, types=TUNED, spread=(90.0, 180.0, 270.0),
                  tolerance: float = 0.9) -> dict[str, int]:
    """An example unit of each cell type present: among the well-tuned, strongly active units
    (resultant length and peak rate at least ``tolerance`` and half × the type's best), the
    one whose PD lies closest to ``spread[k]`` degrees, so that the curves of different types
    do not sit on top of each other."""
    out = {}
    for cell_type, target in zip(types, spread, strict=False):
        rows = table[table["cell_type"] == cell_type]
        if len(rows):
            good = rows[(rows["r"] >= tolerance * rows["r"].max())
                        & (rows["peak_rate"] >= 0.5 * rows["peak_rate"].max())]
            good = good if len(good) else rows.loc[[rows["r"].idxmax()]]
            distance = np.abs(np.angle(np.exp(1j * (good["pd"].to_numpy()
                                                    - np.radians(target)))))
            out[cell_type] = int(good.index[np.argmin(distance)])
    return out


def _edges(centers: np.ndarray) -> np.ndarray:
    mid = (centers[1:] + centers[:-1]) / 2
    return np.concatenate([[2 * centers[0] - mid[0]], mid, [2 * centers[-1] - mid[-1]]])


def _scaled(values: np.ndarray) -> np.ndarray:
    """``values`` divided by their largest magnitude (a unit's peak |rate|), so that a unit whose
    rates go negative (tanh-like units, GRU and LSTM states) keeps its sign instead of being
    clipped at 0."""
    peak = np.nanmax(np.abs(values)) if np.isfinite(values).any() else 0.0
    return values / peak if peak > 0 else values


def tuning_figure(systems: Sequence, *, n_hd_bins: int = 36, n_av_bins: int = 10,
                  title: bool | str | None = False):
    """Figure 2: HD tuning of example compass and shifter units, and their HD × AV maps.

    One row per system: tuning curves of the most tuned unit of each type, then the joint
    HD × AV map of each of those units. Rates are shown as a fraction of each unit's peak
    |rate|; when a shown unit's rates go negative (units that are states rather than firing
    rates), the curves extend below 0, the maps switch to a diverging colour scale from −1 to 1,
    and the figure says so.

    ``title``: True for the paper's caption, a string for your own, False/None for none.
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from hdbench.analysis import hd_av_map, tuning_curves

    systems = _check_systems(systems)
    fig, axes = plt.subplots(len(systems), 4, figsize=(10.0, 2.3 * len(systems) + 0.7),
                             squeeze=False, layout="constrained")
    letters = _letters()
    rows, low = [], 0.0
    for data in systems:
        units = example_units(data.table)
        curves, centers, _ = tuning_curves(data.activity, data.trials, n_bins=n_hd_bins)
        jm = hd_av_map(data.activity, data.trials, n_hd_bins=n_hd_bins, n_av_bins=n_av_bins)
        av_deg_s = np.degrees(jm.av_centers) / data.spec.dt
        moving = np.isfinite(av_deg_s) & (av_deg_s != 0)  # drop the forced-zero-AV bin
        maps = {t: _scaled(jm.rates[u][:, moving]) for t, u in units.items()}
        shown = {t: _scaled(curves[u]) for t, u in units.items()}
        low = min([low] + [float(np.nanmin(v)) for v in (*shown.values(), *maps.values())
                           if np.isfinite(v).any()])
        rows.append((data, units, shown, centers, jm, av_deg_s[moving], maps))
    negative = low < 0
    vmin, cmap = (-1.0, "PuOr_r") if negative else (0.0, "viridis")
    label = "rate / peak |rate|" if negative else "rate (fraction of peak)"
    image = None
    for row, (data, units, curves, centers, jm, av, maps) in enumerate(rows):
        ax = axes[row, 0]
        for cell_type, unit in units.items():
            ax.plot(np.degrees(centers), curves[cell_type], color=CELL_TYPE_COLORS[cell_type],
                    lw=1.4, label=f"{CELL_TYPE_LABELS[cell_type]} (unit {unit})")
        below = min([0.0] + [float(np.nanmin(c)) for c in curves.values()
                             if np.isfinite(c).any()])
        if below < 0:
            ax.axhline(0, color="0.6", lw=0.5)
            ax.text(0.02, 0.03, "rates < 0 shown (not clipped)", transform=ax.transAxes,
                    fontsize=6, color="0.3")
        ax.set_xlim(0, 360)
        ax.set_xticks([0, 90, 180, 270, 360])
        ax.set_ylim(below - 0.05 if below < 0 else 0.0, 1.05)
        ax.set_ylabel(f"{data.name}\n{label}")
        ax.set_xlabel("heading (°)")
        _panel_label(ax, next(letters))
        if row == 0:
            ax.set_title("HD tuning of example units")
        for col, cell_type in enumerate(TUNED, start=1):
            ax = axes[row, col]
            _panel_label(ax, next(letters))
            if row == 0:
                ax.set_title(f"HD × AV map: {CELL_TYPE_LABELS[cell_type]}")
            ax.set_xlabel("heading (°)")
            ax.set_ylabel("AV (°/s)")
            if cell_type not in units:
                ax.text(0.5, 0.5, f"no {CELL_TYPE_LABELS[cell_type]} units",
                        transform=ax.transAxes, ha="center", va="center", color="0.4")
                ax.set_xlim(0, 360)
                continue
            image = ax.pcolormesh(np.degrees(_edges(jm.hd_centers)), _edges(av),
                                  maps[cell_type].T, cmap=cmap, vmin=vmin, vmax=1,
                                  shading="flat", rasterized=True)
            ax.set_xticks([0, 90, 180, 270, 360])
            ax.text(0.02, 0.97, f"unit {units[cell_type]}", transform=ax.transAxes,
                    fontsize=6, va="top", color="white" if not negative else "black")
    if image is not None:
        fig.colorbar(image, ax=axes[:, 1:], shrink=0.6, label=label)
    handles = [Line2D([], [], color=CELL_TYPE_COLORS[t], lw=1.6, label=CELL_TYPE_LABELS[t])
               for t in TUNED]
    fig.legend(handles=handles, loc="outside lower center", ncol=3, frameon=False,
               title="example unit of each type (a well-tuned one; unit index in the maps)")
    heading(fig, title, "Head-direction tuning and joint HD × AV tuning (AV > 0: CCW)",
            note="some units' rates go negative: curves and maps are scaled by the peak "
                 "|rate| and keep their sign" if negative else None)
    return fig


# -- 4. connectivity -------------------------------------------------------------------------


_SHORT_TYPES = {"compass": "compass", "shifter_cw": "CW", "shifter_ccw": "CCW"}
#: The profile columns of figure 4: (title, [(target, source), ...]); one pathway family each,
#: the same in every row.
PATHWAYS = (
    ("compass → compass", (("compass", "compass"),)),
    ("shifters → compass", (("compass", "shifter_cw"), ("compass", "shifter_ccw"))),
    ("shifters → shifters", (("shifter_cw", "shifter_cw"), ("shifter_cw", "shifter_ccw"),
                             ("shifter_ccw", "shifter_cw"), ("shifter_ccw", "shifter_ccw"))),
)
_TARGET_STYLES = {"compass": "-", "shifter_cw": "-", "shifter_ccw": "--"}


def _has_weights(profiles: pd.DataFrame, target: str, source: str) -> bool:
    """Whether any weight runs from ``source`` to ``target`` units."""
    p = profiles[(profiles["target"] == target) & (profiles["source"] == source)]
    weights = p["weight"].to_numpy(dtype=np.float64)
    return bool(np.isfinite(weights).any() and np.nanmax(np.abs(weights)) > 0)


def _profile_panel(ax, profiles: pd.DataFrame, fits, pathways) -> list:
    """Mean weight per Δ bin (dots) and the first-harmonic fit (line) of each pathway, with the
    fitted offset (dashed) and its interval (band); returns the legend handles."""
    from matplotlib.lines import Line2D

    handles = []
    grid = np.linspace(-np.pi, np.pi, 181)
    for target, source in pathways:
        p = profiles[(profiles["target"] == target) & (profiles["source"] == source)]
        color, ls = CELL_TYPE_COLORS[source], _TARGET_STYLES[target]
        label = f"{_SHORT_TYPES[source]} → {_SHORT_TYPES[target]}"
        ax.plot(np.degrees(p["delta"]), p["weight"], color=color, marker="o" if ls == "-"
                else "s", ms=2, lw=0, mfc=color if ls == "-" else "white")
        fit = fits.loc[(target, source)] if fits is not None and (target, source) in \
            fits.index else None
        if fit is not None and np.isfinite(fit["offset"]):
            lo, hi = np.degrees([fit["offset_lo"], fit["offset_hi"]])
            label += (f": {np.degrees(fit['offset']):+.0f}° [{lo:+.0f}, {hi:+.0f}], "
                      f"p {fit['p_shuffle']:.3f}")
            ax.plot(np.degrees(grid), fit["baseline"] + fit["amplitude"]
                    * np.cos(grid - fit["offset"]), color=color, lw=1.2, ls=ls)
            ax.axvline(np.degrees(fit["offset"]), color=color, lw=0.8, ls=":")
            for shift in (-360.0, 0.0, 360.0):  # an interval across ±180° wraps
                ax.axvspan(lo + shift, hi + shift, color=color, alpha=0.12, lw=0)
        handles.append(Line2D([], [], color=color, ls=ls, lw=1.2, marker="o" if ls == "-"
                              else "s", ms=3, mfc=color if ls == "-" else "white",
                              label=label))
    return handles


def connectivity_figure(systems: Sequence, *, n_bins: int = 24, n_boot: int = 1000,
                        title: bool | str | None = False):
    """Figure 4: weights sorted by cell type and PD, and weight profiles against
    Δ = PD_target − PD_source (Δ > 0 pushes the bump CCW), one pathway family per column:
    compass → compass, shifters → compass and shifters → shifters (:data:`PATHWAYS`).

    Dots: mean weight per Δ bin; lines: the first-harmonic fit to the single weights,
    c + A cos(Δ − offset); dotted line and band: the fitted offset and its 90 % bootstrap
    interval over source units (the legend gives both, and the shuffled-PD p). Colour = source
    type; line style = target type (solid: compass or CW, dashed: CCW). A system without weights
    in a pathway gets a note instead of an empty panel (e.g. the reference circuits have no
    compass → compass weights). The panel of the pathway whose offsets the offset-signs
    benchmark scores (:func:`~hdbench.analysis.connectivity_summary`'s ``offset_target``) is
    marked "scored shift".

    ``title``: True for the paper's caption, a string for your own, False/None for none.
    """
    import matplotlib.pyplot as plt

    from hdbench.analysis import connectivity_summary, sort_by_preferred

    systems = _check_systems(systems)
    fig, axes = plt.subplots(len(systems), 1 + len(PATHWAYS),
                             figsize=(12.0, 3.0 * len(systems) + 0.6), squeeze=False,
                             layout="constrained", width_ratios=(1.0, 1.0, 1.0, 1.0))
    letters = _letters()
    for row, data in enumerate(systems):
        ax = axes[row, 0]
        _panel_label(ax, next(letters))
        W_sorted, order = sort_by_preferred(data.weights, data.table)
        types = data.table["cell_type"].to_numpy()[order]
        if W_sorted.size:
            v = float(np.quantile(np.abs(W_sorted), 0.99)) or 1.0
            image = ax.imshow(W_sorted, cmap=WEIGHT_CMAP, vmin=-v, vmax=v, aspect="equal",
                              interpolation="nearest", rasterized=True)
            fig.colorbar(image, ax=ax, shrink=0.8, label="weight W (a.u.)")
            ticks, labels, start = [], [], 0
            for cell_type in TUNED:
                n = int((types == cell_type).sum())
                if n:
                    ticks.append(start + n / 2 - 0.5)
                    labels.append(_SHORT_TYPES[cell_type])
                    if start:
                        ax.axhline(start - 0.5, color="black", lw=0.6)
                        ax.axvline(start - 0.5, color="black", lw=0.6)
                start += n
            ax.set_xticks(ticks, labels, fontsize=6)
            ax.set_yticks(ticks, labels, fontsize=6, rotation=90, va="center")
        ax.set_xlabel("source unit (by type, then PD)")
        ax.set_ylabel(f"{data.name}\ntarget unit (by type, then PD)")
        if row == 0:
            ax.set_title("W[target, source], HD-tuned units")
        summary = connectivity_summary(data.weights, data.table, n_bins=n_bins, n_boot=n_boot,
                                       n_perm=max(n_boot - 1, 0))
        profiles = summary.profiles
        fits = summary.pairs.set_index(["target", "source"]) if not summary.pairs.empty \
            else None
        for col, (name, pathways) in enumerate(PATHWAYS, start=1):
            ax = axes[row, col]
            _panel_label(ax, next(letters))
            present = [pw for pw in pathways if _has_weights(profiles, *pw)]
            scored = name != "compass → compass" and any(
                t == summary.offset_target for t, _ in present)
            ax.set_title(name + (f"\n(scored shift: onto {_SHORT_TYPES[summary.offset_target]})"
                                 if scored else ""), fontsize=8)
            if not present:
                ax.set_axis_off()
                ax.text(0.5, 0.5, f"no {name} weights\nin {data.name}", transform=ax.transAxes,
                        ha="center", va="center", color="0.35", fontsize=7)
                continue
            handles = _profile_panel(ax, profiles, fits, present)
            ax.axhline(0, color="0.6", lw=0.5)
            ax.axvline(0, color="0.6", lw=0.5, ls=":")
            ax.set_xlim(-180, 180)
            ax.set_xticks([-180, -90, 0, 90, 180])
            ax.set_xlabel("Δ PD = PD target − PD source (°)")
            ax.set_ylabel("mean weight (a.u.)")
            ax.legend(handles=handles, fontsize=5.5, frameon=False, loc="upper center",
                      bbox_to_anchor=(0.5, -0.22), ncol=1, handlelength=2.2,
                      title="source → target: offset [90 % CI], p", title_fontsize=5.5)
    heading(fig, title, "Connectivity sorted by cell type and preferred direction "
                        "(Δ > 0 pushes the bump CCW)")
    return fig


# -- 5. silencing ----------------------------------------------------------------------------


_EFFECT_GROUPS = {"compass": "compass", "shifter_cw": "CW", "shifter_ccw": "CCW",
                  "shifters": "both shifters", "high_abs_A": "top fifth |A|",
                  "low_abs_A": "bottom fifth |A|"}
_EFFECT_MEASURES = (("drift", "drift during silencing (°/s)", np.degrees(1.0)),
                    ("gain", "integration gain during silencing", 1.0),
                    ("amplitude", "bump of the other tuned units\n(relative to before)", 1.0))


def _effect_panel(ax, effects: pd.DataFrame, measure: str, scale: float, color) -> None:
    """Per silenced group (rows): its effect with the interval over trials (dot and bar) and
    the 5–95 % range and median of the matched random controls (grey bar and tick); a filled
    dot lies outside the controls' range, an open one within."""
    groups = [g for g in _EFFECT_GROUPS if g in set(effects["group"])]
    by = effects.set_index("group")
    for y, group in enumerate(groups):
        r = by.loc[group]
        if not r["n_units"]:
            continue
        p05, p95, med = (r.get(f"ctrl_{measure}_{q}", np.nan) for q in ("p05", "p95", "median"))
        if np.isfinite(p05) and np.isfinite(p95):
            ax.plot([p05 * scale, p95 * scale], [y, y], color="0.75", lw=5,
                    solid_capstyle="butt", zorder=1)
            ax.plot([med * scale] * 2, [y - 0.25, y + 0.25], color="0.45", lw=1, zorder=2)
        value = r[measure]
        if not np.isfinite(value):
            ax.text(0.02, y, "n/a (no read-out)", transform=ax.get_yaxis_transform(),
                    va="center", fontsize=6, color="0.4")
            continue
        lo, hi = r[f"{measure}_lo"], r[f"{measure}_hi"]
        if np.isfinite(lo) and np.isfinite(hi):
            ax.plot([lo * scale, hi * scale], [y, y], color="black", lw=0.8, zorder=3)
        outside = r.get(f"{measure}_vs_control", 0)
        ax.scatter([value * scale], [y], s=22, zorder=4, edgecolor="black", lw=0.6,
                   color=color if np.isfinite(outside) and outside != 0 else "white")
    ax.set_yticks(np.arange(len(groups)), [f"{_EFFECT_GROUPS[g]} ({int(by.loc[g, 'n_units'])})"
                                           for g in groups], fontsize=6)
    ax.set_ylim(len(groups) - 0.5, -0.5)
    ax.grid(axis="x", color="0.92", lw=0.6)


def _wrapped(values: np.ndarray) -> np.ndarray:
    """Angles (°) wrapped into [−180, 180), with NaN where a line would jump across the wrap
    (columns are traces)."""
    out = (np.asarray(values, dtype=np.float64) + 180.0) % 360.0 - 180.0
    jump = np.abs(np.diff(out, axis=0)) > 180.0
    out[1:][jump] = np.nan
    return out


def _circular_mean_deg(values: np.ndarray) -> np.ndarray:
    """Circular mean (°) over the columns of ``values``, NaN where any trace is NaN."""
    z = np.exp(1j * np.radians(values)).mean(axis=1)
    return np.degrees(np.angle(z))


def silencing_figure(traces: pd.DataFrame, effects: pd.DataFrame | None = None, *,
                     title: bool | str | None = False):
    """Figure 5: decoded heading during zero-AV holds with each cell group silenced, and the
    effects against matched random controls.

    ``traces`` is :func:`~hdbench.figures.data.silencing_traces` output (several systems
    concatenated); headings are drawn wrapped to ±180° (a bump that runs away turns into a
    sawtooth; its speed is the drift panel), so that every panel shares one scale. The
    silenced window (``traces.attrs["window_s"]``) is shaded. ``effects``
    (optional) is :func:`~hdbench.figures.data.silencing_effects` output for the same systems:
    three more columns give, per group, the drift, the integration gain and the bump amplitude
    of the remaining HD-tuned units, each against as many random HD-tuned units silenced
    (grey: the controls' 5–95 % range and median; filled dot: outside it, i.e. specific).
    ``title``: True for the paper's caption, a string for your own, False/None for none.
    """
    import matplotlib.pyplot as plt

    need = {"system", "key", "condition", "trial", "time_s", "heading_deg"}
    if traces is None or traces.empty or not need <= set(traces.columns):
        raise HdbenchError(f"silencing traces need columns {sorted(need)}")
    if effects is not None and not {"system", "group", "drift", "gain", "amplitude"} <= \
            set(effects.columns):
        raise HdbenchError("silencing effects need columns system, group, drift, gain, "
                           "amplitude (hdbench.figures.data.silencing_effects)")
    window = traces.attrs.get("window_s")
    system_names = list(dict.fromkeys(traces["system"]))
    conditions = [c for c in _CONDITION_LABELS if c in set(traces["condition"])]
    n_effects = len(_EFFECT_MEASURES) if effects is not None else 0
    fig = plt.figure(figsize=(2.0 * len(conditions) + 2.3 * n_effects + 0.8,
                              1.9 * len(system_names) + 0.7), layout="constrained")
    grid = fig.add_gridspec(len(system_names), len(conditions) + n_effects,
                            width_ratios=[1.0] * len(conditions) + [1.15] * n_effects)
    letters = _letters()
    first = None
    for row, name in enumerate(system_names):
        sys_rows = traces[traces["system"] == name]
        color = system_color(sys_rows["key"].iloc[0])
        for col, condition in enumerate(conditions):
            ax = fig.add_subplot(grid[row, col], sharex=first, sharey=first)
            first = first or ax
            _panel_label(ax, next(letters))
            if window is not None:
                ax.axvspan(*window, color="0.88", lw=0, zorder=0)
            rows = sys_rows[sys_rows["condition"] == condition]
            if rows.empty:
                ax.text(0.5, 0.5, "no units of this type", transform=ax.transAxes,
                        ha="center", va="center", color="0.4", fontsize=7)
            else:
                wide = rows.pivot(index="time_s", columns="trial", values="heading_deg")
                values = wide.to_numpy(dtype=np.float64)
                ax.plot(wide.index, _wrapped(values), color=color, lw=0.6, alpha=0.5)
                ax.plot(wide.index, _wrapped(_circular_mean_deg(values)[:, None]),
                        color="black", lw=1.2)
                if wide.isna().to_numpy().any():
                    ax.text(0.98, 0.04, "gaps: no read-out", transform=ax.transAxes,
                            ha="right", fontsize=6, color="0.3")
                if condition != "none":
                    ax.text(0.02, 0.96, f"{int(rows['n_units'].iloc[0])} units silenced",
                            transform=ax.transAxes, fontsize=6, va="top", color="0.3")
            ax.axhline(0, color="0.6", lw=0.5)
            ax.set_ylim(-185, 185)
            ax.set_yticks([-180, -90, 0, 90, 180])
            if col:
                ax.tick_params(labelleft=False)
            if row == 0:
                ax.set_title(_CONDITION_LABELS[condition])
            if row == len(system_names) - 1:
                ax.set_xlabel("time (s)")
            else:
                ax.tick_params(labelbottom=False)
            if col == 0:
                ax.set_ylabel(f"{name}\ndecoded − cued\nheading, wrapped (°)")
        mine = effects[effects["system"] == name] if effects is not None else None
        for j, (measure, label, scale) in enumerate(_EFFECT_MEASURES[:n_effects]):
            ax = fig.add_subplot(grid[row, len(conditions) + j])
            _panel_label(ax, next(letters))
            if mine is None or mine.empty:
                ax.text(0.5, 0.5, "no silencing effects", transform=ax.transAxes,
                        ha="center", va="center", color="0.4", fontsize=7)
                continue
            _effect_panel(ax, mine, measure, scale, color)
            ax.set_xlabel(label, fontsize=7)
            if measure == "gain":
                ax.axvline(1.0, color="0.6", lw=0.5, ls=":")
            ax.axvline(0.0, color="0.6", lw=0.5)
            if row == 0:
                ax.set_title("vs random units (grey)" if j == 0 else "", fontsize=8)
    heading(fig, title, "Silencing cell groups during zero-AV holds (shaded: silenced; > 0 = "
                        "CCW drift; black: circular mean; headings wrapped to ±180°)"
            + ("; right: effects with 90 % intervals against as many random HD-tuned units "
               "(grey 5-95 %; filled: outside)" if n_effects else ""))
    return fig


# -- 6. population dynamics ------------------------------------------------------------------


def _pca(rates: np.ndarray, k: int = 2):
    """Mean, top-k components [k, units] and explained-variance fractions of rates [n, units]."""
    mean = rates.mean(0)
    _, s, vt = np.linalg.svd(rates - mean, full_matrices=False)
    var = s**2
    explained = var[:k] / var.sum() if var.sum() > 0 else np.zeros(k)
    # Fix each component's sign so that the figure does not flip between platforms.
    signs = np.sign(vt[:k][np.arange(k), np.argmax(np.abs(vt[:k]), axis=1)])
    return mean, vt[:k] * signs[:, None], explained


def dynamics_figure(systems: Sequence, slow: Sequence | None = None, *, n_trajectories: int = 6,
                    fit_trials: int = 50, title: bool | str | None = False):
    """Figure 6: trajectories in the top two principal components of the rates, coloured by
    true heading, with the system's slow points.

    Parameters
    ----------
    systems : sequence of SystemData
    slow : sequence of SlowPointData or None, one per system (None: no slow points)
    title : True for the paper's caption, a string for your own, False/None for none
    """
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection
    from matplotlib.colors import ListedColormap, Normalize
    from matplotlib.lines import Line2D

    systems = _check_systems(systems)
    slow = list(slow) if slow is not None else [None] * len(systems)
    if len(slow) != len(systems):
        raise HdbenchError(f"got {len(slow)} slow-point sets for {len(systems)} systems")
    fig, axes = plt.subplots(1, len(systems), figsize=(3.0 * len(systems) + 0.9, 3.4),
                             squeeze=False, layout="constrained")
    norm = Normalize(0, 360)
    # The cyclic map darkened by 20 % so that its white end stays visible on white.
    colors = plt.get_cmap(HEADING_CMAP)(np.linspace(0, 1, 256))
    colors[:, :3] *= 0.8
    cmap = ListedColormap(colors)
    letters = _letters()
    lines = None
    for col, (data, points) in enumerate(zip(systems, slow, strict=True)):
        ax = axes[0, col]
        _panel_label(ax, next(letters))
        skip = data.spec.cue_steps
        rates = np.asarray(data.activity.rates[:, skip:], dtype=np.float64)
        mean, pcs, explained = _pca(rates[:fit_trials].reshape(-1, rates.shape[-1]))
        start = len(data.trials) // 2  # trials without a forced zero-AV stretch
        for i in range(start, min(start + n_trajectories, len(data.trials))):
            xy = (rates[i] - mean) @ pcs.T
            segments = np.stack([xy[:-1], xy[1:]], axis=1)
            lines = LineCollection(segments, cmap=cmap, norm=norm, lw=1.0,
                                   array=np.degrees(data.trials.heading[i, skip:-1]))
            ax.add_collection(lines)
        ax.autoscale_view()
        if points is not None and points.rates.size:
            xy = (points.rates - mean) @ pcs.T
            s = points.slow
            if (~s).any():
                ax.scatter(xy[~s, 0], xy[~s, 1], marker="x", s=8, color="0.45", lw=0.6,
                           zorder=3)
            ax.scatter(xy[s, 0], xy[s, 1], marker="o", s=14, facecolor="white",
                       edgecolor="black", lw=0.8, zorder=4)
            ax.set_title(f"{data.name}\n{int(s.sum())} of {s.size} searches reach a slow point",
                         fontsize=8)
        elif points is not None and points.note:
            ax.set_title(f"{data.name}\nno slow points: {points.note.split(':')[0][:45]}",
                         fontsize=8)
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_xlabel(f"PC1 of rates (a.u.; {100 * explained[0]:.0f} % var.)")
        ax.set_ylabel(f"PC2 of rates (a.u.; {100 * explained[1]:.0f} % var.)")
        if points is None or (not points.rates.size and not points.note):
            ax.set_title(data.name)
    handles = [Line2D([], [], ls="", marker="o", mfc="white", mec="black", label="slow point"),
               Line2D([], [], ls="", marker="x", color="0.45",
                      label="search ended without a slow point"),
               Line2D([], [], color="0.3", label="trajectory (colour: true heading)")]
    fig.legend(handles=handles, loc="outside lower center", ncol=3, frameon=False)
    if lines is not None:
        bar = fig.colorbar(lines, ax=axes[0, :], shrink=0.8, label="true heading (°)")
        bar.set_ticks([0, 90, 180, 270, 360])
    heading(fig, title, "Population dynamics: trajectories and slow points in the top two PCs")
    return fig
