import json
import math
import re
import subprocess
import sys

import pandas as pd
import pytest

from hdbench.cli import main
from hdbench.errors import HdbenchError
from hdbench.leaderboard import (
    COLUMNS,
    read_table,
    run_leaderboard,
    summarise,
    write_leaderboard,
)
from hdbench.leaderboard_render import render_html, render_markdown
from hdbench.scoring import Benchmark, get
from hdbench.scoring.task_benchmarks import TASK_BENCHMARKS
from hdbench.store import Store
from hdbench.training import TrainConfig
from hdbench.zoo import QUICK_ZOO, ZOO, ZooEntry
from tests import fakes

FAKE = "fake=tests.fakes:make_ring"
TINY = TrainConfig(model_options={"n_units": 8}, updates=2, batch_size=4, val_every=1,
                   val_trials=4, test_trials=4, checkpoint_every=1)
TINY_ZOO = (ZooEntry("tiny", TINY), ZooEntry("ctrnn-untrained", TrainConfig(), trained=False))
HEADER = {"generated": "2026-01-01T00:00:00+00:00", "hdbench_version": "0.1.0"}


def run(tmp_path, **kwargs):
    """The driver on tiny fakes; the task benchmarks only unless ``benchmarks`` is given (the
    other families are tested on a small ring network in test_benchmark_families.py)."""
    options = dict(zoo=TINY_ZOO, references=[FAKE], benchmarks=TASK_BENCHMARKS, quick=True,
                   out_dir=tmp_path / "out", store=tmp_path / "cache", progress=False,
                   log=lambda line: None)
    options.update(kwargs)
    return run_leaderboard(**options)


# -- synthetic tables -------------------------------------------------------------------------

def synthetic_table():
    rows = []
    for model, seed, bench, normalised, raw in [
        ("good", 0, "fly.task.a", 0.9, 0.1), ("good", 1, "fly.task.a", 0.7, 0.3),
        ("good", 0, "fly.task.b", 1.2, 0.0), ("good", 1, "fly.task.b", 1.0, 0.1),
        ("good", 0, "fly.tuning.c", 0.5, 0.5), ("good", 1, "fly.tuning.c", 0.5, 0.5),
        ("bad <x>", 0, "fly.task.a", 0.1, 0.9), ("bad <x>", 0, "fly.tuning.c", -0.2, 1.2),
    ]:
        family = bench.split(".")[1]
        rows.append({"model": model, "seed": seed, "reference": "fly", "benchmark": bench,
                     "version": 1, "raw": raw, "ceiling": 0.0, "ceiling_sd": 0.01,
                     "floor": 1.0, "floor_sd": 0.02, "normalised": normalised,
                     "error": math.nan, "family": family, "higher_is_better": False,
                     "note": ""})
    return pd.DataFrame(rows, columns=list(COLUMNS))


def test_summary_aggregates_seeds_then_leaves_with_coverage():
    summary = summarise(synthetic_table())
    good = summary[(summary["model"] == "good")].set_index(["reference", "family"])
    # leaf means over seeds: a 0.8 (SEM 0.1), b 1.1 (SEM 0.1), c 0.5 (SEM 0)
    assert good.loc[("fly", "task"), "normalised"] == pytest.approx(0.95)
    assert good.loc[("fly", "task"), "error"] == pytest.approx(math.sqrt(0.02) / 2)
    # brain-likeness ("overall"): the neural families only; task competence apart
    assert good.loc[("fly", "overall"), "normalised"] == pytest.approx(0.5)
    assert good.loc[("fly", "overall"), "coverage"] == "1/1"
    assert good.loc[("all", "task"), "normalised"] == pytest.approx(0.95)
    assert good.loc[("all", "overall"), "n_seeds"] == 2
    bad = summary[summary["model"] == "bad <x>"].set_index(["reference", "family"])
    assert bad.loc[("fly", "task"), "coverage"] == "1/2"  # missing leaf: not counted as 0
    assert bad.loc[("fly", "task"), "normalised"] == pytest.approx(0.1)
    assert math.isnan(bad.loc[("fly", "task"), "error"])  # one seed: unknown error


