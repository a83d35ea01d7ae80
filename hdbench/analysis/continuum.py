"""Cell types as a continuum: is the AV modulation of HD-tuned units clustered at all?

The threshold rule of :mod:`hdbench.analysis.tuning` always finds compass and shifter classes;
whether they are *types* depends on the distribution it cuts. For the HD-tuned units this module
reports, for the AV asymmetry A and for the speed-normalised AV slope
(:func:`~hdbench.analysis.tuning.normalised_av_slope`):

- Silverman's (1981) bandwidth test of unimodality (:func:`~hdbench.analysis.stats.silverman_test`;
  small p: several modes);
- the bimodality coefficient (> 5/9 suggests bimodality);
- Gaussian-mixture model selection by BIC over 1–3 components;

and the class counts the rule gives over a range of κ (:func:`kappa_table`): when A has no
gaps, the counts move with κ and only the thresholded labels, not the counts, carry meaning.
The references, built from distinct populations, come out multimodal; a population whose A is
drawn from one distribution comes out unimodal (tests/test_analysis_continuum.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hdbench.analysis.stats import bimodality_coefficient, gmm_bic, silverman_test
from hdbench.analysis.tuning import assign_cell_types
from hdbench.errors import HdbenchError

TUNED = ("compass", "shifter_cw", "shifter_ccw")
#: κ values of the sensitivity table (the default κ is 0.03; Cueva et al.'s analysis used more).
KAPPAS = (0.01, 0.02, 0.03, 0.05, 0.1, 0.2)
#: Unimodality is rejected below this p-value.
ALPHA = 0.05
MEASURES = {"av_asymmetry": "AV asymmetry A", "av_slope_norm": "AV slope per AV SD"}


def tuned_units(table: pd.DataFrame) -> pd.DataFrame:
    """Rows of the HD-tuned units (active, resultant length >= min_r: compass or shifter)."""
    if "cell_type" not in table:
        raise HdbenchError("the tuning table has no cell_type column; classify it first")
    return table[table["cell_type"].isin(TUNED)]


def distribution_summary(values, *, n_boot: int = 500, seed: int = 0) -> dict:
    """Unimodality test, bimodality coefficient and mixture BIC of one sample.

    Returns a dict with ``n``, ``median``, ``q05``, ``q95``, ``silverman_p``, ``h_crit``,
    ``bimodality``, ``bic`` (1–3 components), ``gmm_best`` (component count with the lowest
    BIC), ``delta_bic_1`` and ``multimodal`` (unimodality rejected at :data:`ALPHA` and more
    than one mixture component preferred). With fewer than 8 values the tests are NaN.
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    nan = float("nan")
    out = {"n": int(x.size), "median": nan, "q05": nan, "q95": nan, "silverman_p": nan,
           "h_crit": nan, "bimodality": nan, "bic": [nan, nan, nan], "gmm_best": None,
           "delta_bic_1": nan, "multimodal": None}
    if x.size:
        out["median"] = float(np.median(x))
        out["q05"], out["q95"] = (float(v) for v in np.quantile(x, [0.05, 0.95]))
    if x.size < 8:
        return out
    test = silverman_test(x, n_boot=n_boot, seed=seed)
    gmm = gmm_bic(x, 3, seed=seed)
    out.update(silverman_p=test["p_value"], h_crit=test["h_crit"],
               bimodality=bimodality_coefficient(x), bic=gmm["bic"], gmm_best=gmm["best"],
               delta_bic_1=gmm["delta_bic_1"],
               multimodal=bool(test["p_value"] < ALPHA and gmm["best"] > 1))
    return out


def kappa_table(table: pd.DataFrame, kappas=KAPPAS) -> pd.DataFrame:
    """Units per class of the threshold rule at each κ (other thresholds as in the table)."""
    base = dict(table.attrs.get("thresholds", {}))
    rows = []
    for kappa in kappas:
        labels = assign_cell_types(table, **{**base, "kappa": float(kappa)})
        counts = labels.value_counts()
        rows.append({"kappa": float(kappa),
                     **{t: int(counts.get(t, 0)) for t in TUNED}})
    return pd.DataFrame(rows)


def cell_type_continuum(table: pd.DataFrame, *, kappas=KAPPAS, n_boot: int = 500,
                        seed: int = 0) -> dict:
    """The distribution of AV modulation across HD-tuned units, and the κ table.

    Parameters
    ----------
    table : DataFrame
        From :func:`~hdbench.analysis.classify_units`.
    kappas : sequence of float
        κ values of :func:`kappa_table`.
    n_boot, seed
        Smoothed-bootstrap samples and seed of the unimodality test.

    Returns
    -------
    dict with one :func:`distribution_summary` per measure of :data:`MEASURES` present in the
    table, ``kappa_table`` (list of rows) and ``av_sd`` (rad/s, the trials' AV SD used to
    normalise the slope).
    """
    tuned = tuned_units(table)
    out = {}
    for k, column in enumerate(MEASURES):
        if column in tuned:
            out[column] = distribution_summary(tuned[column].to_numpy(), n_boot=n_boot,
                                               seed=seed + k)
    out["kappa_table"] = kappa_table(table, kappas).to_dict("records")
    out["av_sd"] = table.attrs.get("av_sd")
    return out


__all__ = ["ALPHA", "KAPPAS", "MEASURES", "cell_type_continuum", "distribution_summary",
           "kappa_table", "tuned_units"]
