"""The committed trained models were made by today's code, so the leaderboard reuses them.

A committed run whose stored run hash differs from its config's hash under today's component
versions (:mod:`hdbench.versions`) was made by other training code: the leaderboard would refuse
it (``--no-train``) or retrain it. These tests fail until such runs are retrained and
committed again (``hdbench leaderboard [--quick]`` replaces them in ``<out>/zoo``).
"""

from pathlib import Path

import pytest

from hdbench.runs import Run
from hdbench.scoring.runner import Runner
from hdbench.zoo import QUICK_ZOO, ZOO

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = sorted(path.parent for path in (ROOT / "results").glob("**/zoo/*/config.json"))


@pytest.mark.parametrize("run_dir", COMMITTED, ids=lambda p: str(p.relative_to(ROOT)))
def test_committed_runs_are_finished_and_made_by_todays_code(run_dir):
    run = Run.load(run_dir)
    assert run.finished, f"{run_dir} is not a finished run"
    assert run.matches_code(), run.code_mismatch() + "; retrain it"
    assert run.metrics()["status"] == "finished"


@pytest.mark.parametrize("zoo, folder", [(ZOO, "results"), (QUICK_ZOO, "results/quick")])
def test_zoo_entries_find_their_committed_runs(zoo, folder, tmp_path):
    runner = Runner(tmp_path / "empty-cache", log=lambda line: None)
    missing = []
    for entry in zoo:
        if not entry.trained:
            continue
        for seed, config in entry.configs():
            run_dir = ROOT / folder / "zoo" / entry.run_name(seed)
            if runner.find_run(config, run_dir) != run_dir:
                missing.append(entry.run_name(seed))
    assert not missing, f"no committed run of today's code for {', '.join(missing)}"
