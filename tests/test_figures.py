"""Paper figures: each renders from tiny synthetic data, has its panels and labels, renders to
the same bytes twice, and the command skips figures whose data is missing."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from hdbench import figures  # noqa: E402
from hdbench.cli import main  # noqa: E402
from hdbench.errors import HdbenchError  # noqa: E402
from hdbench.figures import data as fdata  # noqa: E402
from hdbench.figures.style import figure_bytes, figure_style  # noqa: E402
from hdbench.leaderboard import COLUMNS  # noqa: E402
from tests.ring_system import SPEC, ring_ctrnn  # noqa: E402

FAMILIES = ("task", "tuning", "representation", "connectivity", "dynamics")


# -- synthetic data ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def systems():
    """Two tiny ring networks (24 units) standing in for a model and a reference."""
    model = fdata.system_data(ring_ctrnn(8), name="ring model", key="ctrnn", spec=SPEC,
                              n_trials=12)
    ref = fdata.system_data(ring_ctrnn(8, offset=np.radians(40)), name="ring reference",
                            key="rodent", kind="reference", spec=SPEC, n_trials=12)
    return [model, ref]


def leaderboard_rows(models=("ctrnn", "gru", "kao-relu-rate0", "kao-tanh-rate1e-3"),
                     seeds=(0, 1), references=("fly", "rodent")) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for model in models:
        for seed in seeds:
            for reference in references:
                for family in FAMILIES:
                    for k in range(2):
                        value = float(rng.uniform(-0.1, 1.1))
                        rows.append({"model": model, "seed": seed, "reference": reference,
                                     "benchmark": f"{reference}.{family}.b{k}", "version": 1,
                                     "raw": value, "ceiling": 1.0, "floor": 0.0,
                                     "normalised": value, "error": np.nan, "family": family,
                                     "higher_is_better": True, "note": ""})
    return pd.DataFrame(rows, columns=list(COLUMNS))


def sparse_rows(teachers=("rodent", "fly")) -> pd.DataFrame:
    rng = np.random.default_rng([len(t) for t in teachers])
    measures = ("unrecorded.shape_distance", "unrecorded.cka", "unrecorded.r2",
                "population.shape_distance", "population.cka", "test_ne",
                "generalisation_ne.speed2x", "generalisation_ne.hold", "decode_error_deg.test",
                "decode_error_deg.hold", "recorded.activity_mse", "extra.measure")
    rows = [{"teacher": t, "record_fraction": f, "seed": s, "measure": m,
             "value": float(rng.uniform(0, 1))}
            for t in teachers for f in (0.0, 0.05, 0.1, 0.25, 0.5, 1.0) for s in (0, 1, 2)
            for m in measures if not (f == 1.0 and m.startswith("unrecorded."))]
    return pd.DataFrame(rows)


def write_csv(path, frame: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# generated: test\n# note: synthetic\n" + frame.to_csv(index=False))


def write_zoo_run(folder, model: str, seed: int) -> None:
    """A zoo run directory holding the tiny ring network as a trained CTRNN on cueva-1x."""
    from hdbench.training import checkpoint

    net = ring_ctrnn(8)
    run = folder / "zoo" / f"{model}-seed{seed}"
    run.mkdir(parents=True)
    checkpoint.save({"kind": "model", "model": "ctrnn",
                     "model_options": json.dumps({"n_units": 24, "activation": "retanh",
                                                  "alpha": 0.2}),
                     "state": net.state_dict()}, run / "model.pt")
    (run / "config.json").write_text(json.dumps({"config": {"task": "cueva-1x"}}))


def texts(fig) -> str:
    """Every piece of text in a figure (titles, labels, tick labels, annotations, legends)."""
    return "\n".join(t.get_text() for t in fig.findobj(matplotlib.text.Text))


def axes_with_data(fig) -> list:
    return [ax for ax in fig.axes if ax.get_visible() and (ax.lines or ax.collections or
                                                          ax.images or ax.patches)]


def check_units(fig) -> None:
    """Every visible data axis with ticks has labelled axes."""
    for ax in axes_with_data(fig):
        if ax.get_label() == "<colorbar>":
            continue
        if ax.get_xticks().size and ax.xaxis.get_visible() and ax.get_xticklabels():
            shared_x = any(other is not ax and ax.get_shared_x_axes().joined(ax, other)
                           and other.get_xlabel() for other in fig.axes)
            assert ax.get_xlabel() or shared_x, f"x axis of {ax.get_title()!r} unlabelled"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# -- figures of systems -----------------------------------------------------------------------


def test_task_figure(systems):
    with figure_style():
        fig = figures.task_figure(systems)
    assert len(axes_with_data(fig)) == 3 * len(systems)
    labels = texts(fig)
    for needle in ("AV input (°/s)", "heading, unwrapped (°)", "decoded − true (°)", "time (s)",
                   "ring model", "ring reference", "RMS error"):
        assert needle in labels
    check_units(fig)
    with pytest.raises(HdbenchError, match="out of range"):
        figures.task_figure(systems, trial=999)
    with pytest.raises(HdbenchError, match="at least one system"):
        figures.task_figure([])


def test_tuning_figure(systems):
    with figure_style():
        fig = figures.tuning_figure(systems)
    labels = texts(fig)
    assert "heading (°)" in labels and "AV (°/s)" in labels
    assert "rate (fraction of peak)" in labels
    for name in ("compass", "CW shifter", "CCW shifter"):
        assert f"HD × AV map: {name}" in labels
    assert len([ax for ax in fig.axes if ax.collections]) >= 3 * len(systems)
    check_units(fig)


def test_tuning_figure_keeps_negative_rates(systems):
    """Units whose rates go negative (states of tanh-like units) are scaled by their peak
    |rate| and drawn below 0, not clipped, and the figure says so."""
    import dataclasses

    ring = systems[0]
    shifted = dataclasses.replace(ring.activity, rates=ring.activity.rates * 2.0 - 1.0)
    signed = dataclasses.replace(ring, name="tanh-like", activity=shifted)
    with figure_style():
        fig = figures.tuning_figure([signed])
    curves = fig.axes[0]
    low = min(np.nanmin(line.get_ydata()) for line in curves.lines if len(line.get_ydata()) > 2)
    assert low < -0.5 and curves.get_ylim()[0] <= low  # drawn, not clipped
    assert max(np.nanmax(np.abs(line.get_ydata())) for line in curves.lines) == pytest.approx(1.0)
    labels = texts(fig)
    assert "rates < 0 shown (not clipped)" in labels and "rate / peak |rate|" in labels
    assert "some units' rates go negative" in fig.get_suptitle()
    maps = [ax for ax in fig.axes if ax.collections and ax.get_label() != "<colorbar>"]
    assert maps and all(ax.collections[0].get_clim() == (-1.0, 1.0) for ax in maps)
    # non-negative rates keep the plain scale and no note
    with figure_style():
        plain = figures.tuning_figure([ring])
    assert plain.axes[0].get_ylim()[0] == 0.0 and plain.get_suptitle() == ""
    assert "rates < 0" not in texts(plain)


def test_connectivity_figure(systems):
    with figure_style():
        fig = figures.connectivity_figure(systems)
    labels = texts(fig)
    assert "Δ PD = PD target − PD source (°)" in labels
    for name in ("compass → compass", "shifters → compass", "shifters → shifters"):
        assert name in labels, name
    assert "weight W (a.u.)" in labels
    # the fitted offsets with their intervals and p-values label the shifter profiles
    assert any(t.startswith("CCW → compass: +") and ", p 0.0" in t
               for t in labels.split("\n"))
    assert sum(bool(ax.images) for ax in fig.axes) == len(systems)
    check_units(fig)


def test_connectivity_columns_show_what_their_titles_say(systems):
    """Each profile column holds one pathway family in every row; a system without weights in
    a pathway gets a note, not an empty axis with a flat line."""
    ring = systems[0]
    types, pd_ = ring.table["cell_type"].to_numpy(), ring.table["pd"].to_numpy()
    compass = np.nonzero(types == "compass")[0]
    shifters = np.nonzero(np.isin(types, ["shifter_cw", "shifter_ccw"]))[0]
    # Like the rodent double ring: no compass loop; the shifters shift each other.
    W = ring.weights.copy()
    W[np.ix_(compass, compass)] = 0.0
    sign = np.where(types[shifters] == "shifter_cw", 1.0, -1.0)
    delta = pd_[shifters][:, None] - pd_[shifters][None, :]
    W[np.ix_(shifters, shifters)] = np.cos(delta + sign[None, :] * np.radians(30.0))
    rings = fdata.SystemData(name="double ring", key="rodent", kind="reference",
                             trials=ring.trials, activity=ring.activity, table=ring.table,
                             weights=W)
    with figure_style():
        fig = figures.connectivity_figure([ring, rings], n_boot=20)
    grid = np.array([ax for ax in fig.axes if ax.get_label() != "<colorbar>"]).reshape(2, 4)
    for row in grid:
        assert row[1].get_title().startswith("compass → compass")
        assert row[2].get_title().startswith("shifters → compass")
        assert row[3].get_title().startswith("shifters → shifters")
    # the Cueva-style ring has no shifter → shifter weights, the double ring no compass loop
    assert [ax.axison for ax in grid[0, 1:]] == [True, True, False]
    assert [ax.axison for ax in grid[1, 1:]] == [False, True, True]
    labels = texts(fig)
    assert "no compass → compass weights\nin double ring" in labels
    assert "no shifters → shifters weights\nin ring model" in labels
    legend = [t.get_text() for t in grid[0, 2].get_legend().get_texts()]
    assert [t.split(":")[0] for t in legend] == ["CW → compass", "CCW → compass"]
    legend = [t.get_text() for t in grid[1, 3].get_legend().get_texts()]
    assert [t.split(":")[0] for t in legend] == ["CW → CW", "CCW → CW", "CW → CCW",
                                                 "CCW → CCW"]
    # fitted offsets: CW sources at −30°, CCW sources at +30°
    assert all(t.split(": ")[1].startswith("-30°" if t.startswith("CW") else "+30°")
               for t in legend)
    # the pathway the offset-signs benchmark scores is marked, once per row
    assert ["scored shift" in ax.get_title() for ax in grid[0, 1:]] == [False, True, False]
    assert ["scored shift" in ax.get_title() for ax in grid[1, 1:]] == [False, False, True]


def test_silencing_figure(systems):
    traces = pd.concat([fdata.silencing_traces(d, n_trials=2, n_steps=300,
                                               window=(80, 180)) for d in systems])
    traces.attrs["window_s"] = (80 * SPEC.dt, 180 * SPEC.dt)
    assert set(traces["condition"]) == set(fdata.SILENCED_GROUPS)
    with figure_style():
        fig = figures.silencing_figure(traces)
    assert len(fig.axes) == len(systems) * len(fdata.SILENCED_GROUPS)
    labels = texts(fig)
    assert "CW shifters silenced" in labels and "time (s)" in labels
    assert "heading, wrapped (°)" in labels
    # Silencing CW shifters of the ring makes the bump drift CCW (heading grows).
    model = traces[(traces.system == "ring model") & (traces.condition == "shifter_cw")]
    during = model[(model.time_s > 100 * SPEC.dt) & (model.time_s < 175 * SPEC.dt)]
    assert during.groupby("trial")["heading_deg"].apply(lambda h: h.iloc[-1] - h.iloc[0]).gt(
        0).all()
    with pytest.raises(HdbenchError, match="columns"):
        figures.silencing_figure(pd.DataFrame({"system": []}))


def test_silencing_traces_are_wrapped():
    """A bump that runs away (thousands of degrees) is drawn wrapped to ±180° without lines
    across the wrap, so one scale serves every panel."""
    from hdbench.figures.systems import _circular_mean_deg, _wrapped

    drift = np.linspace(0.0, 3000.0, 301)[:, None]
    wrapped = _wrapped(drift)
    finite = wrapped[np.isfinite(wrapped)]
    assert finite.min() >= -180 and finite.max() < 180
    assert np.nanmax(np.abs(np.diff(wrapped, axis=0))) <= 10.0 + 1e-9  # no jump drawn
    assert np.isnan(wrapped).sum() == 8  # one gap per wrap (3000° / 360°)
    trials = np.array([[170.0, -170.0], [10.0, 350.0]])
    assert np.allclose(np.abs(_circular_mean_deg(trials)), [180.0, 0.0], atol=1e-9)
    traces = pd.DataFrame({"system": "runaway", "key": "rodent", "condition": "none",
                           "n_units": 0, "trial": 0, "time_s": np.arange(301) * 0.025,
                           "heading_deg": drift[:, 0]})
    with figure_style():
        fig = figures.silencing_figure(traces)
    assert fig.axes[0].get_ylim() == (-185.0, 185.0)


def test_silencing_figure_with_controls(systems):
    traces = pd.concat([fdata.silencing_traces(d, n_trials=2, n_steps=300,
                                               window=(80, 180)) for d in systems])
    effects = pd.concat([fdata.silencing_effects(d, n_trials=4, n_draws=4) for d in systems],
                        ignore_index=True)
    assert {"ctrl_drift_p05", "drift_vs_control", "system", "key"} <= set(effects.columns)
    with figure_style():
        fig = figures.silencing_figure(traces, effects)
    n_groups = len(fdata.SILENCED_GROUPS)
    assert len(fig.axes) == len(systems) * (n_groups + 3)
    labels = texts(fig)
    for needle in ("drift during silencing (°/s)", "integration gain during silencing",
                   "vs random units (grey)", "CW (8)", "top fifth |A| (5)"):
        assert needle in labels, needle
    with pytest.raises(HdbenchError, match="silencing effects need"):
        figures.silencing_figure(traces, pd.DataFrame({"system": []}))


def test_dynamics_figure(systems):
    slow = [fdata.slow_points(systems[0], n_points=18), fdata.SlowPointData(note="none here")]
    assert slow[0].rates.shape[1] == 24 and slow[0].slow.any()
    with figure_style():
        fig = figures.dynamics_figure(systems, slow)
    labels = texts(fig)
    assert "PC1 of rates" in labels and "true heading (°)" in labels
    assert "slow point" in labels and "no slow points: none here" in labels
    with pytest.raises(HdbenchError, match="slow-point sets"):
        figures.dynamics_figure(systems, slow[:1])


# -- figures across models --------------------------------------------------------------------


def test_cell_type_figure(systems):
    tables = [("ctrnn", 0, systems[0].table), ("ctrnn", 1, systems[1].table),
              ("ctrnn-cueva-3x", 0, systems[1].table)]
    fractions = pd.concat([fdata.cell_type_fractions(tables),
                           fdata.cell_type_fractions([systems[1]])], ignore_index=True)
    sums = fractions.groupby(["model", "seed"])["fraction"].sum()
    assert np.allclose(sums, 1.0)
    with figure_style():
        fig = figures.cell_type_figure(fractions)
    labels = texts(fig)
    assert "units (%)" in labels and "across training AV speeds (CTRNN)" in labels
    assert "not trained yet: 0.1×" in labels and "3×\n(n=1)" in labels
    assert "ctrnn (n=2)" in labels and "rodent (n=1)" in labels
    assert len(fig.axes) == 5 + 1 + 1  # one column per cell type, the speeds, their legend
    check_units(fig)


def test_cell_type_figure_refuses_networks_that_do_not_integrate(systems):
    """Seeds that do not integrate are drawn apart and left out of the means, and the A
    distributions get their own columns."""
    tables = [("ctrnn", 0, systems[0].table, 1.0), ("ctrnn", 1, systems[1].table, 0.3),
              ("ctrnn-cueva-0p1x", 0, systems[1].table, 0.02)]
    items = [fdata.classified(t) for t in tables] + [fdata.classified(systems[1])]
    fractions = fdata.cell_type_fractions(items)
    assert list(fractions.drop_duplicates(["model", "seed"])["integrates"]) == \
        [True, False, False, True]
    modulation = fdata.av_modulation(items)
    assert len(modulation) == 4 * 24 and np.isfinite(modulation["av_slope_norm"]).all()
    with figure_style():
        fig = figures.cell_type_figure(fractions, modulation)
    labels = texts(fig)
    assert "ctrnn (n=2, 1 not integrating)" in labels
    assert "AV asymmetry A" in labels and "AV slope × AV SD / peak" in labels
    assert "not compared:\nno seed\nintegrates\n(gain 0.02)" in labels
    assert len(fig.axes) == 5 + 2 + 1 + 1
    check_units(fig)


def test_cell_type_legend_is_clear_of_the_speed_panel(systems):
    """Figure 3's legend and notes never cover the bars or seed dots of the speed panel."""
    tables = [("ctrnn", 0, systems[0].table, 1.0), ("ctrnn", 1, systems[1].table, 1.0),
              ("ctrnn-cueva-0p1x", 0, systems[1].table, 1.0),
              ("ctrnn-cueva-3x", 0, systems[1].table, 1.0),
              ("ctrnn-cueva-3x", 1, systems[0].table, 0.4)]
    with figure_style():
        fig = figures.cell_type_figure(fdata.cell_type_fractions(tables))
        fig.canvas.draw()
    speeds = next(ax for ax in fig.axes if ax.get_title() == "across training AV speeds (CTRNN)")
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert len(legends) == 1 and legends[0].axes is not speeds
    renderer = fig.canvas.get_renderer()
    box = legends[0].get_window_extent(renderer)
    assert not box.overlaps(speeds.get_window_extent(renderer))
    # the 3× slot has bars: its note sits in the tick label, outside the axes
    assert "3×\n(n=2)\n1 left out:\nno integration\n(gain 0.40)" in texts(fig)
    assert not any("not compared" in t.get_text() for t in speeds.texts)


