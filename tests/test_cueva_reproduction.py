"""The Cueva reproduction study (issue 20): recipes and their configs, the training ladder, the
declared recipe-selection rule, an end-to-end tiny run, and figure 12."""

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest

from hdbench.cli import main
from hdbench.errors import HdbenchError
from hdbench.experiments import cueva_reproduction as cr
from hdbench.training import TrainConfig

# -- recipes and configs ---------------------------------------------------------------------------


def test_factorial_is_the_three_departures():
    assert len(cr.RECIPES) == 8 and len(set(cr.RECIPES)) == 8
    assert {(r.noise_location, r.input_lr_factor, r.lr_schedule) for r in cr.RECIPES} == {
        (n, f, s) for n in ("rate", "state") for f in (1.0, 10.0)
        for s in ("constant", "cosine")}
    assert cr.AUTHORS.departures == 0 and cr.DEFAULT.departures == 3
    assert sorted(r.departures for r in cr.RECIPES) == [0, 1, 1, 1, 2, 2, 2, 3]
    for recipe in cr.RECIPES:
        assert cr.Recipe.parse(recipe.label) == recipe
    assert cr.Recipe("state", 10, "cosine") == cr.DEFAULT  # 10 and 10.0 are one recipe
    with pytest.raises(HdbenchError, match="unknown recipe"):
        cr.Recipe.parse("state-x10")
    with pytest.raises(HdbenchError, match="noise_location"):
        cr.Recipe("input", 1.0, "cosine")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_default_cell_is_the_zoo_ctrnn(seed):
    from hdbench.zoo import ZOO

    entry = next(e for e in ZOO if e.model_id == "ctrnn")
    zoo_config = dict(entry.configs())[seed]
    config = cr.recipe_config(cr.DEFAULT, seed)
    assert config == zoo_config and config.run_hash() == zoo_config.run_hash()
    assert config.task == "cueva-1x" and config.updates == 5000


def test_default_cell_reuses_the_committed_zoo_run():
    from pathlib import Path

    zoo = Path(__file__).resolve().parents[1] / "results" / "zoo"
    if not (zoo / "ctrnn-seed0" / "config.json").is_file():
        pytest.skip("no committed zoo")
    assert cr._zoo_dir(cr.recipe_config(cr.DEFAULT, 0), zoo) == zoo / "ctrnn-seed0"
    assert cr._zoo_dir(cr.recipe_config(cr.AUTHORS, 0), zoo) is None
    assert cr._zoo_dir(cr.recipe_config(cr.DEFAULT, 0, rung=1), zoo) is None


def test_configs_change_only_the_factors_and_the_length():
    base = dataclasses.asdict(TrainConfig())
    free = {"model_options", "input_lr_factor", "lr_schedule", "updates", "target_val_ne",
            "seed", "task"}
    for recipe in cr.RECIPES:
        for rung in range(cr.ladder().rungs(recipe)):
            config = cr.recipe_config(recipe, 2, "cueva-3x", rung)
            data = dataclasses.asdict(config)
            assert {k for k in base if data[k] != base[k]} <= free
            assert config.model_options == {"noise_location": recipe.noise_location}
            assert config.input_lr_factor == recipe.input_lr_factor
            assert config.lr_schedule == recipe.lr_schedule
            assert config.seed == 2 and config.task == "cueva-3x"
            if recipe.lr_schedule == "cosine":
                assert config.updates == cr.COSINE_BUDGETS[rung]
                assert config.target_val_ne is None
            else:
                assert config.updates == cr.CAP
                assert config.target_val_ne == (cr.TARGET_VAL_NE if rung == 0 else None)
    assert cr.COSINE_BUDGETS[-1] == cr.CAP  # neither schedule gets a longer horizon
    with pytest.raises(HdbenchError, match="rungs"):
        cr.recipe_config(cr.AUTHORS, 0, rung=2)


