"""The committed trained models keep their run hashes, so the leaderboard reuses them.

A spelled-out default model option changes the hash (``{"noise_location": "state"}`` is not
``{}`` for the CTRNN): the committed ``results/zoo/ctrnn-seed*`` runs were trained with the option
spelled out and the quick ones without, so no normalisation of the options can keep both sets
of hashes; the zoo entries spell out exactly what each committed run was trained with.
"""

import json
from pathlib import Path

import pytest

from hdbench import __version__
from hdbench.leaderboard import find_run
from hdbench.store import Store
from hdbench.training import TrainConfig
from hdbench.zoo import QUICK_ZOO, ZOO

ROOT = Path(__file__).resolve().parent.parent
RUN_FILES = ("config.json", "model.pt", "metrics.json")


def _finished(run_dir: Path) -> bool:
    """A finished run (a run still training in place has no model.pt yet)."""
    return all((run_dir / name).is_file() for name in RUN_FILES)


COMMITTED = sorted(path for path in (ROOT / "results").glob("**/zoo/*/config.json")
                   if _finished(path.parent))


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: str(p.parent.relative_to(ROOT)))
def test_committed_runs_keep_their_hash(path):
    stored = json.loads(path.read_text())
    if stored["hdbench_version"] != __version__:
        pytest.skip("the package version changed: every run hash changes with it")
    assert TrainConfig.from_dict(stored["config"]).run_hash() == stored["run_hash"]


@pytest.mark.parametrize("zoo, folder", [(ZOO, "results"), (QUICK_ZOO, "results/quick")])
def test_zoo_entries_find_their_committed_runs(zoo, folder, tmp_path):
    store = Store(tmp_path / "empty-cache")
    for entry in zoo:
        for seed, config in entry.configs():
            run_dir = ROOT / folder / "zoo" / entry.run_name(seed)
            if entry.trained and _finished(run_dir):
                assert find_run(config, store, run_dir) == run_dir, entry.run_name(seed)