@pytest.mark.parametrize("name", ["task", "tuning", "connectivity", "silencing", "dynamics",
                                  "cell-types", "leaderboard", "kao", "sparse", "properties",
                                  "validity"])
def test_titles_are_optional(systems, name):
    """No builder draws a heading unless asked; True draws the paper's caption (unnumbered);
    a string draws that string; `hdbench figures` numbers the caption."""
    from tests.test_property_figure import _table as property_rows

    traces = fdata.silencing_traces(systems[0], n_trials=2, n_steps=200, window=(60, 120))
    fractions = fdata.cell_type_fractions([("ctrnn", 0, systems[0].table)])
    builders = {
        "task": lambda **kw: figures.task_figure(systems, **kw),
        "tuning": lambda **kw: figures.tuning_figure(systems[:1], **kw),
        "connectivity": lambda **kw: figures.connectivity_figure(systems[:1], n_boot=10, **kw),
        "silencing": lambda **kw: figures.silencing_figure(traces, **kw),
        "dynamics": lambda **kw: figures.dynamics_figure(systems, **kw),
        "cell-types": lambda **kw: figures.cell_type_figure(fractions, **kw),
        "leaderboard": lambda **kw: figures.leaderboard_figure(leaderboard_rows(), **kw),
        "kao": lambda **kw: figures.kao_figure(leaderboard_rows(), **kw),
        "sparse": lambda **kw: figures.sparse_figure(
            sparse_rows(("fly",)).query("measure == 'test_ne'"), **kw),
        "properties": lambda **kw: figures.property_figure(property_rows(), **kw),
        "validity": lambda **kw: figures.validity_figure(validity_rows()[0], **kw),
    }
    build = builders[name]
    with figure_style():
        assert build().get_suptitle() == ""
        assert build(title=None).get_suptitle() == ""
        caption = build(title=True).get_suptitle()
        assert caption and not caption.startswith("Figure")
        assert build(title="My model").get_suptitle() == "My model"
        spec = figures.select(name)[0]
        data = figures.FigureData(".")
        numbered = figures.build_figure(
            figures.render.FigureSpec(name, spec.number, "",
                                      lambda d: build(title=True)), data)
    assert numbered.get_suptitle() == f"Figure {spec.number}. {caption}"
    assert "Figure" not in texts(build())