def test_quick_configs_are_short():
    for recipe in cr.RECIPES:
        config = cr.recipe_config(recipe, 0, quick=True)
        assert config.updates <= cr.QUICK_CAP and config.batch_size < 100


# -- the ladder ------------------------------------------------------------------------------------

MET = {"best_val_ne": 0.005, "integration.integrates": 1.0, "reached_target": 1.0}
MISSED = {"best_val_ne": 0.05, "integration.integrates": 1.0, "reached_target": 0.0}
NO_GAIN = {"best_val_ne": 0.005, "integration.integrates": 0.0, "reached_target": 1.0}


@pytest.mark.parametrize("recipe, rung, values, stage, expected", [
    (cr.DEFAULT, 0, MET, "factorial", None),
    (cr.DEFAULT, 0, MISSED, "factorial", 1),
    (cr.DEFAULT, 1, MISSED, "factorial", 2),
    (cr.DEFAULT, 2, MISSED, "factorial", None),  # the cap: nothing longer
    (cr.DEFAULT, 0, NO_GAIN, "factorial", None),  # the factorial asks for the NE only
    (cr.DEFAULT, 0, NO_GAIN, "speed", 1),
    (cr.AUTHORS, 0, MET, "factorial", None),
    (cr.AUTHORS, 0, MISSED, "factorial", None),  # ran to the cap without reaching the target
    (cr.AUTHORS, 0, NO_GAIN, "factorial", None),
    (cr.AUTHORS, 0, NO_GAIN, "speed", 1),  # stopped at the target, does not integrate
    (cr.AUTHORS, 0, {**MISSED, "integration.integrates": 0.0}, "speed", None),
    (cr.AUTHORS, 1, NO_GAIN, "speed", None),
])
def test_next_rung(recipe, rung, values, stage, expected):
    assert cr.next_rung(recipe, rung, values, stage, cr.ladder()) == expected


def test_criterion():
    assert cr.meets_criterion(MET, "factorial") and cr.meets_criterion(MET, "speed")
    assert cr.meets_criterion(NO_GAIN, "factorial") and not cr.meets_criterion(NO_GAIN, "speed")
    assert not cr.meets_criterion({"best_val_ne": math.nan}, "factorial")
    assert not cr.meets_criterion({}, "factorial")


# -- the declared selection rule -------------------------------------------------------------------

def cells(spec: dict) -> pd.DataFrame:
    """Synthetic final measurements: ``{recipe: [(p, bc, integrates), ...per seed]}``."""
    rows = []
    for recipe, seeds in spec.items():
        for seed, (p, bc, ok) in enumerate(seeds):
            rows.append({"recipe": recipe.label, "seed": seed, "A.silverman_p": p,
                         "A.bimodality": bc, "integration.integrates": float(ok)})
    return pd.DataFrame(rows)


R = {r.label: r for r in cr.RECIPES}


def test_selection_lowest_mean_silverman_p_wins():
    table = cells({cr.DEFAULT: [(0.4, 0.3, 1)] * 3,
                   R["rate-x10-cosine"]: [(0.01, 0.6, 1), (0.03, 0.6, 1), (0.2, 0.5, 1)],
                   R["rate-x1-cosine"]: [(0.1, 0.5, 1)] * 3})
    chosen, reason = cr.select_recipe(table)
    assert chosen == R["rate-x10-cosine"] and "0.080" in reason


def test_selection_uses_integrating_seeds_and_needs_two_of_them():
    table = cells({
        # the lowest p, but only in a seed that does not integrate: not eligible
        R["rate-x1-constant"]: [(0.0, 0.9, 0), (0.01, 0.9, 0), (0.02, 0.9, 1)],
        # a non-integrating seed's p would spoil the mean: it is left out
        R["state-x1-constant"]: [(0.9, 0.2, 0), (0.2, 0.4, 1), (0.2, 0.4, 1)],
        cr.DEFAULT: [(0.3, 0.3, 1)] * 3})
    chosen, _ = cr.select_recipe(table)
    assert chosen == R["state-x1-constant"]


