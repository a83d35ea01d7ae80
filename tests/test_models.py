import numpy as np
import pytest
import torch

from hdbench.errors import HdbenchError
from hdbench.models import available, build
from hdbench.system import Activity, Silence, System
from hdbench.task import make_trials


def test_default_ctrnn_has_10700_parameters():
    net = build("ctrnn")
    assert sum(p.numel() for p in net.parameters()) == 10_700
    assert net.n_units == 100 and net.cell_types is None


def test_output_bias_is_zero_and_initial_output_is_zero():
    net = build("ctrnn")
    tr = make_trials("cueva-1x", 3, seed=0)
    act = net.simulate(tr)
    assert np.all(act.outputs == 0)  # readout initialised at 0, no bias


def test_zero_diagonal_survives_training_steps():
    net = build("ctrnn", n_units=16)
    opt = torch.optim.AdamW(net.parameters(), lr=0.1)
    x = torch.as_tensor(make_trials("cueva-1x", 4, seed=0).inputs[:, :30])
    for _ in range(3):
        out, rates = net(x)
        (rates.sum() + out.sum()).backward()
        opt.step()
        opt.zero_grad()
    assert np.all(np.diag(net.recurrent_weights()) == 0)
    with torch.no_grad():
        net.W.fill_(1.0)  # even a corrupted raw parameter cannot act on itself
    assert np.all(np.diag(net.recurrent_weights()) == 0)


def test_diagonal_has_no_effect_on_dynamics():
    net = build("ctrnn", n_units=8)
    x = torch.as_tensor(make_trials("cueva-1x", 2, seed=0).inputs[:, :20])
    _, before = net(x)
    with torch.no_grad():
        net.W.diagonal().fill_(5.0)
    _, after = net(x)
    torch.testing.assert_close(before, after)


def test_initialisation_follows_the_paper():
    net = build("ctrnn", init_seed=3)
    W = net.W.detach().numpy()
    off = W[~np.eye(100, dtype=bool)]
    assert off.std() == pytest.approx(0.15, rel=0.05)  # 1.5 / sqrt(100)
    assert net.b.detach().mean().item() == pytest.approx(0.1, abs=0.005)
    assert torch.all(net.a0 == 0) and torch.all(net.V == 0)
    assert build("ctrnn", init_seed=3).W.detach().numpy() == pytest.approx(W)


@pytest.mark.parametrize("name", ["ctrnn", "gru", "lstm", "vanilla"])
def test_every_model_has_the_system_interface(name):
    net = build(name, n_units=12)
    assert isinstance(net, System)
    tr = make_trials("cueva-1x", 3, seed=0)
    act = net.simulate(tr)
    assert isinstance(act, Activity)
    assert act.rates.shape == (3, 500, 12) and act.outputs.shape == (3, 500, 2)
    np.testing.assert_array_equal(act.heading, tr.heading)
    assert net.recurrent_weights().shape == (12, 12)
    raw = net.simulate(tr.inputs)
    np.testing.assert_allclose(raw.rates, act.rates)
    assert raw.heading is None


@pytest.mark.parametrize("name", ["ctrnn", "gru", "vanilla", "lstm"])
def test_silencing_zeroes_units_in_the_window_only(name):
    net = build(name, n_units=10)
    tr = make_trials("cueva-1x", 2, seed=0)
    free = net.simulate(tr)
    quiet = net.simulate(tr, silence=Silence(units=(1, 3), start=50, stop=80))
    assert np.all(quiet.rates[:, 50:80, [1, 3]] == 0)
    np.testing.assert_allclose(quiet.rates[:, :50], free.rates[:, :50], atol=1e-6)
    assert not np.allclose(quiet.rates[:, 80:], free.rates[:, 80:])


def test_noise_is_reproducible_and_off_by_default():
    net = build("ctrnn", n_units=10)
    tr = make_trials("cueva-1x", 2, seed=0)
    a = net.simulate(tr, seed=1, noise_std=0.1).rates
    b = net.simulate(tr, seed=1, noise_std=0.1).rates
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, net.simulate(tr).rates)


def test_registry_errors_name_the_known_models():
    assert available() == ["ctrnn", "gru", "lstm", "vanilla"]
    with pytest.raises(HdbenchError, match="known models: ctrnn"):
        build("transformer")
    with pytest.raises(HdbenchError, match="activation"):
        build("ctrnn", activation="sigmoidish")
    with pytest.raises(HdbenchError, match="bad options"):
        build("ctrnn", n_layers=3)


def test_bad_inputs_and_silence_are_rejected():
    net = build("ctrnn", n_units=5)
    with pytest.raises(HdbenchError, match="shape"):
        net.simulate(np.zeros((2, 10, 4)))
    with pytest.raises(HdbenchError, match="NaN"):
        net.simulate(np.full((2, 10, 3), np.nan))
    with pytest.raises(HdbenchError, match="out of range"):
        net.simulate(np.zeros((2, 10, 3)), silence=Silence(units=(7,)))


def test_state_noise_is_the_default_and_enters_through_the_state():
    net = build("ctrnn", n_units=6)
    assert net.config["noise_location"] == "state"
    x = torch.zeros(1, 3, 3)
    g = torch.Generator().manual_seed(0)
    _, rates = net(x, noise_std=0.1, generator=g)
    # one Euler step: a_1 = a_0 + α(−a_0 + W f(a_0) + b + ξ) with a_0 = 0 → the rate carries
    # α·ξ through f, never the raw ξ (which rate noise would add)
    clean = net(x)[1]
    assert 0 < (rates - clean).abs().max() < 0.1 * 0.1 * 5
    with pytest.raises(HdbenchError, match="noise_location"):
        build("ctrnn", noise_location="output")
