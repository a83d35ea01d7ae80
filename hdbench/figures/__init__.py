"""Paper figures: one function per figure, each taking data and returning a matplotlib Figure.

Figure functions (seaborn style on matplotlib; restyle the returned Figure as you like):

1. :func:`task_figure`, 2. :func:`tuning_figure`, 3. :func:`cell_type_figure`,
4. :func:`connectivity_figure`, 5. :func:`silencing_figure`, 6. :func:`dynamics_figure`,
7. :func:`leaderboard_figure`, 8. :func:`kao_figure`, 9. :func:`sparse_figure`,
10. :func:`property_figure`, 11. :func:`reproduction_figure`.

Their data come from :mod:`hdbench.figures.data` (the loader layer);
:func:`render_figures` renders the whole set from a results folder (``hdbench figures``), and
:func:`save_figure` writes byte-identical PNG / SVG for identical figures.
Importing this package does not import matplotlib or torch.
"""

from hdbench.figures.data import (
    MissingData,
    SlowPointData,
    SystemData,
    cell_type_fractions,
    cueva_reproduction,
    leaderboard_table,
    model_data,
    property_table,
    reference_data,
    silencing_traces,
    slow_points,
    sparse_recordings,
    system_data,
    zoo_runs,
)
from hdbench.figures.properties import property_figure
from hdbench.figures.render import FIGURES, FigureData, render_figures, select
from hdbench.figures.reproduction import reproduction_figure
from hdbench.figures.style import figure_bytes, figure_style, save_figure, system_color
from hdbench.figures.summaries import (
    cell_type_figure,
    kao_figure,
    leaderboard_figure,
    sparse_figure,
)
from hdbench.figures.systems import (
    connectivity_figure,
    dynamics_figure,
    silencing_figure,
    task_figure,
    tuning_figure,
)

__all__ = ["FIGURES", "FigureData", "MissingData", "SlowPointData", "SystemData",
           "cell_type_figure", "cell_type_fractions", "connectivity_figure",
           "cueva_reproduction", "dynamics_figure",
           "figure_bytes", "figure_style", "kao_figure", "leaderboard_figure",
           "leaderboard_table", "model_data", "property_figure", "property_table",
           "reference_data", "render_figures", "reproduction_figure", "save_figure",
           "select", "silencing_figure", "silencing_traces", "slow_points", "sparse_figure",
           "sparse_recordings", "system_color", "system_data", "task_figure", "tuning_figure",
           "zoo_runs"]
