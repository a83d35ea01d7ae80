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


# ------------------------------------------------ compiled gated loops against torch.nn

GATED = ["vanilla", "gru", "lstm"]


def _compiled_or_skip():
    from hdbench.core import _native

    if _native.ops() is None:
        pytest.skip(f"compiled loop unavailable: {_native.status()['error']}")
    return _native


def _gated_net(kind, n_units, dtype, seed=0):
    net = build(kind, n_units=n_units, init_seed=seed).to(dtype)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # off the initialisation's zeros
        for name in ("V", "h0", "c0"):
            if hasattr(net, name):
                getattr(net, name).copy_(0.5 * torch.randn(getattr(net, name).shape,
                                                           generator=g, dtype=dtype))
    return net


def _run(net, x, compiled, weights=None):
    """Rates and every parameter's gradient of a loss on outputs, penalty and rates."""
    native = _compiled_or_skip()
    net.zero_grad()
    with native.enabled(compiled):
        outputs, rates, penalty = net.training_forward(x)
    loss = outputs.square().mean() + 0.3 * penalty
    if weights is not None:
        loss = loss + (rates * weights).sum()
    loss.backward()
    return rates.detach(), {n: p.grad.clone() for n, p in net.named_parameters()}


def _rel(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


@pytest.mark.parametrize("kind", GATED)
def test_compiled_gated_loops_match_torch_nn_in_float64(kind):
    net = _gated_net(kind, 13, torch.float64)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 25, 3, generator=g, dtype=torch.float64)
    weights = torch.randn(3, 25, 13, generator=g, dtype=torch.float64)
    rates, grads = _run(net, x, True, weights)
    want_rates, want_grads = _run(net, x, False, weights)
    torch.testing.assert_close(rates, want_rates, rtol=1e-12, atol=1e-13)
    assert grads.keys() == want_grads.keys()
    for name, grad in grads.items():
        torch.testing.assert_close(grad, want_grads[name], rtol=1e-10, atol=1e-12, msg=name)
    with torch.no_grad():
        torch.testing.assert_close(net(x)[1], want_rates, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("kind", GATED)
def test_gated_loop_gradcheck(kind):
    from hdbench.core import gated

    _compiled_or_skip()
    g = torch.Generator().manual_seed(2)
    G, N, D = gated.GATES[kind], 3, 2

    def rand(*shape):
        return (0.5 * torch.randn(*shape, generator=g, dtype=torch.float64)).requires_grad_()

    x = torch.randn(2, 5, D, generator=g, dtype=torch.float64)
    params = [rand(G * N, D), rand(G * N, N), rand(G * N), rand(G * N), rand(2, N)]
    if kind == "lstm":
        params.append(rand(N))
    V = rand(2, N)

    def rates(*p):
        return gated.gated(kind, x, *p[:5], p[5] if kind == "lstm" else None)

    def fused(*p):
        c0 = p[5] if kind == "lstm" else None
        r, outputs, penalty = gated.gated_readout(kind, x, *p[:5], c0, p[-1])
        return r, outputs, penalty

    assert torch.autograd.gradcheck(rates, tuple(params))
    assert torch.autograd.gradcheck(fused, (*params, V))


@pytest.mark.parametrize("kind", GATED)
def test_compiled_gated_loops_match_torch_nn_at_the_cueva_shape(kind):
    """float32, B = 100, T = 500, N = 100: rates and gradients within 1e-5 (relative to the
    largest entry) of torch.nn in float64, and of torch.nn in float32 to that one's own error
    (up to 6e-5 for the LSTM's biases: it sums 50,000 terms per entry in float32)."""
    net = _gated_net(kind, 100, torch.float32, seed=3)
    x = torch.as_tensor(make_trials("cueva-1x", 100, seed=0).inputs)
    rates, grads = _run(net, x, True)
    want_rates, want_grads = _run(net, x, False)
    exact = _gated_net(kind, 100, torch.float64)
    exact.load_state_dict({k: v.double() for k, v in net.state_dict().items()})
    exact_rates, exact_grads = _run(exact, x.double(), False)
    assert _rel(rates.double(), exact_rates) < 1e-5 and _rel(rates, want_rates) < 1e-5
    for name, grad in grads.items():
        assert _rel(grad.double(), exact_grads[name]) < 1e-5, name
        assert _rel(grad, want_grads[name]) < 1e-4, name


@pytest.mark.parametrize("kind", GATED)
def test_compiled_gated_silencing_matches_torch_nn(kind):
    native = _compiled_or_skip()
    net = _gated_net(kind, 10, torch.float32)
    tr = make_trials("cueva-1x", 2, seed=0)
    for silence in (Silence(units=(1, 3), start=50, stop=80), Silence(units=(0,), start=0),
                    Silence(units=(2,), start=490, stop=900)):
        quiet = net.simulate(tr, silence=silence)
        with native.enabled(False):
            want = net.simulate(tr, silence=silence)
        np.testing.assert_allclose(quiet.rates, want.rates, rtol=1e-5, atol=1e-6)


def test_gated_models_fall_back_to_torch_nn_where_the_loop_cannot_run():
    _compiled_or_skip()
    net = build("gru", n_units=6)
    x = torch.randn(2, 7, 3, requires_grad=True)
    outputs, rates = net(x)
    (grad,) = torch.autograd.grad(rates.sum(), x)  # the inputs' gradient: torch.nn
    assert grad.shape == x.shape
    quiet = net(x.detach(), silence=Silence(units=(1,), start=2))[1]  # silencing with a graph
    assert quiet.grad_fn is not None and torch.all(quiet[:, 2:, 1] == 0)


@pytest.mark.parametrize("kind", GATED)
def test_committed_gated_models_load_and_run_compiled(kind):
    from pathlib import Path

    from hdbench.training import load_model

    native = _compiled_or_skip()
    run = Path(__file__).resolve().parent.parent / "results" / "zoo" / f"{kind}-seed0"
    if not (run / "model.pt").exists():
        pytest.skip(f"{run} is not committed")
    net = load_model(run)  # the torch.nn parameter names of the committed state dict
    tr = make_trials("cueva-1x", 20, seed=1)
    got = net.simulate(tr)
    with native.enabled(False):
        want = net.simulate(tr)
    np.testing.assert_allclose(got.rates, want.rates, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got.outputs, want.outputs, rtol=1e-5, atol=1e-5)


def test_gated_loop_rejects_mismatched_arguments():
    from hdbench.core import gated

    _compiled_or_skip()
    x = torch.zeros(2, 5, 3)
    W_ih, W_hh, b = torch.zeros(12, 3), torch.zeros(12, 4), torch.zeros(12)
    with pytest.raises(HdbenchError, match="dtype"):
        gated.gated("gru", x.double(), W_ih, torch.zeros(12, 4), b, b, torch.zeros(4))
    with pytest.raises(HdbenchError, match="weights must be"):
        gated.gated("gru", x, W_ih, torch.zeros(12, 5), b, b, torch.zeros(5))
    with pytest.raises(HdbenchError, match="c0"):
        gated.gated("lstm", x, torch.zeros(16, 3), torch.zeros(16, 4), torch.zeros(16),
                    torch.zeros(16), torch.zeros(4))
    with pytest.raises(HdbenchError, match="unknown gated kind"):
        gated.gated("mgu", x, W_ih, W_hh, b, b, torch.zeros(4))