def test_selection_ties_go_to_the_higher_bimodality_then_fewer_departures():
    tie = cells({cr.DEFAULT: [(0.10, 0.50, 1)] * 3,
                 R["state-x10-constant"]: [(0.11, 0.60, 1)] * 3,  # within 0.02: tied
                 R["rate-x10-cosine"]: [(0.125, 0.90, 1)] * 3})  # 0.025 above: not tied
    chosen, reason = cr.select_recipe(tie)
    assert chosen == R["state-x10-constant"] and "tied" in reason
    same = cells({cr.DEFAULT: [(0.1, 0.5, 1)] * 3, R["rate-x10-cosine"]: [(0.1, 0.5, 1)] * 3,
                  R["state-x1-constant"]: [(0.1, 0.5, 1)] * 3})
    assert cr.select_recipe(same)[0] == R["state-x1-constant"]  # one departure


def test_selection_falls_back_to_the_default():
    table = cells({cr.AUTHORS: [(0.01, 0.9, 0)] * 3})
    chosen, reason = cr.select_recipe(table)
    assert chosen == cr.DEFAULT and "no recipe integrates" in reason


# -- end to end ------------------------------------------------------------------------------------

@pytest.fixture
def tiny_study(monkeypatch):
    """Two recipes, two speeds, a 12-unit network trained for a few updates."""
    monkeypatch.setattr(cr, "QUICK_MODEL_OPTIONS", {"n_units": 12})
    monkeypatch.setattr(cr, "QUICK_SCHEDULE", dict(batch_size=4, val_every=2, val_trials=8,
                                                   test_trials=8, checkpoint_every=2))
    monkeypatch.setattr(cr, "QUICK_COSINE_BUDGETS", (2, 4))
    monkeypatch.setattr(cr, "QUICK_CAP", 4)
    monkeypatch.setattr(cr, "QUICK_N_TRIALS", 16)
    monkeypatch.setattr(cr, "QUICK_N_BOOT", 20)
    monkeypatch.setattr(cr, "QUICK_N_DRAWS", 2)
    monkeypatch.setattr(cr, "QUICK_SILENCING_TRIALS", 4)
    monkeypatch.setattr(cr, "RECIPES", (cr.DEFAULT, cr.AUTHORS))
    monkeypatch.setattr(cr, "SPEED_TASKS", ("cueva-0.1x", "cueva-1x"))


def test_quick_end_to_end(tmp_path, tiny_study):
    """CSV contract, the ladder climbed, the speed stage, and a rerun that computes nothing."""
    lines = []
    kwargs = dict(quick=True, out_dir=tmp_path / "out", store=tmp_path / "cache",
                  progress=False, log=lines.append)
    first = cr.run_cueva_reproduction(**kwargs)
    assert not first.failures
    path = tmp_path / "out" / "experiments" / "cueva-reproduction.csv"
    assert first.path == path and path.with_suffix(".json").is_file()
    table = cr.read_table(path)
    assert list(table.columns) == list(cr.COLUMNS)
    # nothing reaches NE < 1 % in 4 updates: cosine climbs both rungs, constant runs to its cap
    final = table[table["final"]]
    assert set(final.groupby(["stage", "task", "recipe"])["rung"].first().items()) == {
        (("factorial", "cueva-1x", "state-x10-cosine"), 1),
        (("factorial", "cueva-1x", "rate-x1-constant"), 0),
        (("speed", "cueva-0.1x", "state-x10-cosine"), 1),
        (("speed", "cueva-1x", "state-x10-cosine"), 1)}
    assert set(table.loc[table["stage"] == "factorial", "rung"]) == {0, 1}
    measures = set(table["measure"])
    for name in ("test_ne", "best_val_ne", "updates_done", "integration.gain",
                 "integration.gain_lo", "count.inactive", "count.compass", "fraction.compass",
                 "A.median_abs", "slope_norm.median_abs", "kappa_0.03.compass",
                 "ring_score", "signature.cw_off_drifts_ccw", "criterion_met",
                 "updates_trained", "measure_wall_s"):
        assert name in measures, name
    trained = final[(final["measure"] == "updates_trained")
                    & (final["recipe"] == "state-x10-cosine")]
    assert set(trained["value"]) == {6.0}  # rungs of 2 and 4 updates
    assert first.selected == cr.DEFAULT  # nothing integrates: the declared fallback
    assert any("speed-stage recipe" in line for line in lines)
    # the 1x speed cell is the factorial's cell: reused, not retrained
    assert first.compute["runs"] == 5
    second = cr.run_cueva_reproduction(**kwargs)
    assert second.report.results == [] and second.report.computed == 0
    assert cr.read_table(path).equals(table)


