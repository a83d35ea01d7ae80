"""Analysis of systems: tuning and cell types, connectivity motifs, dynamics.

- :mod:`hdbench.analysis.tuning` — HD / AV tuning, per-unit statistics, cell-type classification;
- :mod:`hdbench.analysis.connectivity` — weight profiles against preferred-direction difference;
- :mod:`hdbench.analysis.dynamics` — silencing, slow points, drift, robustness, generalisation;
- :mod:`hdbench.analysis.summary` — the whole analysis of one system (``hdbench analyze``).

Importing this package does not import torch (functions that need it import it).
"""

from hdbench.analysis.connectivity import (
    ConnectivitySummary,
    connectivity_summary,
    profile_summary,
    ring_score,
    sort_by_preferred,
    weight_profiles,
)
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
from hdbench.analysis.summary import Analysis, analyze, format_summary
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

__all__ = ["CLASSES", "DEFAULT_THRESHOLDS", "ConnectivitySummary", "assign_cell_types",
           "av_tuning_curves", "class_counts", "classify_units", "compare_cell_types",
           "connectivity_summary", "gmm_agreement", "gmm_cell_types", "hd_av_map",
           "profile_summary", "ring_score", "sort_by_preferred", "threshold_sensitivity",
           "tuning_curves", "unit_tuning_table", "weight_profiles", "SlowPoints", "VectorField",
           "drift_diffusion", "find_slow_points", "generalization", "noise_robustness",
           "silencing_experiment", "silencing_signature", "slow_point_analysis",
           "slow_point_summary", "unique_points", "vector_field", "Analysis", "analyze",
           "format_summary"]
