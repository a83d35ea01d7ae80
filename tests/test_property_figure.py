"""Figure 10 (measured vs published properties) and the `hdbench properties` command."""

import math

import pandas as pd
import pytest

from hdbench.cli import main
from hdbench.errors import HdbenchError
from hdbench.figures import property_figure, render_figures
from hdbench.scoring.property_benchmarks import TABLE_COLUMNS


def _table():
    rows = []
    for group, values in (("rodent reference", [70.0, 72.0]), ("ctrnn", [150.0, math.nan])):
        for seed, value in enumerate(values):
            rows.append({"system": f"{group} {seed}", "group": group, "seed": seed,
                         "reference": "rodent", "benchmark": "rodent.properties.packet-width",
                         "unit": "°", "value": value, "q25": math.nan, "q75": math.nan,
                         "published": 60.0, "spread": 15.0})
            rows.append({"system": f"{group} {seed}", "group": group, "seed": seed,
                         "reference": "fly", "benchmark": "fly.properties.pen-av-bandwidth",
                         "unit": "°/s", "value": 300.0, "q25": 200.0, "q75": 900.0,
                         "published": 145.0, "spread": 82.0})
    return pd.DataFrame(rows)


def test_one_panel_per_property_with_the_published_band():
    import matplotlib.pyplot as plt

    fig = property_figure(_table())
    try:
        visible = [ax for ax in fig.axes if ax.get_visible()]
        assert len(visible) == 2
        band = visible[1].patches[0].get_extents()  # the ± spread band of the bandwidth panel
        assert band.height > 0
        assert visible[1].get_ylim()[1] >= 900.0  # the IQR is inside the axes
        texts = [t.get_text() for t in visible[0].texts]
        assert texts == ["n/a"]  # the ctrnn seed without a packet
    finally:
        plt.close(fig)


def test_bad_tables_are_named():
    with pytest.raises(HdbenchError, match="lacks columns"):
        property_figure(_table().drop(columns=["published"]))
    with pytest.raises(HdbenchError, match="empty"):
        property_figure(_table().iloc[:0])


def test_the_figure_is_skipped_until_the_table_exists(tmp_path):
    (tmp_path / "results").mkdir()
    report = render_figures(tmp_path / "results", tmp_path / "figs", only="properties",
                            log=lambda line: None)
    assert "properties" in report.skipped
    assert "hdbench properties" in report.skipped["properties"]


def test_properties_command_writes_the_table_and_the_figure_renders_it(tmp_path, capsys):
    out = tmp_path / "results" / "properties"
    code = main(["properties", "--models", "--instances", "0", "--untrained-seeds", "0",
                 "--trials", "8", "--out", str(out), "--results", str(tmp_path / "results"),
                 "--quiet"])
    assert code == 0
    table = pd.read_csv(out / "properties.csv")
    assert list(table.columns) == list(TABLE_COLUMNS)
    assert set(table["group"]) == {"rodent reference", "fly reference", "ctrnn untrained"}
    assert len(table) == 3 * table["benchmark"].nunique()
    assert "| benchmark | published |" in (out / "properties.md").read_text()
    assert "rodent.properties.packet-width" in capsys.readouterr().out
    report = render_figures(tmp_path / "results", tmp_path / "figs", only="properties",
                            log=lambda line: None)
    assert "properties" in report.written


def test_properties_command_names_a_model_without_runs(tmp_path, capsys):
    code = main(["properties", "--models", "nope", "--results", str(tmp_path), "--out",
                 str(tmp_path / "out")])
    assert code == 2
    assert "no finished run of model 'nope'" in capsys.readouterr().err