def test_no_train_writes_what_the_cache_holds(tmp_path, tiny_study):
    """Without training, an unfinished ladder keeps its last trained rung, marked incomplete
    (no verdict on the criterion), and a cell with nothing trained is left out."""
    kwargs = dict(quick=True, out_dir=tmp_path / "out", store=tmp_path / "cache",
                  progress=False, log=lambda line: None)
    empty = cr.run_cueva_reproduction(train=False, speeds=False, **kwargs)
    assert empty.table.empty and empty.report.computed == 0
    # train rung 0 of every cell only: the cosine cell's ladder then needs rung 1
    runner_kwargs = {k: kwargs[k] for k in ("store", "progress", "log")}
    from hdbench.scoring.runner import Runner
    lengths = cr.ladder(True)
    Runner(**runner_kwargs).train([(r.label, lengths.config(r, cr.TASK, 0, 0), None)
                                   for r in cr.RECIPES])
    partial = cr.run_cueva_reproduction(train=False, speeds=False, **kwargs)
    final = partial.table[partial.table["final"]]
    by_recipe = {r: dict(zip(g["measure"], g["value"], strict=True))
                 for r, g in final.groupby("recipe")}
    assert by_recipe["state-x10-cosine"]["ladder_complete"] == 0.0
    assert "criterion_met" not in by_recipe["state-x10-cosine"]
    assert by_recipe["rate-x1-constant"]["ladder_complete"] == 1.0
    assert "criterion_met" in by_recipe["rate-x1-constant"]
    header = json.loads(partial.path.with_suffix(".json").read_text())["provenance"]
    assert header["complete"] is False
    assert header["incomplete_cells"] == ["state-x10-cosine cueva-1x seed 0 rung 0"]


def test_resumes_from_its_own_table_when_the_cache_is_gone(tmp_path, tiny_study):
    """The published table stands in for a lost run cache when code versions, ladder and
    protocol match: nothing is retrained and the table is rewritten unchanged; a sidecar from
    other training code is not trusted and everything is retrained."""
    lines = []
    kwargs = dict(quick=True, out_dir=tmp_path / "out", progress=False, log=lines.append)
    first = cr.run_cueva_reproduction(store=tmp_path / "cache1", **kwargs)
    path = first.path
    table = cr.read_table(path)
    second = cr.run_cueva_reproduction(store=tmp_path / "cache2", **kwargs)
    assert second.report.computed == 0 and second.report.results == []
    assert any("runs' measurements taken from" in line for line in lines)
    assert cr.read_table(path).equals(table)
    assert second.compute["runs"] == first.compute["runs"]
    assert second.compute["updates"] == first.compute["updates"]
    sidecar = path.with_suffix(".json")
    header = json.loads(sidecar.read_text())
    header["provenance"]["code"]["training"]["training"] += 1
    sidecar.write_text(json.dumps(header))
    lines.clear()
    third = cr.run_cueva_reproduction(store=tmp_path / "cache3", **kwargs)
    assert third.report.computed > 0
    assert any("not reusing" in line and "code differ" in line for line in lines)


