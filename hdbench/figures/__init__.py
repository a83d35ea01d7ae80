"""Paper figures: one function per figure, each taking data and returning a matplotlib Figure.

Figure functions (seaborn style on matplotlib; restyle the returned Figure as you like):

1. :func:`task_figure`, 2. :func:`tuning_figure`, 3. :func:`cell_type_figure`,
4. :func:`connectivity_figure`, 5. :func:`silencing_figure`, 6. :func:`dynamics_figure`,
7. :func:`leaderboard_figure`, 8. :func:`kao_figure`, 9. :func:`sparse_figure`,
10. :func:`property_figure`, 11. :func:`validity_figure`, 12. :func:`reproduction_figure`.

Every builder takes ``title``: False (the default) draws no heading, so that a figure of your
own carries no paper caption; True draws the caption of the paper figure (``hdbench figures``
does, and numbers it); a string draws that string.

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
    validity_status,
    validity_tables,
    zoo_runs,
)
from hdbench.figures.properties import property_figure
from hdbench.figures.render import FIGURES, FigureData, build_figure, render_figures, select
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
from hdbench.figures.validity import validity_figure

__all__ = ["FIGURES", "FigureData", "MissingData", "SlowPointData", "SystemData",
           "build_figure", "cell_type_figure", "cell_type_fractions", "connectivity_figure",
           "cueva_reproduction", "dynamics_figure",
           "figure_bytes", "figure_style", "kao_figure", "leaderboard_figure",
           "leaderboard_table", "model_data", "property_figure", "property_table",
           "reference_data", "render_figures", "reproduction_figure", "save_figure",
           "select", "silencing_figure", "silencing_traces", "slow_points", "sparse_figure",
           "sparse_recordings", "system_color", "system_data", "task_figure", "tuning_figure",
           "validity_figure", "validity_status", "validity_tables", "zoo_runs"]