def test_leaderboard_figure():
    table = leaderboard_rows()
    with figure_style():
        fig = figures.leaderboard_figure(table, note="synthetic", title=True)
    labels = texts(fig)
    assert "vs fly" in labels and "vs rodent" in labels
    assert "brain-likeness\n(all references; the rank)" in labels
    assert "task competence\n(apart: not in the rank)" in labels
    assert "source: synthetic" in labels and "model (ranked by brain-likeness)" in labels
    assert "±" in labels and "*" in labels  # CI from 2 seeds; a clipped value
    assert "all 16 neural benchmarks\n(no validity battery yet)" in labels
    heat = [ax for ax in fig.axes if ax.images]
    assert len(heat) == 4  # brain-likeness, fly, rodent, task
    # brain-likeness first; task competence last, in its own (grey) colour scale
    assert [t.get_text() for t in heat[0].get_xticklabels()] == ["brain-likeness"]
    assert [t.get_text() for t in heat[1].get_xticklabels()] == [
        "brain-likeness", "tuning", "representation", "connectivity", "dynamics"]
    assert [t.get_text() for t in heat[3].get_xticklabels()] == [
        "all references", "vs fly", "vs rodent"]
    assert heat[3].images[0].get_cmap().name == "greys"
    assert {ax.images[0].get_cmap().name for ax in heat[:3]} == {"cividis"}
    with pytest.raises(HdbenchError, match="lacks columns"):
        figures.leaderboard_figure(table.drop(columns=["family"]))