def test_experimental_benchmarks_leave_the_aggregates():
    table = synthetic_table()
    extra = table[table["benchmark"] == "fly.tuning.c"].copy()
    extra["benchmark"], extra["normalised"] = "fly.tuning.d", 0.1
    table = pd.concat([table, extra], ignore_index=True)
    both = summarise(table).set_index(["model", "reference", "family"])
    assert both.loc[("good", "fly", "overall"), "normalised"] == pytest.approx(0.3)
    validity = {"fly.tuning.c": (1, True, ""), "fly.tuning.d": (1, False, "grounding")}
    only_c = summarise(table, validity=validity).set_index(["model", "reference", "family"])
    assert only_c.loc[("good", "fly", "overall"), "normalised"] == pytest.approx(0.5)
    assert only_c.loc[("good", "fly", "tuning"), "coverage"] == "1/1"
    stale = {"fly.tuning.c": (2, True, ""), "fly.tuning.d": (1, True, "")}  # c validated at v2
    by_version = summarise(table, validity=stale).set_index(["model", "reference", "family"])
    assert by_version.loc[("good", "fly", "overall"), "normalised"] == pytest.approx(0.1)


def test_rendering_csv_markdown_and_html(tmp_path):
    table = synthetic_table()
    paths = write_leaderboard(table, tmp_path / "board", HEADER)
    assert sorted(p.name for p in paths.values()) == [
        "leaderboard-summary.csv", "leaderboard.csv", "leaderboard.html", "leaderboard.json",
        "leaderboard.md"]
    back = pd.read_csv(paths["csv"])  # a plain CSV: no comment lines
    assert list(back.columns) == list(COLUMNS) and len(back) == len(table)
    assert back["normalised"].max() == pytest.approx(1.2)  # stored unclipped
    pd.testing.assert_frame_equal(read_table(paths["csv"]), back)
    summary = pd.read_csv(paths["summary"])
    assert set(summary["model"]) == {"good", "bad <x>"}
    assert json.loads(paths["json"].read_text())["provenance"] == HEADER

    md = paths["md"].read_text()
    assert "- hdbench_version: 0.1.0" in md
    lines = [line for line in md.splitlines() if line.startswith("| 1 |")
             or line.startswith("| 2 |")]
    assert lines[0].startswith("| 1 | good | 2 |") and lines[1].startswith("| 2 | bad <x> | 1 |")
    # brain-likeness (tuning c: 0.5, 0.5), then task competence (a 0.8, b 1.1)
    assert "| 0.50 ± 0.00 (1/1) | 0.95 ± 0.07 (2/2) |" in lines[0]
    assert "(1/2)" in lines[1]
    assert "1.00* (raw 0.05)" in md  # good on fly.task.b: clipped for display

    page = paths["html"].read_text()
    assert page.startswith("<!DOCTYPE html>") and "<script>" in page and "sortable" in page
    assert not re.search(r"(src|href)=", page)  # self-contained: no external assets
    assert "bad &lt;x&gt;" in page and "bad <x>" not in page
    assert 'data-score="0.8"' in page or 'data-score="0.7999999999999999"' in page
    assert "hdbench_version" in page and "position: sticky" in page


def test_the_page_has_a_glossary_from_the_registry(tmp_path):
    bench = get("fly.task.test-ne")
    table = synthetic_table()
    page = render_html(table, summarise(table), HEADER, {"fly": [bench]})
    assert f'id="{bench.id}"' in page and bench.citation.split(" ")[0] in page
    assert bench.measurement.split(" ")[0] in page


def test_damaged_tables_are_refused_with_the_line(tmp_path):
    table = synthetic_table()
    paths = write_leaderboard(table, tmp_path / "board", HEADER)
    lines = paths["csv"].read_text().splitlines()
    lines[3] = "garbage," + ",".join(["x"] * (len(COLUMNS) - 1))
    paths["csv"].write_text("\n".join(lines) + "\n")
    with pytest.raises(HdbenchError, match="line 4"):
        read_table(paths["csv"])
    paths["csv"].write_text("a,b\n1,2\n")
    with pytest.raises(HdbenchError, match="missing columns"):
        read_table(paths["csv"])


