import json

import numpy as np
import pytest
import torch

from hdbench.errors import HdbenchError
from hdbench.training import TrainConfig, checkpoint, evaluate, load_model, train
from hdbench.training.losses import masked_mse, normalized_error, rate_penalty
from hdbench.training.trainer import _learning_rate

TINY = dict(model_options={"n_units": 8}, updates=6, batch_size=4, val_every=2, val_trials=4,
            test_trials=4, checkpoint_every=2)


def test_masked_mse_by_hand():
    out = torch.tensor([[[1.0, 0.0], [2.0, 2.0], [0.0, 1.0]]])
    tgt = torch.zeros(1, 3, 2)
    mask = torch.tensor([[False, True, True]])
    # masked entries: (2, 2) and (0, 1) → squared errors 4 + 4 + 0 + 1 over 4 entries
    assert masked_mse(out, tgt, mask).item() == pytest.approx(9 / 4)
    assert rate_penalty(torch.tensor([1.0, 3.0])).item() == pytest.approx(5.0)


def test_normalized_error_by_hand():
    tgt = np.array([[[1.0, 0.0], [3.0, 0.0], [5.0, 0.0]]])  # channel 1 constant
    mask = np.array([[True, True, True]])
    out = tgt.copy()
    assert normalized_error(out, tgt, mask) == 0.0
    # constant predictor at the mean of channel 0 → NE_0 = 1; channel 1 exact → 0
    out[..., 0] = 3.0
    assert normalized_error(out, tgt, mask) == pytest.approx(0.5)
    # a constant channel contributes its raw SSE: error 0.5 on 3 entries → 0.75
    out[..., 1] = 0.5
    assert normalized_error(out, tgt, mask) == pytest.approx((1 + 0.75) / 2)
    # masked entries are ignored
    out2 = tgt.copy()
    out2[0, 0, 0] = 100.0
    assert normalized_error(out2, tgt, np.array([[False, True, True]])) == 0.0


def test_normalized_error_ignores_non_finite_masked_entries():
    tgt = np.array([[[1.0, 0.0], [3.0, 0.0], [5.0, 1.0]]])
    out = tgt.copy()
    out[0, 0] = [np.nan, np.inf]
    assert normalized_error(out, tgt, np.array([[False, True, True]])) == 0.0
    assert np.isnan(normalized_error(out, tgt, np.array([[True, True, True]])))


def test_normalized_error_matches_the_indexed_formula():
    rng = np.random.default_rng(0)
    out, tgt = rng.normal(size=(2, 7, 5, 2)), rng.normal(size=(2, 7, 5, 2))
    mask = rng.random((2, 7, 5)) < 0.6
    y, t = out[mask], tgt[mask]
    expected = np.mean(((y - t) ** 2).sum(0) / ((t - t.mean(0)) ** 2).sum(0))
    assert normalized_error(torch.as_tensor(out), torch.as_tensor(tgt),
                            torch.as_tensor(mask)) == pytest.approx(expected, rel=1e-12)


def test_rate_penalty_gradient():
    rates = torch.randn(3, 4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(rate_penalty, (rates,))
    rate_penalty(rates).backward()
    torch.testing.assert_close(rates.grad, 2 * rates.detach() / rates.numel())


def test_cosine_schedule_ends_at_the_final_factor():
    cfg = TrainConfig(lr=1e-3, lr_schedule="cosine", lr_final_factor=0.01, updates=11)
    assert _learning_rate(cfg, 0) == pytest.approx(1e-3)
    assert _learning_rate(cfg, 10) == pytest.approx(1e-5)
    assert _learning_rate(TrainConfig(lr_schedule="constant"), 4999) == 1e-3
    assert TrainConfig().lr_schedule == "cosine" and TrainConfig().input_lr_factor == 10.0


def test_config_round_trips_and_validates():
    cfg = TrainConfig(**TINY)
    assert TrainConfig.from_dict(json.loads(cfg.to_json())) == cfg
    assert cfg.run_hash() == TrainConfig(**TINY).run_hash() != TrainConfig().run_hash()
    with pytest.raises(HdbenchError, match="updates"):
        TrainConfig(updates=-1)
    with pytest.raises(HdbenchError, match="preset"):
        TrainConfig(task="cueva-9x")
    with pytest.raises(HdbenchError, match="unknown training config keys"):
        TrainConfig.from_dict({"learning_rate": 1})


def test_train_writes_the_run_directory(tmp_path):
    metrics = train(TrainConfig(**TINY), tmp_path / "run", progress=False)
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"config.json", "checkpoint.pt", "history.csv", "model.pt", "metrics.json"} <= files
    lines = (tmp_path / "run" / "history.csv").read_text().splitlines()
    assert lines[0].startswith("update,loss,mse,ne,val_ne") and len(lines) == 7
    assert 0 < metrics["test_ne"] < 2
    assert evaluate(tmp_path / "run")["test_ne"] == pytest.approx(metrics["test_ne"])
    with pytest.raises(HdbenchError, match="already holds a run"):
        train(TrainConfig(**TINY), tmp_path / "run", progress=False)