def test_leaderboard_figure_ranks_by_validated_brain_likeness():
    """With a validity status, experimental benchmarks leave brain-likeness, its families and
    the rank; task competence stays apart and never ranks."""
    from hdbench.leaderboard import summarise

    table = leaderboard_rows(models=("ctrnn", "gru", "lstm"))
    # gru best on representation, worst elsewhere; huge task score for lstm
    for model, fam, value in (("gru", "representation", 1.0), ("gru", "tuning", 0.0),
                              ("gru", "connectivity", 0.0), ("gru", "dynamics", 0.0),
                              ("ctrnn", "representation", 0.2), ("lstm", "representation",
                                                                  0.5),
                              ("lstm", "task", 1.0), ("ctrnn", "task", 0.0),
                              ("gru", "task", 0.0)):
        rows = (table["model"] == model) & (table["family"] == fam)
        table.loc[rows, "normalised"] = value
    validity = {b: (1, b.split(".")[1] in ("representation", "task"), "")
                for b in set(table["benchmark"])}

    def ranked(fig):
        heat = [ax for ax in fig.axes if ax.images]
        return [t.get_text() for t in heat[0].get_yticklabels()], heat

    with figure_style():
        everything, _ = ranked(figures.leaderboard_figure(table))
        fig = figures.leaderboard_figure(table, validity=validity)
    validated, heat = ranked(fig)
    assert validated == ["gru", "lstm", "ctrnn"]
    for order, status in ((validated, validity), (everything, None)):
        expected = summarise(table, validity=status)
        expected = expected[(expected.reference == "all") & (expected.family == "overall")]
        assert order == expected.sort_values("normalised", ascending=False)["model"].tolist()
    assert everything != validated
    # the experimental families are gone from the per-reference blocks
    assert [t.get_text() for t in heat[1].get_xticklabels()] == ["brain-likeness",
                                                                 "representation"]
    assert "4 of 16 neural\nbenchmarks (validated)" in texts(fig)
    # a reference without any validated neural benchmark gets no empty block
    fly_only = {b: (1, b.startswith("fly.representation") or ".task." in b, "")
                for b in set(table["benchmark"])}
    with figure_style():
        fig = figures.leaderboard_figure(table, validity=fly_only)
    assert [ax.get_title() for ax in fig.axes if ax.images][1:-1] == ["vs fly"]