def test_renderers_are_pure_functions_of_the_table():
    table = synthetic_table()
    summary = summarise(table)
    assert render_markdown(table, summary, HEADER) == render_markdown(table, summary, HEADER)
    assert render_html(table, summary, HEADER) == render_html(table, summary, HEADER)


# -- the driver, end to end on a fake reference -----------------------------------------------

def labels(outcome) -> list[str]:
    return sorted(r.label for r in outcome.report.results)


def test_leaderboard_end_to_end_then_cache_hits(tmp_path):
    first = run(tmp_path)
    # train, 3 ceiling instances, 3 floor seeds (seed 0 is also the untrained zoo row), tiny
    assert not first.failures and len(first.report.results) == 8
    table = first.table
    assert set(table["model"]) == {"tiny", "ctrnn-untrained"}
    assert set(table["benchmark"]) == {"fake.task.test-ne", "fake.task.generalisation-ne",
                                       "fake.task.noise-ne"}
    untrained = table[table["model"] == "ctrnn-untrained"]
    assert abs(untrained["normalised"].mean()) < 1e-12  # the floor is the untrained mean
    assert (table["ceiling"] < table["floor"]).all()  # NE: lower is better
    assert (table["ceiling_sd"] > 0).all()  # instances 1-3 differ (gain 1.02, 1.04, 1.06)
    for name in ("leaderboard.csv", "leaderboard.md", "leaderboard.html", "leaderboard.json",
                 "leaderboard-summary.csv"):
        assert (tmp_path / "out" / name).is_file()
    zoo_run = tmp_path / "out" / "zoo" / "tiny-seed0"
    assert sorted(p.name for p in zoo_run.iterdir()) == ["config.json", "history.csv",
                                                         "metrics.json", "model.pt"]
    store = Store(tmp_path / "cache")
    record = json.loads(next((store.root / "scores").glob("*/v1/*.json")).read_text())
    assert {"platform", "created", "seeds", "wall_s", "worker"} <= set(record["provenance"])
    run_record = json.loads((store.run_dir(TINY.run_hash()) / "record.json").read_text())
    assert run_record["config"] == TINY.to_dict() and run_record["metrics"]["test_ne"] > 0
    assert not (store.root / "scratch" / TINY.run_hash()).exists()

    second = run(tmp_path)
    assert second.report.results == [] and second.report.computed == 0
    pd.testing.assert_frame_equal(second.table, table)


def test_a_new_benchmark_version_is_a_cache_miss(tmp_path):
    run(tmp_path)
    bumped = Benchmark(**{**get("fake.task.test-ne").__dict__, "version": 2})
    again = run(tmp_path, benchmarks=[bumped, "fake.task.noise-ne"])
    assert len(again.report.results) == 7  # ceilings, floors and tiny: 1 benchmark each
    assert all(label.endswith(": 1 benchmarks") for label in labels(again))
    assert set(again.table["version"]) == {1, 2}


def test_changed_measuring_code_is_a_cache_miss(tmp_path, monkeypatch):
    from hdbench import versions

    run(tmp_path)
    monkeypatch.setitem(versions.COMPONENTS, "analysis", versions.COMPONENTS["analysis"] + 1)
    again = run(tmp_path)
    assert len(again.report.results) == 7  # every score again, no retraining
    assert not any(label.startswith("train") for label in labels(again))


