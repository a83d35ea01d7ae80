"""Figure 10: every property benchmark's measured values beside the published value ± spread.

One panel per published measurement (:mod:`hdbench.scoring.property_benchmarks`), in the paper's
unit: the published mean as a line with a band of ± one spread, and one dot per system
(reference instances, model seeds, untrained seeds), grouped along x. A per-unit distribution
(the P-EN AV bandwidth) shows each system's median with its interquartile range. A system in
which the property could not be measured (no stable compass units, no shifters) is marked
"n/a" at the bottom of its column.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from hdbench.errors import HdbenchError
from hdbench.figures.style import heading, system_color

COLUMNS = ("system", "group", "seed", "reference", "benchmark", "unit", "value", "q25", "q75",
           "published", "spread")
_AXIS_LABELS = {"°": "degrees", "ms": "ms", "°/s": "°/s", "": "fraction"}
_GROUP_KEYS = {"rodent reference": "rodent", "fly reference": "fly",
               "ctrnn untrained": "ctrnn-untrained"}


def _color(group: str) -> str:
    return system_color(_GROUP_KEYS.get(group, group))


def property_figure(table: pd.DataFrame, *, note: str | None = None,
                    title: bool | str | None = False):
    """Figure 10 from the tidy table of ``hdbench properties`` (``properties.csv``).

    ``note``: a line under the heading (e.g. the source table). ``title``: True for the
    paper's caption, a string for your own, False/None for none.
    """
    import matplotlib.pyplot as plt

    if not isinstance(table, pd.DataFrame):
        raise HdbenchError("the property table must be a pandas DataFrame")
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise HdbenchError(f"the property table lacks columns {', '.join(missing)}")
    if table.empty:
        raise HdbenchError("the property table is empty")
    benches = list(dict.fromkeys(table["benchmark"]))
    groups = list(dict.fromkeys(table["group"]))
    n_cols = min(5, len(benches))
    n_rows = math.ceil(len(benches) / n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, squeeze=False, layout="constrained",
                             figsize=(2.3 * n_cols + 0.4, 2.5 * n_rows + 0.9))
    for ax in axes.flat[len(benches):]:
        ax.set_visible(False)
    for ax, bench in zip(axes.flat, benches, strict=False):
        rows = table[table["benchmark"] == bench]
        mu, sd, unit = (rows.iloc[0][k] for k in ("published", "spread", "unit"))
        ax.axhspan(mu - sd, mu + sd, color="0.88", lw=0, zorder=0)
        ax.axhline(mu, color="0.35", lw=1.0, zorder=1)
        finite = rows[["value", "q25", "q75"]].to_numpy(dtype=np.float64).ravel()
        finite = finite[np.isfinite(finite)]
        span = np.r_[finite, mu - 1.2 * sd, mu + 1.2 * sd]
        lo, hi = span.min(), span.max()
        for x, group in enumerate(groups):
            sub = rows[rows["group"] == group]
            n = len(sub)
            offsets = (np.arange(n) - (n - 1) / 2) * min(0.18, 0.6 / max(n, 1))
            for dx, (_, row) in zip(offsets, sub.iterrows(), strict=True):
                if not np.isfinite(row["value"]):
                    ax.text(x + dx, 0.02, "n/a", transform=ax.get_xaxis_transform(),
                            ha="center", va="bottom", fontsize=5, color=_color(group),
                            rotation=90)
                    continue
                if np.isfinite(row["q25"]) and np.isfinite(row["q75"]):
                    ax.plot([x + dx] * 2, [row["q25"], row["q75"]], color=_color(group),
                            lw=0.8, zorder=2)
                ax.scatter([x + dx], [row["value"]], s=14, color=_color(group),
                           edgecolor="black", lw=0.3, zorder=3)
        pad = 0.08 * (hi - lo) if hi > lo else 1.0
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_xlim(-0.6, len(groups) - 0.4)
        ax.set_xticks(np.arange(len(groups)), groups, rotation=40, ha="right")
        reference, _, name = bench.split(".", 2)
        ax.set_title(f"{reference}: {name.split('.')[-1]}")
        ax.set_ylabel(_AXIS_LABELS.get(unit if isinstance(unit, str) else "", unit))
    heading(fig, title, "Published properties: measured values (dots; median and IQR over "
                        "units for a distribution) vs published value (line) ± spread (band)",
            note=f"source: {note}" if note else None)
    return fig
