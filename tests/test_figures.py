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


def test_connectivity_figure(systems):
    with figure_style():
        fig = figures.connectivity_figure(systems)
    labels = texts(fig)
    assert "Δ PD = PD target − PD source (°)" in labels
    assert "compass → compass" in labels and "shifter → compass" in labels
    assert "weight W (a.u.)" in labels
    # the fitted offsets with their intervals and p-values label the shifter profiles
    assert any(t.startswith("CCW shifter → compass: +") and ", p 0.0" in t
               for t in labels.split("\n"))
    assert sum(bool(ax.images) for ax in fig.axes) == len(systems)
    check_units(fig)


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
    assert "cued heading (°)" in labels
    # Silencing CW shifters of the ring makes the bump drift CCW (heading grows).
    model = traces[(traces.system == "ring model") & (traces.condition == "shifter_cw")]
    during = model[(model.time_s > 100 * SPEC.dt) & (model.time_s < 175 * SPEC.dt)]
    assert during.groupby("trial")["heading_deg"].apply(lambda h: h.iloc[-1] - h.iloc[0]).gt(
        0).all()
    with pytest.raises(HdbenchError, match="columns"):
        figures.silencing_figure(pd.DataFrame({"system": []}))


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
    assert len(fig.axes) == 5 + 1  # one column per cell type, then the speeds
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
    assert "not compared:\n1 of 1 seeds\ndo not integrate\n(gain 0.02)" in labels
    assert len(fig.axes) == 5 + 2 + 1
    check_units(fig)


def test_leaderboard_figure():
    table = leaderboard_rows()
    with figure_style():
        fig = figures.leaderboard_figure(table, note="synthetic")
    labels = texts(fig)
    assert "vs fly" in labels and "vs rodent" in labels and "all references" in labels
    assert "source: synthetic" in labels and "score family" in labels
    assert "±" in labels and "*" in labels  # CI from 2 seeds; a clipped value
    assert sum(bool(ax.images) for ax in fig.axes) == 3
    with pytest.raises(HdbenchError, match="lacks columns"):
        figures.leaderboard_figure(table.drop(columns=["family"]))


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
                  lambda: figures.leaderboard_figure(leaderboard_rows())):
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
    assert [s.number for s in figures.select(None)] == list(range(1, 12))
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
        "reproduction": f"hdbench experiment cueva-reproduction --out {tmp_path}",
    }
    assert len(lines) == 11 and all(line.startswith("skipped fig") for line in lines)
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
    (["--only", "task,fig12"], "unknown figure(s) fig12"),
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