def test_changed_training_code_retrains_and_replaces_the_committed_run(tmp_path, monkeypatch):
    from hdbench import versions

    run(tmp_path)
    committed = tmp_path / "out" / "zoo" / "tiny-seed0"
    before = json.loads((committed / "config.json").read_text())["run_hash"]
    old = versions.COMPONENTS["training"]
    monkeypatch.setitem(versions.COMPONENTS, "training", old + 1)
    lines = []
    stale = run(tmp_path, train=False, log=lines.append)
    assert set(stale.table["model"]) == {"ctrnn-untrained"}  # refused, not reused
    assert any("trained by other code" in line and f"training {old} -> {old + 1}" in line
               for line in lines)
    again = run(tmp_path, log=lines.append)
    assert "train tiny-seed0 (2 updates)" in labels(again)
    assert json.loads((committed / "config.json").read_text())["run_hash"] != before


def test_a_forced_run_recomputes_scores_only(tmp_path):
    run(tmp_path)
    forced = run(tmp_path, force=True)
    assert len(forced.report.results) == 7
    assert not any(label.startswith("train") for label in labels(forced))


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path, monkeypatch):
    written = []
    original = Store.write_score

    def write_then_die(self, *args, **kwargs):
        path = original(self, *args, **kwargs)
        written.append(path)
        if len(written) == 4:
            raise KeyboardInterrupt  # killed while storing
        return path

    monkeypatch.setattr(Store, "write_score", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path)
    monkeypatch.setattr(Store, "write_score", original)
    assert not (tmp_path / "out" / "leaderboard.csv").exists()
    resumed = run(tmp_path)
    assert not resumed.failures
    assert not any(label.startswith("train") for label in labels(resumed))  # kept
    assert 0 < len(resumed.report.results) < 8
    assert len(resumed.table) == 6


def test_failures_are_recorded_reported_and_do_not_stop_the_others(tmp_path):
    lines = []
    outcome = run(tmp_path, references=[FAKE, "fragile=tests.fakes:make_fragile"],
                  log=lines.append)
    failed = sorted(f.label for f in outcome.failures)
    assert failed == [f"reference fragile instance {k} vs fragile: 3 benchmarks"
                      for k in (1, 2, 3)]
    assert "3 FAILED" in lines[-1] and "cannot be built" in lines[-1]
    fragile = outcome.table[outcome.table["reference"] == "fragile"]
    assert (fragile["note"] == "no ceiling").all()  # scored, but not normalisable
    records = list((tmp_path / "cache" / "failures").rglob("*.json"))
    error = json.loads(records[0].read_text())["error"]
    assert error["type"] == "RuntimeError" and "cannot be built" in error["message"]
    assert "make_fragile" in error["traceback"]
    assert (tmp_path / "out" / "leaderboard.md").is_file()

    skipped = run(tmp_path, references=[FAKE, "fragile=tests.fakes:make_fragile"],
                  retry_failed=False)
    assert skipped.report.results == [] and len(skipped.failures) == 9  # listed, not retried
    retried = run(tmp_path, references=[FAKE, "fragile=tests.fakes:make_fragile"])
    assert len(retried.failures) == 3  # retried by default, and still failing


def test_a_broken_reference_is_refused_before_any_work(tmp_path):
    with pytest.raises(HdbenchError, match="cannot be built"):
        run(tmp_path, references=[FAKE, "broken=tests.fakes:make_broken"])
    assert not (tmp_path / "cache").exists()


def test_failing_and_degenerate_benchmarks(tmp_path):
    boom = Benchmark(family="dynamics", name="boom", score_fn=fakes.explode,
                     higher_is_better=True, reference="fake")
    flat = Benchmark(family="tuning", name="flat", score_fn=fakes.constant,
                     higher_is_better=True, reference="fake")
    outcome = run(tmp_path, benchmarks=["fake.task.test-ne", boom, flat])
    # every scored subject's boom benchmark is a failure: 3 ceilings, 3 floors, tiny
    assert len(outcome.failures) == 7
    assert all(f.label.endswith("fake.dynamics.boom") for f in outcome.failures)
    boom_rows = outcome.table[outcome.table["benchmark"] == "fake.dynamics.boom"]
    assert (boom_rows["note"] == "failed: benchmark exploded").all()
    flat_rows = outcome.table[outcome.table["benchmark"] == "fake.tuning.flat"]
    assert flat_rows["normalised"].isna().all()
    assert (flat_rows["note"] == "degenerate: ceiling == floor").all()
    tiny = outcome.summary[(outcome.summary["model"] == "tiny")
                           & (outcome.summary["reference"] == "fake")].set_index("family")
    assert tiny.loc["overall", "coverage"] == "0/2"  # neural: boom failed, flat degenerate
    assert tiny.loc["task", "coverage"] == "1/1"