def test_long_headings_are_wrapped_to_the_figure():
    with figure_style():
        fig = figures.leaderboard_figure(leaderboard_rows(), title=True)
    figures.style.number_heading(fig, 7)
    lines = fig.get_suptitle().splitlines()
    assert len(lines) > 1 and lines[0].startswith("Figure 7.")
    width = fig.get_figwidth() * 72 / (0.62 * figures.style.HEADING_SIZE)
    assert all(len(line) <= width for line in lines)


def test_kao_figure():
    table = leaderboard_rows()
    with figure_style():
        fig = figures.kao_figure(table)
    labels = texts(fig)
    assert "tuning score (single units; normalised)" in labels
    assert "representation score\n(population; normalised)" in labels
    assert "relu" in labels and "rate penalty 1e-3" in labels
    assert len(fig.axes) == 2 * 3
    with pytest.raises(HdbenchError, match="no kao"):
        figures.kao_figure(leaderboard_rows(models=("ctrnn",)))


def test_sparse_figure_is_tolerant_of_extra_measures():
    with figure_style():
        fig = figures.sparse_figure(sparse_rows())
    labels = texts(fig)
    assert "unrecorded neurons: shape metric" in labels and "shape distance (°)" in labels
    assert "normalised error (%)" in labels and "decoded heading RMS error (°)" in labels
    assert "held out: speed2x" in labels and "output-only students (p = 0)" in labels
    assert "not shown: extra.measure, recorded.activity_mse" in labels
    assert "recorded neurons p (% of teacher)" in labels
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.axison]
    assert len(panels) == 7
    assert "line style: trial condition" in labels  # in the spare slot, not over the data
    check_units(fig)
    with figure_style():
        one = figures.sparse_figure(sparse_rows(("fly",)).query("measure == 'test_ne'"))
    assert len([ax for ax in one.axes if ax.get_visible()]) == 1
    with pytest.raises(HdbenchError, match="none of the measures"):
        figures.sparse_figure(sparse_rows(("fly",)).query("measure == 'extra.measure'"))


def validity_rows(n_levels: int = 4):
    """A battery of 4 benchmarks: ``fly.tuning.good`` passes everything; ``fly.dynamics.flat``
    is not grounded (its score ignores the degradation); ``rodent.tuning.noisy`` fails
    reliability; ``rodent.representation.good`` passes. Degradation scores fall linearly with
    level except for the flat one."""
    from hdbench.scoring import validity as v

    benches = {"fly.tuning.good": ("fly", "tuning", ()),
               "fly.dynamics.flat": ("fly", "dynamics", ("grounding:weight-noise",)),
               "rodent.tuning.noisy": ("rodent", "tuning", ("reliability",)),
               "rodent.representation.good": ("rodent", "representation", ())}
    rows, degraded = [], []
    rng = np.random.default_rng(0)
    for bench, (ref, family, fails) in benches.items():
        tests = ["discrimination", "above_floor", "separation", "saturation", "specificity",
                 "reliability", "task_dependence"]
        tests += [f"grounding:{k}" for k in v.GROUNDING[family]]
        for test in tests:
            base = test.split(":")[0]
            passed = None if base in ("above_floor", "task_dependence") else test not in fails
            statistic = {"discrimination": 2.5, "above_floor": 0.9, "separation": 4.0,
                         "saturation": 0.1, "specificity": 0.3, "reliability": 0.95,
                         "task_dependence": 0.4, "grounding": -1.0}[base]
            if test in fails:
                statistic = 0.5 if base == "reliability" else 0.1
            rows.append({"reference": ref, "benchmark": bench, "family": family,
                         "version": 1, "test": test, "statistic": statistic,
                         "threshold": v.THRESHOLDS.get(base, np.nan), "passed": passed,
                         "detail": ""})
        for kind in v.GROUNDING[family]:
            for instance in (1, 2, 3):
                for level in range(n_levels):
                    score = 1.0 if bench == "fly.dynamics.flat" else \
                        1.0 - level / (n_levels - 1) + 0.05 * rng.standard_normal()
                    degraded.append({"benchmark": bench, "kind": kind, "level": level / 4,
                                     "instance": instance, "normalised": score})
    return pd.DataFrame(rows), pd.DataFrame(degraded)


