"""Analysis of systems: tuning and cell types, connectivity motifs, dynamics.

- :mod:`hdbench.analysis.tuning` — HD / AV tuning, per-unit statistics, cell-type classification;
- :mod:`hdbench.analysis.continuum` — is AV modulation clustered? unimodality test, mixture BIC,
  the κ sensitivity table;
- :mod:`hdbench.analysis.integration` — the decoded-vs-true heading gain, and the refusal to
  compare cell types of networks that do not integrate;
- :mod:`hdbench.analysis.connectivity` — weight profiles and first-harmonic fits against
  preferred-direction difference, with bootstrap intervals and shuffled-PD p-values;
- :mod:`hdbench.analysis.dynamics` — silencing with matched random controls, slow points, drift,
  robustness, generalisation;
- :mod:`hdbench.analysis.stats` — intervals, Silverman's test, mixture model selection;
- :mod:`hdbench.analysis.summary` — the whole analysis of one system (``hdbench analyze``).

Importing this package does not import torch (functions that need it import it).
"""

from hdbench.analysis.connectivity import (
    ConnectivitySummary,
    connectivity_summary,
    excludes_zero,
    fit_pathway,
    pathway_fits,
    profile_summary,
    ring_score,
    sort_by_preferred,
    weight_profiles,
)
from hdbench.analysis.continuum import cell_type_continuum, distribution_summary, kappa_table
from hdbench.analysis.dynamics import (
    SlowPoints,
    VectorField,
    drift_diffusion,
    find_slow_points,
    generalization,
    noise_robustness,
    silencing_experiment,
    silencing_signature,
    slow_point_analysis,
    slow_point_summary,
    unique_points,
    vector_field,
)
from hdbench.analysis.integration import INTEGRATION_RANGE, integration_gain, integration_refusal
from hdbench.analysis.summary import (
    Analysis,
    analyze,
    compare_cell_types_across,
    format_comparison,
    format_summary,
)
from hdbench.analysis.tuning import (
    CLASSES,
    DEFAULT_THRESHOLDS,
    assign_cell_types,
    av_tuning_curves,
    class_counts,
    classify_units,
    compare_cell_types,
    gmm_agreement,
    gmm_cell_types,
    hd_av_map,
    threshold_sensitivity,
    tuning_curves,
    unit_tuning_table,
)

__all__ = ["CLASSES", "DEFAULT_THRESHOLDS", "INTEGRATION_RANGE", "ConnectivitySummary",
           "assign_cell_types", "av_tuning_curves", "cell_type_continuum", "class_counts",
           "classify_units", "compare_cell_types", "connectivity_summary",
           "distribution_summary", "excludes_zero", "fit_pathway", "gmm_agreement",
           "gmm_cell_types", "hd_av_map", "integration_gain", "integration_refusal",
           "kappa_table", "pathway_fits", "profile_summary", "ring_score", "sort_by_preferred",
           "threshold_sensitivity", "tuning_curves", "unit_tuning_table", "weight_profiles",
           "SlowPoints", "VectorField", "drift_diffusion", "find_slow_points", "generalization",
           "noise_robustness", "silencing_experiment", "silencing_signature",
           "slow_point_analysis", "slow_point_summary", "unique_points", "vector_field",
           "Analysis", "analyze", "compare_cell_types_across", "format_comparison",
           "format_summary"]