def test_resume_reaches_the_same_weights_as_an_uninterrupted_run(tmp_path):
    cfg = TrainConfig(**TINY)
    train(cfg, tmp_path / "full", progress=False)
    partial = train(cfg, tmp_path / "cut", progress=False, stop_after=3)
    assert partial["stopped_at"] == 3
    train(cfg, tmp_path / "cut", progress=False, resume=True)
    a, b = load_model(tmp_path / "full"), load_model(tmp_path / "cut")
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0, msg=name)
    assert (tmp_path / "full" / "history.csv").read_text() == \
        (tmp_path / "cut" / "history.csv").read_text()


@pytest.mark.parametrize("model", ["gru", "lstm"])
def test_gated_runs_resume_and_rerun_identically(tmp_path, model):
    cfg = TrainConfig(**{**TINY, "model": model})
    train(cfg, tmp_path / "full", progress=False)
    train(cfg, tmp_path / "again", progress=False)
    train(cfg, tmp_path / "cut", progress=False, stop_after=3)
    train(cfg, tmp_path / "cut", progress=False, resume=True)
    a = load_model(tmp_path / "full").state_dict()
    for other in ("again", "cut"):
        for name, p in load_model(tmp_path / other).state_dict().items():
            torch.testing.assert_close(p, a[name], rtol=0, atol=0, msg=name)


def test_training_noise_is_addressed_by_seed_and_update():
    """The noise of update u of run seed s comes from (s, u) alone: no generator state."""
    from hdbench.training.trainer import _noise_generator

    def key(seed, update):
        return torch.randint(2**62, (1,), generator=_noise_generator(
            TrainConfig(seed=seed), update)).item()

    assert key(0, 7) == key(0, 7)
    assert len({key(0, 7), key(0, 8), key(1, 7)}) == 3


def test_resume_refuses_a_different_config(tmp_path):
    train(TrainConfig(**TINY), tmp_path / "run", progress=False, stop_after=2)
    with pytest.raises(HdbenchError, match="different config"):
        train(TrainConfig(**{**TINY, "lr": 0.1}), tmp_path / "run", progress=False, resume=True)


def test_adaptive_rate_penalty_only_shrinks(tmp_path):
    cfg = TrainConfig(**{**TINY, "rate_penalty": 10.0})
    train(cfg, tmp_path / "run", progress=False)
    lam = [float(line.split(",")[5]) for line in
           (tmp_path / "run" / "history.csv").read_text().splitlines()[1:]]
    assert lam[0] < 10.0 and all(b <= a for a, b in zip(lam, lam[1:], strict=False))


def test_checkpoints_round_trip_and_bad_files_give_clear_errors(tmp_path):
    path = tmp_path / "x.pt"
    checkpoint.save({"kind": "model", "w": torch.ones(3)}, path)
    assert torch.equal(checkpoint.load(path, kind="model")["w"], torch.ones(3))
    with pytest.raises(HdbenchError, match="expected a 'train-state'"):
        checkpoint.load(path, kind="train-state")
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(HdbenchError, match="not a readable hdbench checkpoint"):
        checkpoint.load(path)
    torch.save({"w": torch.ones(1)}, path)
    with pytest.raises(HdbenchError, match="no 'kind'"):
        checkpoint.load(path)
    with pytest.raises(HdbenchError, match="does not exist"):
        checkpoint.load(tmp_path / "missing.pt")


class Arbitrary:
    """Stands for any pickled object a malicious file could carry."""


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"kind": "model", "payload": Arbitrary()}, path)
    with pytest.raises(HdbenchError, match="not a readable"):
        checkpoint.load(path)


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    checkpoint.atomic_write_text(tmp_path / "a.txt", "hello")
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_input_weights_get_their_own_learning_rate():
    from hdbench.training.trainer import _optimizer, build_model

    for model in ("ctrnn", "gru"):
        cfg = TrainConfig(model=model, model_options={"n_units": 4}, input_lr_factor=10.0)
        net = build_model(cfg)
        groups = _optimizer(net, cfg).param_groups
        factors = {g["lr_factor"]: {id(p) for p in g["params"]} for g in groups}
        inputs = net.U if model == "ctrnn" else net.rnn.weight_ih_l0
        assert factors[10.0] == {id(inputs)}
        assert len(factors[1.0]) == len(list(net.parameters())) - 1


def test_atomic_writes_get_normal_permissions(tmp_path):
    import os

    checkpoint.atomic_write_text(tmp_path / "a.txt", "hello")
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~mask


def test_a_bad_model_option_fails_before_the_run_directory_is_written(tmp_path):
    with pytest.raises(HdbenchError, match="bad options"):
        train(TrainConfig(model_options={"n_layers": 2}), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