def write_validity(folder, results: pd.DataFrame, degraded: pd.DataFrame | None) -> None:
    """As :func:`hdbench.scoring.battery.write_battery` writes them (benchmark named twice)."""
    from hdbench.scoring import validity as v

    out = folder / "validity"
    out.mkdir(parents=True, exist_ok=True)
    columns = ["reference", "benchmark", "family", "version", *v.COLUMNS]
    (out / "benchmark_validity.csv").write_text(results[columns].to_csv(index=False))
    if degraded is not None:
        (out / "degradation_scores.csv").write_text(degraded.to_csv(index=False))


def test_validity_figure(tmp_path):
    results, degraded = validity_rows()
    write_validity(tmp_path, results, degraded)
    table, scores = fdata.validity_tables(tmp_path)  # read back as written
    assert "benchmark.1" not in table.columns and len(scores) == len(degraded)
    with figure_style():
        fig = figures.validity_figure(table, scores)
    assert fig.get_suptitle() == ""  # no title unless asked
    grid = fig.axes[0]
    benches = [t.get_text() for t in grid.get_yticklabels()]
    assert benches == ["fly.dynamics.flat", "fly.tuning.good", "rodent.representation.good",
                       "rodent.tuning.noisy"]
    columns = [t.get_text() for t in grid.get_xticklabels()]
    # status; the required tests (one column per grounding kind); the reported ones
    assert columns == ["status", "discrimination", "saturation", "grounding:\nheading-remap",
                       "grounding:\nrate-noise", "grounding:\ntime-constants",
                       "grounding:\ntuning-scatter", "grounding:\nweight-noise",
                       "specificity", "reliability",
                       "separation", "above floor", "task dependence"]
    # the status column: validated exactly where every required test passed
    status = {benches[int(round(t.get_position()[1]))]: t.get_text() for t in grid.texts
              if t.get_position()[0] == 0}
    assert status == {"fly.dynamics.flat": "experimental", "fly.tuning.good": "validated",
                      "rodent.representation.good": "validated",
                      "rodent.tuning.noisy": "experimental"}

    # each cell's colour follows its pass/fail; its text the statistic
    def cell(bench, test):
        i, j = benches.index(bench), columns.index(test)
        patch = next(p for p in grid.patches if p.get_x() == j - 0.5 and p.get_y() == i - 0.5)
        text = next(t.get_text() for t in grid.texts if t.get_position() == (j, i))
        return matplotlib.colors.to_hex(patch.get_facecolor()), text

    from hdbench.figures.validity import FAIL_COLOR, PASS_COLOR, REPORTED_COLOR
    assert cell("rodent.tuning.noisy", "reliability") == (FAIL_COLOR.lower(), "0.50")
    assert cell("fly.tuning.good", "reliability") == (PASS_COLOR.lower(), "0.95")
    assert cell("fly.tuning.good", "above floor") == (REPORTED_COLOR.lower(), "90%")
    assert cell("fly.dynamics.flat", "grounding:\nweight-noise")[0] == FAIL_COLOR.lower()
    assert cell("fly.dynamics.flat", "grounding:\ntime-constants")[0] == PASS_COLOR.lower()
    # small multiples: one per benchmark, the thick line the mean over instances
    small = [ax for ax in fig.axes[1:] if ax.get_visible() and ax.lines]
    assert [ax.get_title() for ax in small] == benches
    good = small[1]
    mean = degraded[(degraded.benchmark == "fly.tuning.good")
                    & (degraded.kind == "rate-noise")].groupby("level")["normalised"].mean()
    thick = [ln for ln in good.lines if ln.get_linewidth() > 1]
    assert any(np.allclose(ln.get_ydata(), mean.to_numpy()) for ln in thick)
    labels = texts(fig)
    assert "2 of 4 benchmarks validated" in labels
    rho = [t.get_text() for t in small[0].texts]
    assert rho == ["ρ -1.00 ✓", "ρ +0.10 ✗"]  # time-constants passed, weight-noise failed
    assert "degradation step" in labels and "normalised score" in labels
    check_units(fig)


def test_validity_figure_without_degradations_and_bad_input():
    results, _ = validity_rows()
    with figure_style():
        fig = figures.validity_figure(results, None, title="my battery")
    assert fig.get_suptitle() == "my battery"
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 1
    with pytest.raises(HdbenchError, match="lacks columns passed"):
        figures.validity_figure(results.drop(columns=["passed"]))
    with pytest.raises(HdbenchError, match="is empty"):
        figures.validity_figure(results.iloc[:0])
    with pytest.raises(HdbenchError, match="degradation table lacks columns kind"):
        figures.validity_figure(results, pd.DataFrame({"benchmark": ["x"]}))


# -- determinism --------------------------------------------------------------------------------