def test_dry_run_plans_without_writing(tmp_path):
    lines = []
    outcome = run(tmp_path, dry_run=True, log=lines.append)
    planned = outcome.report.planned
    assert planned[0] == "train tiny-seed0 (2 updates)"
    assert "score tiny-seed0 vs fake (after training)" in planned
    assert sum("reference fake instance" in p for p in planned) == 3
    assert lines[0].startswith(f"dry run: {len(planned)} jobs would run")
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache" / "scores").exists()


def test_no_train_scores_only_what_exists_and_names_the_rest(tmp_path):
    lines = []
    outcome = run(tmp_path, train=False, log=lines.append)
    assert set(outcome.table["model"]) == {"ctrnn-untrained"}
    assert any("left out 1 zoo runs" in line and "tiny-seed0" in line for line in lines)
    provenance = json.loads((tmp_path / "out" / "leaderboard.json").read_text())["provenance"]
    assert provenance["not_trained"] == "tiny-seed0"
    assert not list((tmp_path / "cache").rglob("model.pt"))
    run(tmp_path)  # trained now: no longer left out
    again = run(tmp_path, train=False, log=lines.append)
    assert set(again.table["model"]) == {"tiny", "ctrnn-untrained"}


def test_zoo_checkpoints_are_reused_by_run_hash(tmp_path):
    run(tmp_path)
    fresh_cache = run(tmp_path, store=tmp_path / "other-cache", dry_run=True)
    assert not any(line.startswith("train") for line in fresh_cache.report.planned)
    changed = (ZooEntry("tiny", TINY.replace(updates=3)),)
    replanned = run(tmp_path, zoo=changed, store=tmp_path / "other-cache", dry_run=True)
    assert "train tiny-seed0 (3 updates)" in replanned.report.planned


def test_a_retrained_committed_run_is_a_new_subject(tmp_path):
    """Same config, other weights (e.g. copied in by hand): its scores are not reused."""
    import torch

    run(tmp_path)
    other = tmp_path / "other-cache"  # without the run: the committed copy is scored
    first = run(tmp_path, store=other)
    assert "tiny-seed0 vs fake: 3 benchmarks" in labels(first)
    assert run(tmp_path, store=other).report.results == []
    committed = tmp_path / "out" / "zoo" / "tiny-seed0" / "model.pt"
    saved = torch.load(committed, weights_only=True)
    saved["state"]["V"] = saved["state"]["V"] + 0.5
    torch.save(saved, committed)
    again = run(tmp_path, store=other)
    assert labels(again) == ["tiny-seed0 vs fake: 3 benchmarks"]


def test_bad_inputs_are_clear_errors(tmp_path):
    with pytest.raises(HdbenchError, match="unknown benchmark"):
        run(tmp_path, benchmarks=["fake.task.nope"])
    with pytest.raises(HdbenchError, match="not being scored"):
        run(tmp_path, benchmarks=["other.task.test-ne"])
    with pytest.raises(HdbenchError, match="unique"):
        run(tmp_path, references=[FAKE, FAKE])
    with pytest.raises(HdbenchError, match="model id"):
        ZooEntry("bad id", TINY)
    with pytest.raises(HdbenchError, match="unique"):
        run(tmp_path, zoo=TINY_ZOO + TINY_ZOO[:1])
    (tmp_path / "file").write_text("")
    with pytest.raises(HdbenchError, match="not a folder"):
        run(tmp_path, out_dir=tmp_path / "file")
    with pytest.raises(HdbenchError, match="non-empty"):
        run(tmp_path, out_dir="")
    assert not (tmp_path / "cache").exists()  # refused before any work


