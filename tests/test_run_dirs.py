"""Run directories and the cache under concurrent use, damage, divergence and bad starts."""

import json
import multiprocessing
import os
import time

import pytest
import torch

from hdbench.atomic import atomic_write_text, remove_stale_temporaries
from hdbench.errors import HdbenchError
from hdbench.runs import Run, load_system
from hdbench.training import TrainConfig, TrainingDiverged, evaluate, train

TINY = TrainConfig(model_options={"n_units": 8}, updates=4, batch_size=4, val_every=2,
                   val_trials=4, test_trials=4, checkpoint_every=2)
FORK = multiprocessing.get_context("fork")


def _race_train(run_dir, seed, start, results):
    while time.time() < start:
        time.sleep(0.001)
    try:
        train(TINY.replace(seed=seed), run_dir, progress=False)
        results.put((seed, "ok"))
    except HdbenchError as err:
        results.put((seed, str(err)))


def test_two_processes_training_into_one_run_directory(tmp_path):
    """Synchronised starts, 10 tries: one run wins, the other gets a one-line refusal, and the
    directory never mixes the two runs."""
    outcomes = []
    for attempt in range(10):
        run_dir = tmp_path / f"race{attempt}"
        results = FORK.Queue()
        start = time.time() + 0.5
        procs = [FORK.Process(target=_race_train, args=(run_dir, seed, start, results))
                 for seed in (4, 5)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=120)
        got = dict(results.get(timeout=5) for _ in procs)
        winners = [seed for seed, text in got.items() if text == "ok"]
        assert len(winners) == 1, got
        loser = next(text for seed, text in got.items() if text != "ok")
        assert "in use by" in loser or "already holds a run" in loser, loser
        outcomes.append("in use" if "in use by" in loser else "already holds")
        run = Run.load(run_dir)
        assert run.config.seed == winners[0] and run.finished
        saved = torch.load(run_dir / "model.pt", weights_only=True)
        assert json.loads(saved["config"])["seed"] == winners[0]
        assert json.loads((run_dir / "metrics.json").read_text())["run_hash"] == \
            TINY.replace(seed=winners[0]).run_hash()
    assert len(outcomes) == 10


def test_a_held_lock_is_refused_and_released_by_death(tmp_path):
    run_dir = tmp_path / "run"
    ready, stop = FORK.Event(), FORK.Event()

    def hold():
        from hdbench.runs import run_lock

        run_lock(run_dir).acquire()
        ready.set()
        stop.wait(60)
        os._exit(0)  # dies holding the lock

    holder = FORK.Process(target=hold)
    holder.start()
    assert ready.wait(30)
    with pytest.raises(HdbenchError, match=f"in use by process {holder.pid}"):
        train(TINY, run_dir, progress=False)
    stop.set()
    holder.join(30)
    assert train(TINY, run_dir, progress=False)["status"] == "finished"


def test_a_diverging_run_stops_with_a_status_and_resume_does_not_crash(tmp_path):
    bad = TINY.replace(lr=1e30, updates=6, val_every=6)  # diverges before any validation
    with pytest.raises(TrainingDiverged, match="diverged at update"):
        train(bad, tmp_path / "nan", progress=False)
    metrics = json.loads((tmp_path / "nan" / "metrics.json").read_text())
    assert metrics["status"] == "diverged" and metrics["test_ne"] is None
    assert not (tmp_path / "nan" / "model.pt").exists()
    assert Run.load(tmp_path / "nan").status == "diverged"
    with pytest.raises(TrainingDiverged):  # the same message again, no TypeError
        train(bad, tmp_path / "nan", resume=True, progress=False)


def test_a_run_diverging_after_a_finite_validation_keeps_its_best_model(tmp_path, monkeypatch):
    import hdbench.training.trainer as trainer

    original = trainer.masked_mse
    calls = []

    def nan_after_three(outputs, targets, mask):
        calls.append(1)
        loss = original(outputs, targets, mask)
        return loss * float("nan") if len(calls) > 3 else loss

    monkeypatch.setattr(trainer, "masked_mse", nan_after_three)
    metrics = train(TINY.replace(updates=6, val_every=1), tmp_path / "late", progress=False)
    assert metrics["status"] == "diverged" and metrics["diverged_at"] == 4
    assert metrics["best_update"] == 3 and metrics["test_ne"] > 0
    assert (tmp_path / "late" / "model.pt").is_file()
    again = train(TINY.replace(updates=6, val_every=1), tmp_path / "late", resume=True,
                  progress=False)
    assert again == json.loads((tmp_path / "late" / "metrics.json").read_text())


def test_resume_refuses_a_checkpoint_of_another_config(tmp_path):
    train(TINY, tmp_path / "a", progress=False, stop_after=2)
    train(TINY.replace(seed=3), tmp_path / "b", progress=False, stop_after=2)
    (tmp_path / "a" / "checkpoint.pt").write_bytes((tmp_path / "b" / "checkpoint.pt")
                                                   .read_bytes())
    with pytest.raises(HdbenchError, match="written by a run with another config"):
        train(TINY, tmp_path / "a", resume=True, progress=False)


