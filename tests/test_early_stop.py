"""``TrainConfig.target_val_ne``: training ends at the first validation below the target."""

import json

import pandas as pd
import pytest
import torch

from hdbench.errors import HdbenchError
from hdbench.training import TrainConfig, train

TINY = dict(model="ctrnn", model_options={"n_units": 12}, task="cueva-1x", seed=0, updates=16,
            batch_size=4, val_every=2, val_trials=8, test_trials=8, checkpoint_every=3,
            lr=1e-2, input_lr_factor=10.0, lr_schedule="constant")


def _val_history(run_dir) -> pd.DataFrame:
    return pd.read_csv(run_dir / "history.csv").dropna(subset=["val_ne"])


def _state(run_dir) -> dict:
    return torch.load(run_dir / "model.pt", weights_only=True)["state"]


@pytest.fixture(scope="module")
def free_run(tmp_path_factory):
    """The run without a target, and a target that its validations first beat at update k."""
    run_dir = tmp_path_factory.mktemp("free") / "run"
    train(TrainConfig(**TINY), run_dir, progress=False)
    val = _val_history(run_dir)
    values, updates = val["val_ne"].tolist(), val["update"].tolist()
    # a validation after the third that is a strict new minimum: stop there
    k = next(i for i in range(3, len(values)) if values[i] < min(values[:i]))
    target = 0.5 * (values[k] + min(values[:k]))
    return run_dir, target, int(updates[k])


def test_target_is_serialised_only_when_set():
    plain = TrainConfig(**TINY)
    assert "target_val_ne" not in plain.to_dict()
    stopped = plain.replace(target_val_ne=0.01)
    assert stopped.to_dict()["target_val_ne"] == 0.01
    assert TrainConfig.from_dict(stopped.to_dict()) == stopped
    assert stopped.run_hash() != plain.run_hash()
    assert TrainConfig(**TINY, target_val_ne=1).run_hash() == \
        TrainConfig(**TINY, target_val_ne=1.0).run_hash()


@pytest.mark.parametrize("bad", [0, -0.1, float("nan"), float("inf"), "0.01", True])
def test_bad_target_is_refused(bad):
    with pytest.raises(HdbenchError, match="target_val_ne"):
        TrainConfig(target_val_ne=bad)


def test_stops_at_the_first_validation_below_the_target(free_run, tmp_path):
    free_dir, target, stop = free_run
    config = TrainConfig(**TINY, target_val_ne=target)
    metrics = train(config, tmp_path / "run", progress=False)
    assert metrics["status"] == "finished" and metrics["reached_target"] is True
    assert metrics["updates_done"] == stop and metrics["best_update"] == stop
    assert metrics["best_val_ne"] < target
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    free = pd.read_csv(free_dir / "history.csv")
    assert history["update"].tolist() == list(range(1, stop + 1))
    pd.testing.assert_frame_equal(history, free.iloc[:stop])  # the same run, cut short
    # the model kept is the one of the stopping validation: rerun the free run to that point
    ref = tmp_path / "ref"
    train(TrainConfig(**{**TINY, "updates": stop}), ref, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(_state(ref).values(),
                                                 _state(tmp_path / "run").values(),
                                                 strict=True))
    assert json.loads((tmp_path / "run" / "metrics.json").read_text()) == metrics


def test_unreached_target_runs_to_the_end(free_run, tmp_path):
    free_dir, _, _ = free_run
    metrics = train(TrainConfig(**TINY, target_val_ne=1e-9), tmp_path / "run", progress=False)
    assert metrics["reached_target"] is False and metrics["updates_done"] == TINY["updates"]
    assert (tmp_path / "run" / "history.csv").read_text() == \
        (free_dir / "history.csv").read_text()


def test_resume_is_identical_and_a_finished_early_stop_stays_finished(free_run, tmp_path):
    _, target, stop = free_run
    config = TrainConfig(**TINY, target_val_ne=target)
    whole = train(config, tmp_path / "whole", progress=False)
    partial = train(config, tmp_path / "part", progress=False, stop_after=stop - 1)
    assert partial["stopped_at"] == stop - 1
    resumed = train(config, tmp_path / "part", resume=True, progress=False)
    for key in ("test_ne", "best_val_ne", "best_update", "updates_done", "reached_target"):
        assert resumed[key] == whole[key], key
    assert (tmp_path / "whole" / "history.csv").read_text() == \
        (tmp_path / "part" / "history.csv").read_text()
    assert all(torch.equal(a, b) for a, b in zip(_state(tmp_path / "whole").values(),
                                                 _state(tmp_path / "part").values(),
                                                 strict=True))
    # resuming a run that stopped at its target trains nothing more
    again = train(config, tmp_path / "whole", resume=True, progress=False)
    assert again == whole
    # ... also when its metrics were lost after the last checkpoint
    (tmp_path / "whole" / "metrics.json").unlink()
    (tmp_path / "whole" / "model.pt").unlink()
    redone = train(config, tmp_path / "whole", resume=True, progress=False)
    assert redone["test_ne"] == whole["test_ne"] and redone["updates_done"] == stop
