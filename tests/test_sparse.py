"""Training on sparse recordings of a teacher (issue 8) and the sparse-recordings experiment."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hdbench import versions
from hdbench.cli import main
from hdbench.errors import HdbenchError
from hdbench.training import TrainConfig, train
from hdbench.training import recordings as rec
from hdbench.training.config import TEACHER_FIELDS

REPO = Path(__file__).resolve().parents[1]
# Fields of a config before the teacher fields existed: their serialisation must not change.
LEGACY_FIELDS = {"model", "model_options", "task", "seed", "updates", "batch_size", "lr",
                 "input_lr_factor", "lr_schedule", "lr_final_factor", "weight_decay",
                 "grad_clip", "rate_penalty", "adaptive_rate_penalty", "weight_l2", "noise_std",
                 "val_every", "val_trials", "test_trials", "checkpoint_every"}
TINY = dict(updates=4, batch_size=4, val_every=2, val_trials=4, test_trials=4,
            checkpoint_every=2, bank_trials=8, bank_refresh=3)


def tiny(p=0.1, **changes) -> TrainConfig:
    return TrainConfig(model="ctrnn", model_options={"n_units": 90}, task="fly", seed=1,
                       teacher="fly", record_fraction=p, **{**TINY, **changes})


# -- config and run hashes ------------------------------------------------------------------------

def test_default_config_serialises_as_before_and_hashes_with_the_code(monkeypatch):
    config = TrainConfig()
    assert set(config.to_dict()) == LEGACY_FIELDS
    before = config.run_hash()
    for component in ("analysis", "metrics"):  # measurements do not change a trained model
        monkeypatch.setitem(versions.COMPONENTS, component, versions.COMPONENTS[component] + 1)
        assert config.run_hash() == before
    for component in versions.TRAINING_COMPONENTS:
        monkeypatch.setitem(versions.COMPONENTS, component, versions.COMPONENTS[component] + 1)
        assert config.run_hash() != before, component
        before = config.run_hash()


def test_teacher_fields_serialised_only_when_set():
    config = tiny()
    data = config.to_dict()
    assert data["teacher"] == "fly" and data["record_fraction"] == 0.1
    assert data["activity_weight"] == 1.0 and "record_seed" not in data
    assert TrainConfig.from_dict(data) == config
    assert config.run_hash() != config.replace(record_fraction=0.2).run_hash()
    assert tiny(p=1).run_hash() == tiny(p=1.0).run_hash()
    assert set(TEACHER_FIELDS) - set(data) == {"record_seed"}


@pytest.mark.parametrize("changes, message", [
    ({"record_fraction": 0.1}, "only apply with a teacher"),
    ({"teacher": "fly"}, "needs record_fraction"),
    ({"teacher": "fly", "record_fraction": 1.5}, r"\[0, 1\]"),
    ({"teacher": "fly", "record_fraction": -0.1}, r"\[0, 1\]"),
    ({"teacher": "fly", "record_fraction": 0.1, "model": "gru"}, "must be a ctrnn"),
    ({"teacher": "fly", "record_fraction": 0.1, "bank_trials": 8, "batch_size": 16},
     "bank_trials"),
])
def test_config_rejects_bad_teacher_fields(changes, message):
    with pytest.raises(HdbenchError, match=message):
        TrainConfig(**changes)


# -- the recorded sample ---------------------------------------------------------------------------

def test_sample_is_deterministic_nested_and_sized():
    a, b = rec.sample_recorded(81, 0.1, 3), rec.sample_recorded(81, 0.1, 3)
    assert np.array_equal(a, b) and a.size == 8 and len(set(a.tolist())) == 8
    assert not np.array_equal(a, rec.sample_recorded(81, 0.1, 4))
    assert np.array_equal(rec.sample_recorded(81, 0.2, 3)[:8], a)  # nested in p
    assert [rec.record_count(p, 81) for p in (0, 0.001, 0.02, 0.05, 0.5, 1.0)] == \
        [0, 1, 2, 4, 41, 81]


def test_sample_is_stored_with_the_run(tmp_path):
    config = tiny(record_seed=5)
    metrics = train(config, tmp_path / "run", progress=False)
    expected = rec.sample_recorded(81, 0.1, 5).tolist()
    stored = json.loads((tmp_path / "run" / "recorded.json").read_text())
    assert stored["teacher_units"] == expected and stored["record_seed"] == 5
    assert stored["student_units"] == list(range(len(expected)))
    assert metrics["recording"] == stored
    assert rec.read_recording(tmp_path / "run") == stored
    scale = rec.rate_scale("fly")[expected]
    assert np.allclose(stored["scale"], scale) and np.all(scale > 0)
    assert np.isfinite(metrics["test_activity_mse"]) and metrics["test_activity_mse"] > 0


def test_rate_scale_maps_the_calibration_peak_to_rate_peak():
    from hdbench.task import get_spec, make_trials

    teacher = rec.load_teacher("fly")
    spec = get_spec("fly")
    trials = make_trials(spec, rec.CALIBRATION_TRIALS, [rec.CALIBRATION_STREAM, 0])
    rates = rec.teacher_rates(teacher, trials)[:, spec.cue_steps:]
    scaled = rates * rec.rate_scale("fly")
    assert np.allclose(scaled.max(axis=(0, 1)), rec.RATE_PEAK, rtol=1e-5)


# -- the activity loss -----------------------------------------------------------------------------

def _loss_inputs():
    g = torch.Generator().manual_seed(0)
    rates = torch.rand(3, 20, 10, generator=g)
    units = (4, 7, 1)
    target = torch.rand(3, 20, 3, generator=g)
    mask = torch.ones(3, 20, dtype=torch.bool)
    mask[:, :5] = False
    return rates, units, target, mask


def test_activity_loss_is_zero_when_assigned_units_equal_the_teacher():
    rates, units, target, mask = _loss_inputs()
    matched = rates.clone()
    matched[..., list(units)] = target
    assert rec.activity_loss(matched, target, units, mask).item() == 0.0
    matched[..., 0] += 5.0  # a free unit: still zero
    matched[:, :5, 4] += 5.0  # a cue step: still zero
    assert rec.activity_loss(matched, target, units, mask).item() == 0.0
    matched[:, 10, 7] += 0.5
    assert rec.activity_loss(matched, target, units, mask).item() > 0.0


def test_activity_loss_value_is_the_masked_mean():
    rates, units, target, mask = _loss_inputs()
    expected = ((rates[:, 5:, list(units)] - target[:, 5:]) ** 2).mean()
    assert torch.isclose(rec.activity_loss(rates, target, units, mask), expected)


def test_activity_loss_gradient_flows_only_through_assigned_units():
    rates, units, target, mask = _loss_inputs()
    rates.requires_grad_(True)
    rec.activity_loss(rates, target, units, mask).backward()
    grad = rates.grad.abs().sum(dim=(0, 1))
    free = [u for u in range(10) if u not in units]
    assert torch.all(grad[list(units)] > 0) and torch.all(grad[free] == 0)
    assert torch.all(rates.grad[:, :5] == 0)  # no gradient from cue steps


def test_activity_loss_of_nothing_recorded_is_zero():
    rates, _, _, mask = _loss_inputs()
    assert rec.activity_loss(rates, torch.zeros(3, 20, 0), (), mask).item() == 0.0


# -- training --------------------------------------------------------------------------------------

def _states(run_dir):
    return torch.load(Path(run_dir) / "model.pt", weights_only=True)["state"]


def test_p0_is_output_only(tmp_path, monkeypatch):
    """p = 0 never simulates the teacher and trains exactly as λ_act = 0 on the same trials."""
    calls = []
    original = rec.teacher_rates
    monkeypatch.setattr(rec, "teacher_rates", lambda *a: calls.append(1) or original(*a))
    zero = train(tiny(p=0.0), tmp_path / "p0", progress=False)
    assert zero["teacher_simulation_s"] == 0.0 and zero["recording"]["k"] == 0
    assert zero["test_activity_mse"] == 0.0
    n_calls = len(calls)  # only the calibration of the rate scale, never the bank
    assert n_calls <= 1
    train(tiny(p=0.1, activity_weight=0.0), tmp_path / "off", progress=False)
    assert len(calls) > n_calls
    on = train(tiny(p=0.1), tmp_path / "on", progress=False)
    a, b, c = _states(tmp_path / "p0"), _states(tmp_path / "off"), _states(tmp_path / "on")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    assert zero["test_ne"] == pytest.approx(on["test_ne"], rel=0.5)


def test_teacher_bank_is_a_function_of_the_update():
    config = tiny()
    recording = rec.recording_for(config)
    teacher = rec.load_teacher("fly")
    first = rec.TeacherBank(config, recording, teacher)
    later = rec.TeacherBank(config, recording, teacher)
    batches = [first.batch(u) for u in range(5)]
    assert all(torch.equal(x, y) for x, y in zip(batches[4], later.batch(4), strict=True))
    x, _, mask, target = batches[0]
    assert target.shape == (4, 500, recording.k) and x.shape == (4, 500, 3)
    assert not torch.equal(batches[0][0], batches[1][0])


def test_resume_gives_the_uninterrupted_result(tmp_path):
    config = tiny(updates=7)
    train(config, tmp_path / "whole", progress=False)
    partial = train(config, tmp_path / "part", progress=False, stop_after=4)
    assert partial["stopped_at"] == 4
    train(config, tmp_path / "part", resume=True, progress=False)
    a, b = _states(tmp_path / "whole"), _states(tmp_path / "part")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "whole" / "history.csv").read_text() == \
        (tmp_path / "part" / "history.csv").read_text()


def test_trained_run_can_be_a_teacher(tmp_path):
    plain = TrainConfig(model="ctrnn", task="cueva-1x", **{k: v for k, v in TINY.items()
                                                           if not k.startswith("bank")})
    train(plain, tmp_path / "teacher", progress=False)
    student = TrainConfig(model="ctrnn", task="cueva-1x", teacher=str(tmp_path / "teacher"),
                          record_fraction=0.5, **TINY)
    metrics = train(student, tmp_path / "student", progress=False)
    assert metrics["recording"]["k"] == 50 and metrics["recording"]["teacher_task"] == "cueva-1x"


# -- command line ----------------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--teacher", "fly", "--record-fraction", "1.5"], "(0, 1]"),
    (["--teacher", "fly", "--record-fraction", "0"], "(0, 1]"),
    (["--teacher", "fly", "--record-fraction", "-0.2"], "(0, 1]"),
    (["--teacher", "fly"], "needs --record-fraction"),
    (["--record-fraction", "0.1"], "needs --teacher"),
    (["--teacher", "flz", "--record-fraction", "0.1"], "unknown teacher 'flz'"),
    (["--teacher", "rodent", "--record-fraction", "1"], "student has 100 units but 192"),
    (["--teacher", "fly", "--record-fraction", "0.1", "--task", "cueva-1x"],
     "built for task preset 'fly'"),
    (["--teacher", "fly", "--record-fraction", "0.1", "--model", "gru"], "must be a ctrnn"),
])
def test_cli_errors_are_one_line(tmp_path, capsys, args, message):
    out = tmp_path / "run"
    code = main(["train", *args, "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
    assert "Traceback" not in err and not out.exists()


def test_cli_trains_and_resumes_a_student(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--teacher", "fly", "--record-fraction", "0.1", "--units", "90",
            "--updates", "3", "--batch-size", "4", "--out", str(out), "--quiet"]
    assert main(args) == 0
    config = json.loads((out / "config.json").read_text())["config"]
    assert config["task"] == "fly" and config["teacher"] == "fly"
    assert (out / "recorded.json").is_file()
    assert main(args) == 2  # the directory holds a run
    assert "--resume" in capsys.readouterr().err
    assert main([*args, "--resume"]) == 0


# -- the experiment --------------------------------------------------------------------------------

def test_prediction_r2_is_one_for_linear_targets_and_low_for_noise():
    from hdbench.experiments.sparse_recordings import prediction_r2

    rng = np.random.default_rng(0)
    source = rng.standard_normal((10, 50, 6))
    linear = source @ rng.standard_normal((6, 3)) + 2.0
    assert np.allclose(prediction_r2(source, linear), 1.0, atol=1e-4)
    noise = rng.standard_normal((10, 50, 4))
    assert np.all(prediction_r2(source, noise) < 0.1)


def test_student_config_sizes_the_student_for_p1():
    from hdbench.experiments.sparse_recordings import student_config

    for teacher in ("fly", "rodent"):
        config = student_config(teacher, 1.0)
        assert config.task == teacher
        assert config.model_options["n_units"] >= rec.load_teacher(teacher).n_units
        rec.recording_for(config)  # does not raise


def test_zoo_has_sparse_students():
    from hdbench.experiments.sparse_recordings import student_config
    from hdbench.zoo import ZOO

    entries = {e.model_id: e for e in ZOO if e.model_id.startswith("sparse-")}
    assert "sparse-fly-p0p1" in entries and "sparse-rodent-p0p1" in entries
    assert entries["sparse-fly-p0p1"].config == student_config("fly", 0.1)


@pytest.mark.slow
def test_experiment_end_to_end(tmp_path, monkeypatch):
    """Tiny experiment: CSV contract, summary, and a rerun that computes nothing."""
    from hdbench.experiments import sparse_recordings as sr

    monkeypatch.setattr(sr, "QUICK_EVAL_TRIALS", 32)
    monkeypatch.setattr(sr, "QUICK_GENERALISATION_TRIALS", 8)
    lines = []
    kwargs = dict(quick=True, seeds=[0], fractions=[0.0, 0.5], updates=2,
                  out_dir=tmp_path / "out", store=tmp_path / "cache", progress=False,
                  log=lines.append)
    first = sr.run_sparse_recordings("fly", **kwargs)
    assert not first.failures and len(first.results) == 4
    path = tmp_path / "out" / "experiments" / "sparse-recordings-fly.csv"
    assert first.path == path
    text = path.read_text()
    assert text.startswith("# experiment:")
    table = sr.read_table(path)
    assert list(table.columns) == list(sr.COLUMNS)
    measures = set(table["measure"])
    for name in ("unrecorded.shape_distance", "unrecorded.cka", "unrecorded.r2",
                 "population.shape_distance", "population.cka", "test_ne",
                 "generalisation_ne.speed2x", "generalisation_ne.long2x",
                 "generalisation_ne.hold", "decode_error_deg.hold", "type_fraction_distance",
                 "connectivity_profile_corr", "silencing_agreement"):
        assert name in measures, name
    assert set(table["record_fraction"]) == {0.0, 0.5}
    assert any("mean ± SD" in line for line in lines)
    second = sr.run_sparse_recordings("fly", **kwargs)
    assert second.results == [] and sr.read_table(path).equals(table)


def test_student_is_a_leaderboard_row(tmp_path):
    from hdbench.leaderboard import run_leaderboard
    from hdbench.zoo import ZooEntry

    entry = ZooEntry("sparse-fly-tiny", tiny(p=0.5, updates=2), seeds=(0,))
    outcome = run_leaderboard(zoo=[entry], references=["fly"],
                              benchmarks=["fly.task.test-ne", "fly.representation.cka"],
                              quick=True, out_dir=tmp_path / "out", store=tmp_path / "cache",
                              progress=False, log=lambda line: None)
    assert not outcome.failures
    rows = outcome.table[outcome.table["model"] == "sparse-fly-tiny"]
    assert set(rows["benchmark"]) == {"fly.task.test-ne", "fly.representation.cka"}
    assert (tmp_path / "out" / "zoo" / "sparse-fly-tiny-seed0" / "model.pt").is_file()
