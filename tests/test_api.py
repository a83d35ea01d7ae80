"""The Python API (hdbench.score / load_leaderboard / rank / benchmarks) and its example."""

import importlib.util
import math
from pathlib import Path

import pandas as pd
import pytest

import hdbench
from hdbench.errors import HdbenchError
from tests.ring_system import ring_ctrnn

ROOT = Path(__file__).resolve().parent.parent
FAKE = "fake=tests.fakes:make_ring"
FAKE_BENCHES = ["fake.task.test-ne", "fake.representation.procrustes"]


def test_score_a_system_held_in_memory(tmp_path):
    table = hdbench.score(ring_ctrnn(8), references=[FAKE], quick=True, benchmarks=FAKE_BENCHES,
                          store=tmp_path)
    assert list(table["benchmark"]) == sorted(FAKE_BENCHES)
    assert table["raw"].notna().all() and table["normalised"].notna().all()
    summary = table.attrs["summary"]
    assert set(summary["family"]) == {"task", "representation", "overall"}
    assert table.attrs["failures"] == []
    again = hdbench.score(ring_ctrnn(8), references=[FAKE], quick=True,
                          benchmarks=FAKE_BENCHES, store=tmp_path)
    pd.testing.assert_frame_equal(again, table)  # cached, keyed by behaviour
    other = hdbench.score(ring_ctrnn(8, k=0.05), references=[FAKE], quick=True,
                          benchmarks=FAKE_BENCHES, store=tmp_path)
    assert not math.isclose(other["raw"].iloc[1], table["raw"].iloc[1])


def test_rank_against_a_table_without_rescoring(tmp_path):
    mine = hdbench.score(ring_ctrnn(8), references=[FAKE], quick=True, benchmarks=FAKE_BENCHES,
                         store=tmp_path)
    published = mine.copy()
    published["model"] = "zoo-model"
    published["raw"] = published["floor"]  # scores exactly the floor
    published["normalised"] = 0.0
    published.attrs = {"provenance": {"quick": True}}
    ranking = hdbench.rank(mine, published)
    assert list(ranking["model"]) == ["my-model", "zoo-model"]
    assert list(ranking["submitted"]) == [True, False]
    published.attrs = {"provenance": {"quick": False}}
    with pytest.raises(HdbenchError, match="full protocol"):
        hdbench.rank(mine, published)
    published.attrs = {"provenance": {"quick": True, "code_components": "task v0"}}
    with pytest.raises(HdbenchError, match="measured by other code"):
        hdbench.rank(mine, published)
    published.attrs = {"provenance": {"quick": True}}
    published["version"] = 99
    with pytest.raises(HdbenchError, match="version 99 in the leaderboard"):
        hdbench.rank(mine, published)


def test_benchmarks_are_listed_with_their_descriptions():
    table = hdbench.benchmarks()
    assert {"id", "family", "version", "measurement", "comparison", "citation"} <= \
        set(table.columns)
    assert (table["measurement"].str.len() > 0).all()
    fly_task = hdbench.benchmarks("fly", "task")
    assert set(fly_task["id"]) == {"fly.task.test-ne", "fly.task.generalisation-ne",
                                   "fly.task.noise-ne"}


def test_every_committed_csv_opens_with_plain_read_csv():
    paths = sorted((ROOT / "results").rglob("*.csv"))
    assert paths
    for path in paths:
        table = pd.read_csv(path)
        assert len(table.columns) > 2 and len(table) > 0, path


def test_the_example_scores_a_user_model_and_ranks_it(tmp_path):
    spec = importlib.util.spec_from_file_location("score_my_model",
                                                  ROOT / "examples" / "score_my_model.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    scores, ranking = example.main(quick=True, references=["fly"],
                                   benchmarks=["fly.task.test-ne", "fly.representation.cka"],
                                   store=tmp_path, updates=20)
    assert set(scores["benchmark"]) == {"fly.task.test-ne", "fly.representation.cka"}
    assert ranking["submitted"].sum() == 1 and "my-gru" in set(ranking["model"])
    assert {"ctrnn-quick", "ctrnn-untrained"} <= set(ranking["model"])