def test_nothing_without_a_config_is_overwritten(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("precious")
    with pytest.raises(HdbenchError, match="not empty and holds no training run"):
        train(TINY, folder, progress=False)
    assert (folder / "notes.txt").read_text() == "precious"
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]


def test_a_start_that_fails_leaves_nothing(tmp_path, monkeypatch):
    import hdbench.training.trainer as trainer

    def boom(*args, **kwargs):
        raise RuntimeError("the first update failed")

    monkeypatch.setattr(trainer, "make_trials", boom)
    with pytest.raises(RuntimeError):
        train(TINY, tmp_path / "fresh", progress=False)
    assert not (tmp_path / "fresh").exists()
    monkeypatch.undo()
    assert train(TINY, tmp_path / "fresh", progress=False)["status"] == "finished"
    with pytest.raises(HdbenchError, match="seed must be an integer"):
        train(TINY.replace(seed=-1), tmp_path / "bad-seed", progress=False)
    assert not (tmp_path / "bad-seed").exists()


def test_impossible_sizes_are_refused_before_allocating(tmp_path):
    for changes in ({"batch_size": 10**12}, {"model_options": {"n_units": 10**7}}):
        with pytest.raises(HdbenchError, match="GiB"):
            train(TINY.replace(**changes), tmp_path / "huge", progress=False)
    assert not (tmp_path / "huge").exists()


def test_damaged_run_files_give_one_line_errors(tmp_path):
    run_dir = tmp_path / "run"
    train(TINY, run_dir, progress=False)
    config = (run_dir / "config.json").read_text()
    (run_dir / "config.json").write_text(config[:40])
    with pytest.raises(HdbenchError, match="not readable JSON"):
        evaluate(run_dir)
    (run_dir / "config.json").write_text(json.dumps({"run_hash": "x"}))
    with pytest.raises(HdbenchError, match="no 'config' object"):
        Run.load(run_dir)
    (run_dir / "config.json").write_text(config)
    saved = torch.load(run_dir / "model.pt", weights_only=True)
    del saved["model_options"]
    torch.save(saved, run_dir / "model.pt")
    with pytest.raises(HdbenchError, match="lacks model_options"):
        load_system(str(run_dir))


def test_resume_recomputes_damaged_metrics(tmp_path):
    run_dir = tmp_path / "run"
    first = train(TINY, run_dir, progress=False)
    (run_dir / "metrics.json").write_text("{garbled")
    again = train(TINY, run_dir, resume=True, progress=False)
    assert again["test_ne"] == pytest.approx(first["test_ne"])
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "finished"


def test_temporaries_of_dead_writers_are_removed_on_the_next_write(tmp_path):
    target = tmp_path / "table.csv"
    dead = FORK.Process(target=lambda: None)
    dead.start()
    dead.join()
    stale = tmp_path / f".table.csv.{dead.pid}.abc123.tmp"
    stale.write_text("half")
    live = tmp_path / f".table.csv.{os.getppid()}.def456.tmp"  # a live writer's: kept
    live.write_text("in progress")
    atomic_write_text(target, "done")
    assert target.read_text() == "done" and not stale.exists() and live.exists()
    assert remove_stale_temporaries(target) == []


def test_load_system_names_every_kind_and_never_assumes_a_task(tmp_path):
    run_dir = tmp_path / "run"
    train(TINY.replace(task="fly"), run_dir, progress=False)
    loaded = load_system(str(run_dir))
    assert loaded.kind == "run" and loaded.task == "fly"
    assert load_system("rodent").task == "rodent" and load_system("rodent").kind == "reference"
    model = tmp_path / "mine.py"
    model.write_text("from tests.fakes import FakeRing\n\ndef make():\n    return FakeRing()\n")
    user = load_system(f"{model}:make")
    assert user.kind == "user" and user.task is None
    with pytest.raises(HdbenchError, match="is not a reference circuit"):
        load_system("no-such-thing")


def _race_leaderboard(root, index, start, results):
    from hdbench.leaderboard import run_leaderboard
    from hdbench.scoring.task_benchmarks import TASK_BENCHMARKS
    from hdbench.zoo import ZooEntry

    while time.time() < start:
        time.sleep(0.001)
    outcome = run_leaderboard(
        zoo=(ZooEntry("tiny", TINY),), references=["fake=tests.fakes:make_ring"],
        benchmarks=TASK_BENCHMARKS, quick=True, out_dir=root / f"out{index}",
        store=root / "shared-cache", progress=False, log=lambda line: None)
    trained = sum(r.label.startswith("train") for r in outcome.report.results)
    results.put((index, len(outcome.failures), trained,
                 outcome.table[["model", "benchmark", "raw"]].to_json()))


def test_two_leaderboards_sharing_one_cache(tmp_path):
    """Synchronised starts on one cache: both finish without failures and with the same
    table, and the shared training job runs once (the second process waits for it)."""
    results = FORK.Queue()
    start = time.time() + 0.5
    procs = [FORK.Process(target=_race_leaderboard, args=(tmp_path, i, start, results))
             for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    got = sorted(results.get(timeout=5) for _ in procs)
    assert [failures for _, failures, _, _ in got] == [0, 0]
    assert sum(trained for _, _, trained, _ in got) == 1
    assert got[0][3] == got[1][3]
    assert not list((tmp_path / "shared-cache").rglob("*.tmp"))