def test_cli_dry_run_and_option_errors(tmp_path, tiny_study, capsys):
    args = ["experiment", "cueva-reproduction", "--quick", "--out", str(tmp_path / "out"),
            "--cache", str(tmp_path / "cache"), "--quiet"]
    assert main([*args, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would run: train state-x10-cosine cueva-1x seed 0 rung 0" in out
    assert "speed stage" in out and not (tmp_path / "out" / "experiments").exists()
    assert main([*args, "--updates", "3"]) == 2
    err = capsys.readouterr().err
    assert "--updates: not an option of cueva-reproduction" in err and err.count("\n") == 1


# -- figure 11 -------------------------------------------------------------------------------------

def synthetic_table(seed: int = 0) -> pd.DataFrame:
    """A tidy table shaped like the experiment's, with made-up values."""
    rng = np.random.default_rng(seed)
    rows = []

    def add(stage, task, recipe, s, values):
        for measure, value in values.items():
            rows.append({"stage": stage, "task": task, "recipe": recipe.label,
                         "noise_location": recipe.noise_location,
                         "input_lr_factor": recipe.input_lr_factor,
                         "lr_schedule": recipe.lr_schedule, "seed": s, "rung": 0,
                         "updates": 5000, "final": True, "measure": measure, "value": value})

    for k, recipe in enumerate(cr.RECIPES):
        for s in range(3):
            met = k % 3 != 0
            add("factorial", "cueva-1x", recipe, s, {
                "A.silverman_p": rng.uniform(0, 0.6), "integration.integrates": float(s < 2),
                "count.compass": rng.integers(10, 40), "count.shifter_cw": rng.integers(20, 40),
                "count.shifter_ccw": rng.integers(20, 40), "count.inactive": rng.integers(0, 12),
                "updates_done": 5000.0, **({"updates_needed": 5000.0} if met else {})})
    for task in cr.SPEED_TASKS:
        for s in range(3):
            add("speed", task, cr.DEFAULT, s, {
                "integration.integrates": float(task != "cueva-0.1x" or s == 0),
                "fraction.compass": rng.uniform(0.1, 0.5),
                "slope_norm.median_abs": rng.uniform(0.05, 0.3)})
    return pd.DataFrame(rows)


def test_reproduction_figure_on_a_synthetic_table(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hdbench import figures
    from hdbench.figures.reproduction import final_cells

    table = synthetic_table()
    cells_ = final_cells(table)
    assert len(cells_) == 8 * 3 + 3 * 3
    with figures.figure_style():
        fig = figures.reproduction_figure(table)
        assert len([ax for ax in fig.axes if ax.get_visible()]) == 5
        plt.close(fig)
        fig = figures.reproduction_figure(table[table["stage"] == "speed"])
        assert len(fig.axes) == 2
        plt.close(fig)
    with pytest.raises(HdbenchError, match="lacks columns"):
        figures.reproduction_figure(table.drop(columns=["final"]))
    with pytest.raises(HdbenchError, match="no final runs"):
        figures.reproduction_figure(table.assign(final=False))
    # registered: rendered from a results folder, skipped with the command without one
    table.to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "res" / "experiments").mkdir(parents=True)
    table.to_csv(tmp_path / "res" / "experiments" / "cueva-reproduction.csv", index=False)
    report = figures.render_figures(tmp_path / "res", tmp_path / "figs", "png", "12",
                                    log=lambda line: None)
    assert list(report.written) == ["reproduction"]
    report = figures.render_figures(tmp_path, tmp_path / "figs", "png", "reproduction",
                                    log=lambda line: None)
    assert report.skipped == {"reproduction":
                              f"hdbench experiment cueva-reproduction --out {tmp_path}"}
