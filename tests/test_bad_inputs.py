"""Every bad input a user session produced gets one line on stderr, no traceback, a non-zero
exit, and nothing lost (issue: "one scoring runner whose results can be trusted")."""

import json
import shutil

import numpy as np
import pytest
import torch

from hdbench.cli import main

TINY = ["--units", "6", "--updates", "2", "--batch-size", "3", "--quiet"]
FAKE = "fake=tests.fakes:make_ring"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A finished tiny run, and damaged copies of it."""
    root = tmp_path_factory.mktemp("runs")
    good = root / "good"
    assert main(["train", *TINY, "--out", str(good)]) == 0

    def damaged(name, edit):
        target = root / name
        shutil.copytree(good, target)
        edit(target)
        return target

    def no_options(path):
        saved = torch.load(path / "model.pt", weights_only=True)
        del saved["model_options"]
        torch.save(saved, path / "model.pt")

    return {
        "good": good,
        "garbled-config": damaged("garbled-config", lambda p: (p / "config.json").write_text(
            (p / "config.json").read_text()[:30])),
        "no-config-key": damaged("no-config-key", lambda p: (p / "config.json").write_text(
            json.dumps({"run_hash": "0"}))),
        "no-model-options": damaged("no-model-options", no_options),
        "file": (root / "a-file.txt", (root / "a-file.txt").write_text("x"))[0],
    }


@pytest.fixture(scope="module")
def activity(tmp_path_factory):
    """Exported quick trials of the fake reference and bad submissions for them."""
    root = tmp_path_factory.mktemp("activity")
    trials = root / "trials.npz"
    assert main(["export-trials", "--out", str(trials), "--quick", "--reference", FAKE]) == 0
    n, t = np.load(trials)["inputs"].shape[:2]
    rates = np.random.default_rng(0).random((n, t, 8))
    np.savez(root / "huge.npz", rates=rates * 1e300)
    np.savez(root / "complex.npz", rates=rates + 1j)
    return root


def bad_cases(runs, activity, tmp_path):
    garbled_board = tmp_path / "board"
    garbled_board.mkdir()
    (garbled_board / "leaderboard.csv").write_text(
        "model,seed,reference,benchmark,version,raw,ceiling,floor,normalised,error,family,"
        "higher_is_better,note\nctrnn,0,fly,fly.task.test-ne,1,0.1,0.0,1.0,0.9,,task,False,\n"
        "garbage,xx,fly,zz,1,oops,0.0,1.0,0.9,,task,False,\n")
    return [
        (["train", "--seed", "-1", "--out", str(tmp_path / "a")], "seed must be an integer"),
        (["train", "--seed", "1e23", "--out", str(tmp_path / "a")], "invalid int value"),
        (["train", "--seed", str(10**23), "--out", str(tmp_path / "a")],
         "seed must be an integer"),
        (["train", "--batch-size", "1e12", "--out", str(tmp_path / "a")], "positive integer"),
        (["train", "--batch-size", str(10**12), "--out", str(tmp_path / "a")], "GiB"),
        (["train", "--units", str(10**7), "--out", str(tmp_path / "a")], "GiB"),
        (["train", "--lr", "inf", "--out", str(tmp_path / "a")], "lr must be a finite number"),
        (["train", "--lr", "nan", "--out", str(tmp_path / "a")], "lr must be a finite number"),
        (["train", "--lr", "1e30", "--units", "6", "--updates", "30", "--batch-size", "3",
          "--quiet", "--out", str(tmp_path / "diverged")], "training diverged"),
        (["train", "--noise-std", "inf", "--out", str(tmp_path / "a")], "finite number"),
        (["train", "--out", ""], "non-empty path"),
        (["train", *TINY, "--out", str(runs["file"])], "not a folder"),
        (["train", *TINY, "--resume", "--out", str(runs["garbled-config"])],
         "not readable JSON"),
        (["evaluate", str(runs["garbled-config"])], "not readable JSON"),
        (["evaluate", str(runs["no-config-key"])], "no 'config' object"),
        (["evaluate", str(runs["no-model-options"])], "lacks model_options"),
        (["analyze", str(runs["no-model-options"]), "--quick"], "lacks model_options"),
        (["leaderboard", "--quick", "--out", str(runs["file"])], "not a folder"),
        (["leaderboard", "--quick", "--out", ""], "non-empty path"),
        (["score", "--activity", str(activity / "huge.npz"), "--quick", "--reference", FAKE,
          "--out", str(tmp_path / "s")], "overflow float64"),
        (["score", "--activity", str(activity / "complex.npz"), "--quick", "--reference", FAKE,
          "--out", str(tmp_path / "s")], "expected real numbers"),
        (["figures", "--results", str(garbled_board), "--only", "7",
          "--out", str(tmp_path / "figs")], "line 3"),
    ]


def test_every_bad_input_gets_one_line(runs, activity, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HDBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    cases = bad_cases(runs, activity, tmp_path)
    bad = []
    for args, message in cases:
        try:
            code = main(args)
        except SystemExit as exc:
            code = exc.code
        err = capsys.readouterr().err.strip()
        lines = [line for line in err.splitlines() if line.strip()]
        if code == 0 or message not in err or len(lines) != 1 or "Traceback" in err:
            bad.append((args, code, err[-300:]))
    print(f"{len(cases)} bad inputs tried, {len(cases) - len(bad)} gave one line")
    assert not bad, bad
    assert not (tmp_path / "a").exists()  # refused before the run directory was touched
    assert runs["file"].read_text() == "x"


def test_damaged_metrics_are_recomputed_on_resume(runs, tmp_path):
    target = tmp_path / "run"
    shutil.copytree(runs["good"], target)
    before = json.loads((target / "metrics.json").read_text())["test_ne"]
    (target / "metrics.json").write_text("{not json")
    assert main(["train", *TINY, "--resume", "--out", str(target)]) == 0
    assert json.loads((target / "metrics.json").read_text())["test_ne"] == \
        pytest.approx(before)