def test_zoos_are_data():
    assert {e.model_id for e in QUICK_ZOO} == {"ctrnn-quick", "gru-quick", "ctrnn-untrained"}
    assert all(e.config.updates <= 700 for e in QUICK_ZOO if e.trained)
    ids = {e.model_id for e in ZOO}
    assert {"ctrnn", "ctrnn-cueva-0p1x", "ctrnn-cueva-3x", "ctrnn-rodent", "ctrnn-fly", "gru",
            "lstm", "vanilla", "ctrnn-untrained"} <= ids
    kao = [e for e in ZOO if e.model_id.startswith("kao-")]
    assert {(e.config.model_options["activation"], e.config.rate_penalty) for e in kao} == {
        (f, r) for f in ("retanh", "tanh", "relu", "softplus") for r in (0.0, 1e-3, 1e-2)}
    assert all(len(e.seeds) >= 3 for e in ZOO)
    # the published schedule, except the sparse-recording students (the experiment's schedule)
    trained = [e.config for e in ZOO if e.trained and e.config.teacher is None]
    assert all(c.lr_schedule == "cosine" and c.input_lr_factor == 10 for c in trained)
    students = [e for e in ZOO if e.config.teacher is not None]
    assert {e.config.teacher for e in students} == {"fly", "rodent"}
    hashes = [c.run_hash() for e in ZOO if e.trained for _, c in e.configs()]
    assert len(set(hashes)) == len(hashes)


def test_cli_dry_run_and_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HDBENCH_HOME", str(tmp_path / "home"))
    assert main(["leaderboard", "--quick", "--dry-run", "--reference", FAKE,
                 "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "would run: train ctrnn-quick-seed0 (700 updates)" in out
    assert str(tmp_path / "home") in out
    assert main(["leaderboard", "--dry-run", "--reference", "x=tests.fakes:nothing"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot import reference factory" in err


def test_leaderboard_help_stays_light():
    code = ("import sys; from hdbench.cli import build_parser; "
            "build_parser().parse_args(['leaderboard', '--quick', '--jobs', '2']); "
            "print(sorted(m for m in ('torch', 'pandas', 'distributed') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip() == "[]"


@pytest.mark.slow
def test_leaderboard_on_a_loopback_dask_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(host="127.0.0.1", n_workers=2, threads_per_worker=1,
                                  processes=True, dashboard_address=None) as cluster:
        outcome = run(tmp_path, dask_scheduler=cluster.scheduler_address)
    assert not outcome.failures and len(outcome.report.results) == 8
    assert len(outcome.table) == 6
    workers = {r.worker["pid"] for r in outcome.report.results}
    assert all(r.worker["torch_threads"] == 1 for r in outcome.report.results)
    assert len(workers) >= 1


def test_validity_status_can_come_from_another_folder(tmp_path):
    """The quick leaderboard takes the full battery's status (`--validity`); a missing file is
    a one-line error before anything is computed."""
    from hdbench.scoring import validity as v

    with pytest.raises(HdbenchError, match="no such file"):
        run(tmp_path, validity_file=tmp_path / "none.csv")
    assert not (tmp_path / "cache").exists()
    status = tmp_path / "full" / "benchmark_validity.csv"
    status.parent.mkdir()
    rows = [{"reference": "fake", "benchmark": "fake.task.test-ne", "family": "task",
             "version": 1, "test": test, "statistic": 1.0, "threshold": 0.0, "passed": True,
             "detail": ""} for test in v.REQUIRED]
    pd.DataFrame(rows).to_csv(status, index=False)
    outcome = run(tmp_path, validity_file=status)
    header = json.loads(outcome.paths["json"].read_text())["provenance"]
    assert header["validity"] == f"1 benchmarks validated ({status.as_posix()})"
    md = outcome.paths["md"].read_text()
    assert "validated" in md
    code = main(["leaderboard", "--quick", "--out", str(tmp_path / "cli"), "--validity",
                 str(tmp_path / "none.csv"), "--quiet"])
    assert code != 0