def test_svg_clip_paths_are_named_by_order_of_use():
    from hdbench.figures.style import _number_clip_paths

    # The same figure with its clip rectangles hashed from bounds a few ulps apart.
    def svg(a, b):
        return (f'<path clip-path="url(#{a})"/><path clip-path="url(#{b})"/>'
                f'<path clip-path="url(#{a})"/><defs><clipPath id="{b}"/>'
                f'<clipPath id="{a}"/></defs>').encode()

    one = _number_clip_paths(svg("p0123456789", "pabcdefabcd"))
    other = _number_clip_paths(svg("p5408f941d4", "p84d24c99aa"))
    assert one == other
    assert one.count(b"url(#clip0)") == 2 and b'<clipPath id="clip1"/>' in one


@pytest.mark.parametrize("fmt", ["png", "svg", "pdf"])
def test_same_data_same_bytes(systems, fmt):
    def render(build):
        with figure_style():
            fig = build()
            try:
                return figure_bytes(fig, fmt)
            finally:
                plt.close(fig)

    for build in (lambda: figures.task_figure(systems),
                  lambda: figures.leaderboard_figure(leaderboard_rows()),
                  lambda: figures.validity_figure(*validity_rows(), title=True)):
        first, second = render(build), render(build)
        assert first == second and len(first) > 1000
    if fmt == "svg":
        assert b"<dc:date>" not in first


def test_bytes_do_not_depend_on_what_was_saved_before():
    def render(formats):
        with figure_style():
            fig = figures.leaderboard_figure(leaderboard_rows())
            try:
                return [figure_bytes(fig, fmt) for fmt in formats][-1]
            finally:
                plt.close(fig)

    assert render(["png"]) == render(["svg", "pdf", "png"])
    assert render(["svg"]) == render(["png", "svg"])


def test_metadata_is_fixed(tmp_path):
    with figure_style():
        fig = figures.leaderboard_figure(leaderboard_rows())
        paths = figures.save_figure(fig, tmp_path / "lb", ("png", "svg", "pdf"))
    assert [p.suffix for p in paths] == [".png", ".svg", ".pdf"]
    assert b"Software" not in paths[0].read_bytes()[:400]
    assert b"Matplotlib" not in paths[1].read_bytes()
    with pytest.raises(HdbenchError, match="unknown figure format"):
        figures.save_figure(fig, tmp_path / "lb", "png,jpeg")


# -- loader layer and the command ---------------------------------------------------------------


def test_loaders_read_results(tmp_path):
    with pytest.raises(fdata.MissingData) as missing:
        fdata.leaderboard_table(tmp_path)
    assert missing.value.command == f"hdbench leaderboard --out {tmp_path}"
    write_csv(tmp_path / "quick" / "leaderboard.csv", leaderboard_rows())
    table, note = fdata.leaderboard_table(tmp_path)
    assert "quick leaderboard" in note and len(table) > 0
    write_csv(tmp_path / "leaderboard.csv", leaderboard_rows())
    assert fdata.leaderboard_table(tmp_path)[1] is None
    write_csv(tmp_path / "experiments" / "sparse-recordings-fly.csv", sparse_rows(("fly",)))
    write_csv(tmp_path / "experiments" / "sparse-recordings-rodent.csv",
              sparse_rows(("rodent",)).assign(extra_column=1))
    assert set(fdata.sparse_recordings(tmp_path)["teacher"]) == {"fly", "rodent"}
    write_csv(tmp_path / "experiments" / "sparse-recordings-bad.csv",
              pd.DataFrame({"teacher": ["fly"], "value": [1.0]}))
    with pytest.raises(HdbenchError, match="lacks columns record_fraction"):
        fdata.sparse_recordings(tmp_path)
    assert fdata.zoo_runs(tmp_path) == []
    write_zoo_run(tmp_path, "ctrnn", 1)
    write_zoo_run(tmp_path, "ctrnn-cueva-3x", 0)
    runs = fdata.zoo_runs(tmp_path)
    assert [(r.model, r.seed, r.task) for r in runs] == [("ctrnn", 1, "cueva-1x"),
                                                         ("ctrnn-cueva-3x", 0, "cueva-1x")]
    assert fdata.example_model(tmp_path).model == "ctrnn"


def test_select_figures():
    assert [s.number for s in figures.select(None)] == list(range(1, 13))
    assert [s.name for s in figures.select("7,task,fig3")] == ["task", "cell-types",
                                                               "leaderboard"]
    with pytest.raises(HdbenchError, match="unknown figure"):
        figures.select("task,nonsense")


def test_render_skips_missing_data_with_the_command(tmp_path):
    lines = []
    report = figures.render_figures(tmp_path, tmp_path / "figs", "png", log=lines.append)
    assert report.written == {} and report.failed == {}
    assert report.skipped == {
        "task": f"hdbench leaderboard --out {tmp_path}",
        "tuning": f"hdbench leaderboard --out {tmp_path}",
        "cell-types": f"hdbench leaderboard --out {tmp_path}",
        "connectivity": f"hdbench leaderboard --out {tmp_path}",
        "silencing": f"hdbench leaderboard --out {tmp_path}",
        "dynamics": f"hdbench leaderboard --out {tmp_path}",
        "leaderboard": f"hdbench leaderboard --out {tmp_path}",
        "kao": f"hdbench leaderboard --out {tmp_path}",
        "sparse": "hdbench experiment sparse-recordings --teacher fly",
        "properties": f"hdbench properties --results {tmp_path} --out "
                      f"{tmp_path / 'properties'}",
        "validity": f"hdbench validate --out {tmp_path}",
        "reproduction": f"hdbench experiment cueva-reproduction --out {tmp_path}",
    }
    assert len(lines) == 12 and all(line.startswith("skipped fig") for line in lines)
    assert all("\n" not in line for line in lines)
    # A leaderboard without kao-* models: figure 7 renders, figure 8 is skipped.
    write_csv(tmp_path / "quick" / "leaderboard.csv", leaderboard_rows(models=("ctrnn", "gru")))
    lines.clear()
    report = figures.render_figures(tmp_path, tmp_path / "figs", "png", "leaderboard,kao",
                                    log=lines.append)
    assert list(report.written) == ["leaderboard"] and list(report.skipped) == ["kao"]
    assert "no kao-* models" in lines[1]


def test_render_systems_figures_from_prepared_data(tmp_path, systems):
    data = figures.FigureData(tmp_path)
    data.__dict__["systems"] = systems  # what the loader would have built, tiny
    data.__dict__["slow_points"] = [fdata.SlowPointData(note="skipped in tests")] * 2
    report = figures.render_figures(tmp_path, tmp_path / "figs", "png", "1,2,4,6",
                                    data=data, log=lambda line: None)
    assert sorted(report.written) == ["connectivity", "dynamics", "task", "tuning"]
    first = (tmp_path / "figs" / "fig1-task.png").read_bytes()
    figures.render_figures(tmp_path, tmp_path / "figs", "png", "task", data=data,
                           log=lambda line: None)
    assert (tmp_path / "figs" / "fig1-task.png").read_bytes() == first


def test_render_validity_and_the_validated_leaderboard(tmp_path):
    """With a validity battery in the results, figure 11 renders and figure 7 counts only the
    validated benchmarks."""
    write_csv(tmp_path / "leaderboard.csv", leaderboard_rows())
    results, degraded = validity_rows()
    write_validity(tmp_path, results, None)  # no degradation table: panel A only
    data = figures.FigureData(tmp_path)
    assert data.validity_status == {"fly.dynamics.flat": (1, False, "grounding:weight-noise"),
                                    "fly.tuning.good": (1, True, ""),
                                    "rodent.representation.good": (1, True, ""),
                                    "rodent.tuning.noisy": (1, False, "reliability")}
    assert data.validity[1] is None
    with figure_style():
        fig = figures.build_figure(figures.select("7")[0], data)
    # none of the synthetic leaderboard's benchmarks is in the battery: none counts
    assert "0 of 16 neural\nbenchmarks (validated)" in texts(fig)
    assert fig.get_suptitle().startswith("Figure 7. Leaderboard")
    report = figures.render_figures(tmp_path, tmp_path / "figs", "png", "validity,7",
                                    data=data, log=lambda line: None)
    assert sorted(report.written) == ["leaderboard", "validity"]
    (tmp_path / "validity" / "degradation_scores.csv").write_text("\n")
    assert fdata.validity_tables(tmp_path)[1] is None  # an empty table: no panel B


def test_cell_type_figure_from_a_tiny_zoo(tmp_path):
    write_zoo_run(tmp_path, "ctrnn", 0)
    write_zoo_run(tmp_path, "ctrnn", 1)
    broken = tmp_path / "zoo" / "gru-seed0"
    broken.mkdir()
    (broken / "model.pt").write_text("not a checkpoint")
    data = figures.FigureData(tmp_path, n_trials=4)
    assert data.fractions.attrs["failed"][0].startswith("gru-seed0 (")
    assert set(data.fractions["model"]) == {"ctrnn", "rodent", "fly"}
    report = figures.render_figures(tmp_path, tmp_path / "figs", "png", "cell-types",
                                    data=data, log=lambda line: None)
    assert list(report.written) == ["cell-types"]


def test_cli_figures(tmp_path, capsys):
    write_csv(tmp_path / "res" / "leaderboard.csv", leaderboard_rows())
    write_csv(tmp_path / "res" / "experiments" / "sparse-recordings-fly.csv",
              sparse_rows(("fly",)))
    out = tmp_path / "figs"
    code = main(["figures", "--results", str(tmp_path / "res"), "--out", str(out),
                 "--format", "png,svg", "--only", "leaderboard,kao,sparse,task"])
    captured = capsys.readouterr()
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "fig7-leaderboard.png", "fig7-leaderboard.svg", "fig8-kao.png", "fig8-kao.svg",
        "fig9-sparse.png", "fig9-sparse.svg"]
    assert "skipped fig1-task" in captured.err and "hdbench leaderboard --out" in captured.err
    assert "3 figure(s) written" in captured.out


@pytest.mark.parametrize("argv, message", [
    (["--format", "png,gif"], "unknown figure format(s) gif"),
    (["--only", "task,fig13"], "unknown figure(s) fig13"),
    (["--results", "does-not-exist"], "results folder does-not-exist does not exist"),
])
def test_cli_figures_errors(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results").mkdir()
    code = main(["figures", "--out", str(tmp_path / "figs"), *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.count("\n") == 1


def test_cli_figures_unknown_model_and_too_few_trials(tmp_path, capsys):
    write_zoo_run(tmp_path, "ctrnn", 0)
    code = main(["figures", "--results", str(tmp_path), "--out", str(tmp_path / "figs"),
                 "--model", "gru"])
    assert code == 2 and "no model 'gru'" in capsys.readouterr().err
    code = main(["figures", "--results", str(tmp_path), "--out", str(tmp_path / "figs"),
                 "--trials", "2"])
    assert code == 2 and "n_trials must be an integer >= 4" in capsys.readouterr().err


def test_cli_figures_bad_trials(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["figures", "--trials", "0"])
    assert exit_.value.code == 2
    assert "positive integer" in capsys.readouterr().err
