"""The integration core: fast path (hand-written BPTT) against the autograd reference.

Every test runs twice: with the compiled loops (``_loop.cpp``) and with the PyTorch loops.
"""

import os

import numpy as np
import pytest
import torch

import hdbench.core.dynamics as dynamics
import hdbench.models.ctrnn as ctrnn
from hdbench.core import ACTIVATIONS, _native, integrate, integrate_autograd, readout
from hdbench.errors import HdbenchError
from hdbench.models import build
from hdbench.system import Silence
from hdbench.task import make_trials

B, T, N, D = 2, 4, 3, 2
F64 = torch.float64


@pytest.fixture(autouse=True, params=["compiled", "pytorch"])
def loop(request, monkeypatch):
    """The loop under test: ``compiled`` skips where the extension is unavailable."""
    monkeypatch.delenv("HDBENCH_NO_EXTENSION", raising=False)
    compiled = request.param == "compiled"
    with _native.enabled(compiled):
        if compiled and _native.ops() is None:
            pytest.skip(f"compiled loop unavailable: {_native.status()['error']}")
        yield request.param


def _case(seed=0, *, inputs=False, bias=False, batch_a0=False, dtype=F64):
    """Tiny random (drive or inputs, W, a0, U, b), all requiring grad."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape, scale=1.0):
        return (scale * torch.randn(*shape, generator=g, dtype=dtype)).requires_grad_()

    drive = rand(B, T, D if inputs else N)
    U = rand(N, D) if inputs else None
    b = rand(N) if bias else None
    return drive, rand(N, N), rand(*((B, N) if batch_a0 else (N,)), scale=0.5), U, b


def _fn(impl, alpha, U=None, b=None, noise_seed=None, **options):
    """``impl`` as a function of (drive, W, a0[, U][, b]) for gradcheck."""
    def run(drive, W, a0, *weights):
        it = iter(weights)
        u = next(it) if U is not None else None
        bias = next(it) if b is not None else None
        generator = None if noise_seed is None else torch.Generator().manual_seed(noise_seed)
        return impl(drive, W, a0, alpha, input_weight=u, input_bias=bias, generator=generator,
                    **options)
    return run


def _inputs(drive, W, a0, U, b):
    return tuple(t for t in (drive, W, a0, U, b) if t is not None)


GRADCHECK_CASES = [
    # (activation, alpha, substeps, silence, W_mask, a0 per trial, inputs+U, bias, noise)
    ("retanh", 0.3, 1, None, False, False, False, False, ""),
    ("tanh", 0.3, 1, None, True, True, False, False, ""),
    ("relu", 0.5, 1, None, False, False, True, True, "state"),
    ("softplus", 0.2, 1, None, False, True, False, False, ""),
    ("linear", 0.2, 1, None, True, False, False, False, "state"),
    ("retanh", [0.2, 0.5, 1.0], 1, None, False, True, True, True, "rate"),
    ("tanh", 0.6, 3, None, False, False, True, False, "both"),
    ("relu", [0.3, 0.9, 0.6], 2, Silence(units=(1,), start=0, stop=2), True, True, False,
     False, "rate"),
    ("retanh", 0.4, 2, Silence(units=(0, 2), start=1, stop=3), True, False, True, True, "state"),
    ("softplus", [0.3, 0.9, 0.6], 1, Silence(units=(2,), start=2), False, False, False, False,
     "both"),
]


@pytest.mark.parametrize("case", GRADCHECK_CASES, ids=lambda c: f"{c[0]}-k{c[2]}")
def test_gradcheck_and_agreement_with_autograd(case):
    activation, alpha, substeps, silence, masked, batch_a0, inputs, bias, noise = case
    drive, W, a0, U, b = _case(1, inputs=inputs, bias=bias, batch_a0=batch_a0)
    if isinstance(alpha, list):
        alpha = torch.tensor(alpha, dtype=F64)
    mask = torch.tensor([[0.0, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=F64) if masked else None
    options = dict(activation=activation, substeps=substeps, silence=silence, W_mask=mask,
                   noise_std=0.1 if noise in ("rate", "both") else 0.0,
                   state_noise_std=0.2 if noise in ("state", "both") else 0.0)
    seed = 7 if noise else None
    fast = _fn(integrate, alpha, U, b, seed, **options)
    reference = _fn(integrate_autograd, alpha, U, b, seed, **options)
    args = _inputs(drive, W, a0, U, b)
    assert torch.autograd.gradcheck(fast, args)

    rates, expected = fast(*args), reference(*args)
    torch.testing.assert_close(rates, expected, rtol=1e-12, atol=1e-12)
    weights = torch.randn(rates.shape, generator=torch.Generator().manual_seed(3), dtype=F64)
    got = torch.autograd.grad((rates * weights).sum(), args)
    want = torch.autograd.grad((expected * weights).sum(), args)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("substeps", [1, 3])
def test_no_grad_path_and_preactivations_match_the_reference(activation, substeps):
    drive, W, a0, U, b = _case(2, inputs=True, bias=True)
    options = dict(activation=activation, substeps=substeps, noise_std=0.05,
                   state_noise_std=0.1, return_preactivations=True)
    with torch.no_grad():
        rates, pre = _fn(integrate, 0.3, U, b, 11, **options)(drive, W, a0, U, b)
        want_rates, want_pre = _fn(integrate_autograd, 0.3, U, b, 11, **options)(
            drive, W, a0, U, b)
    torch.testing.assert_close(rates, want_rates, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(pre, want_pre, rtol=1e-12, atol=1e-12)
    assert rates.shape == pre.shape == (B, T, N)


def test_preactivations_with_grad_fall_back_to_autograd():
    drive, W, a0, _, _ = _case(3)
    rates, pre = integrate(drive, W, a0, 0.2, return_preactivations=True)
    assert rates.grad_fn is not None and pre.grad_fn is not None
    torch.testing.assert_close(rates, integrate_autograd(drive, W, a0, 0.2))


def test_inputs_folded_into_the_product_equal_a_formed_drive():
    x, W, a0, U, b = _case(4, inputs=True, bias=True)
    folded = integrate(x, W, a0, 0.3, input_weight=U, input_bias=b)
    formed = integrate(torch.nn.functional.linear(x, U, b), W, a0, 0.3)
    torch.testing.assert_close(folded, formed, rtol=1e-12, atol=1e-12)
    got = torch.autograd.grad(folded.square().sum(), (x, W, a0, U, b))
    want = torch.autograd.grad(formed.square().sum(), (x, W, a0, U, b))
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-12)


def _rel(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def test_float32_cueva_shape_matches_autograd_through_the_model(monkeypatch):
    """B=100, N=100, T=500 with training noise; gradients of W, U, b (the drive), a0 and V."""
    torch.manual_seed(0)
    net = build("ctrnn")
    with torch.no_grad():  # move off the initialisation's special points (V = 0, a0 = 0)
        net.V.normal_(0.0, 0.1)
        net.a0.normal_(0.0, 0.5)
    x = torch.as_tensor(make_trials("cueva-1x", 100, seed=0).inputs)

    def run(impl):
        monkeypatch.setattr(ctrnn, "integrate", impl)
        net.zero_grad()
        outputs, rates = net(x, noise_std=0.1, generator=torch.Generator().manual_seed(5))
        (outputs.square().mean() + 0.01 * rates.square().mean()).backward()
        return rates.detach(), {n: p.grad.clone() for n, p in net.named_parameters()}

    rates, grads = run(integrate)
    want_rates, want_grads = run(integrate_autograd)
    assert rates.dtype == torch.float32 and rates.shape == (100, 500, 100)
    assert _rel(rates, want_rates) <= 1e-4
    for name in ("W", "U", "b", "a0", "V"):
        assert _rel(grads[name], want_grads[name]) <= 1e-4, name


def test_float32_folded_inputs_match_autograd_at_the_cueva_shape():
    torch.manual_seed(1)
    x = 0.1 * torch.randn(100, 500, 3)
    W = (1.5 / 10 * torch.randn(100, 100)).requires_grad_()
    U = torch.randn(100, 3).requires_grad_()
    b = (0.1 + 0.01 * torch.randn(100)).requires_grad_()
    a0 = (0.5 * torch.randn(100)).requires_grad_()
    mask = 1.0 - torch.eye(100)
    got = integrate(x, W, a0, 0.1, input_weight=U, input_bias=b, W_mask=mask)
    want = integrate_autograd(x, W, a0, 0.1, input_weight=U, input_bias=b, W_mask=mask)
    assert _rel(got, want) <= 1e-4
    grads = torch.autograd.grad(got.square().mean(), (W, U, b, a0))
    want_grads = torch.autograd.grad(want.square().mean(), (W, U, b, a0))
    for g, w in zip(grads, want_grads, strict=True):
        assert _rel(g, w) <= 1e-4


def test_silenced_rates_are_zero_in_the_window_and_unaffected_before():
    g = torch.Generator().manual_seed(5)
    drive, W, a0 = torch.randn(3, 30, 6, generator=g), torch.randn(6, 6, generator=g), \
        torch.rand(6, generator=g)
    free = integrate(drive, W, a0, 0.2, substeps=2)
    quiet = integrate(drive, W, a0, 0.2, substeps=2, silence=Silence(units=(1, 4), start=10,
                                                                     stop=20))
    assert torch.all(quiet[:, 10:20][..., [1, 4]] == 0)
    assert torch.equal(quiet[:, :10], free[:, :10])
    assert not torch.allclose(quiet[:, 20:], free[:, 20:])
    from_start = integrate(drive, W, a0, 0.2, silence=Silence(units=(0,)))
    assert torch.all(from_start[..., 0] == 0)


def test_silenced_rates_carry_no_gradient():
    drive, W, a0, _, _ = _case(6)
    rates = integrate(drive, W, a0, 0.5, activation="tanh",
                      silence=Silence(units=(1,), start=1, stop=3))
    for grad in torch.autograd.grad(rates[:, 1:3, 1].sum(), (drive, W, a0), retain_graph=True):
        assert torch.all(grad == 0)
    # the unit's state keeps integrating its drive in the window, so later rates depend on it
    (grad,) = torch.autograd.grad(rates[:, 3, 1].sum(), drive)
    assert torch.all(grad[:, 1:3, 1] != 0)


def test_noise_is_reproducible_from_the_generator_seed():
    drive, W, a0, _, _ = _case(7, dtype=torch.float32)

    def noisy(seed):
        return integrate(drive, W, a0, 0.3, noise_std=0.1,
                         generator=torch.Generator().manual_seed(seed)).detach()

    assert torch.equal(noisy(1), noisy(1))
    assert not torch.allclose(noisy(1), noisy(2))
    quiet = integrate(drive, W, a0, 0.3).detach()
    assert (noisy(1) - quiet).abs().max() > 0.01


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_state_noise_has_the_stationary_variance_of_the_euler_ou_process(activation):
    """W = 0, no drive: a ← (1 − α) a + α ξ, so Var(a) = α σ² / (2 − α) in the stationary state."""
    alpha, sigma = 0.2, 0.5
    B, T, N = 400, 300, 4
    with torch.no_grad():
        _, pre = integrate(torch.zeros(B, T, N, dtype=F64), torch.zeros(N, N, dtype=F64),
                           torch.zeros(N, dtype=F64), alpha, activation=activation,
                           state_noise_std=sigma, generator=torch.Generator().manual_seed(0),
                           return_preactivations=True)
    stationary = pre[:, 100:]
    want = alpha * sigma**2 / (2 - alpha)
    assert abs(stationary.var().item() / want - 1) < 0.03
    assert abs(stationary.mean().item()) < 0.01


def test_per_unit_time_constants():
    """With W = 0 the units are independent: unit i follows its own alpha_i."""
    drive = torch.randn(2, 25, 3, generator=torch.Generator().manual_seed(8))
    W, a0 = torch.zeros(3, 3), torch.zeros(3)
    alphas = torch.tensor([0.05, 0.3, 1.0])
    together = integrate(drive, W, a0, alphas, activation="tanh")
    for i, alpha in enumerate(alphas.tolist()):
        alone = integrate(drive, W, a0, alpha, activation="tanh")
        torch.testing.assert_close(together[..., i], alone[..., i])
    # alpha = 1: the state is the drive itself
    torch.testing.assert_close(together[..., 2], torch.tanh(drive[..., 2]))


def test_repeated_single_trial_calls_do_not_share_memory():
    drive, W, a0, _, _ = _case(9, dtype=torch.float32)
    first = integrate(drive[:1].detach(), W.detach(), a0.detach(), 0.3)
    kept = first.clone()
    integrate(2.0 * drive[:1].detach(), W.detach(), a0.detach(), 0.3)
    assert torch.equal(first, kept)


def test_inference_mode_then_training_mode():
    drive, W, a0, _, _ = _case(11, dtype=torch.float32)
    generator = torch.Generator()
    with torch.inference_mode():
        first = integrate(drive, W, a0, 0.3, noise_std=0.1, generator=generator.manual_seed(0))
    again = integrate(drive, W, a0, 0.3, noise_std=0.1, generator=generator.manual_seed(0))
    again.sum().backward()
    torch.testing.assert_close(first, again.detach())


@pytest.mark.parametrize("bad, message", [
    (dict(drive=torch.zeros(2, 3)), "drive must be"),
    (dict(W=torch.zeros(3, 4)), "W must be"),
    (dict(W=torch.zeros(4, 4)), "drive must be"),
    (dict(a0=torch.zeros(2, 4)), "a0 must be"),
    (dict(alpha=0.0), "alpha"),
    (dict(alpha=1.5), "alpha"),
    (dict(alpha=torch.full((4,), 0.1)), "alpha"),
    (dict(substeps=0), "substeps"),
    (dict(substeps=1.5), "substeps"),
    (dict(activation="sigmoid"), "unknown activation"),
    (dict(W=torch.zeros(3, 3, dtype=F64)), "dtype"),
    (dict(input_weight=torch.zeros(3, 2)), "input_weight"),
    (dict(input_bias=torch.zeros(3)), "input_bias needs"),
    (dict(silence=Silence(units=(5,))), "out of range"),
    (dict(noise_std=-0.1), "noise_std must be"),
    (dict(state_noise_std=float("nan")), "state_noise_std must be"),
])
def test_bad_arguments_raise_clear_errors(bad, message):
    args = dict(drive=torch.zeros(2, 4, 3), W=torch.zeros(3, 3), a0=torch.zeros(3), alpha=0.1)
    args.update(bad)
    for impl in (integrate, integrate_autograd):
        with pytest.raises(HdbenchError, match=message):
            impl(**args)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    drive, W, a0, U, b = _case(10, inputs=True, bias=True)
    options = dict(activation="retanh", substeps=2, silence=Silence(units=(1,), start=1, stop=3))
    args = _inputs(drive, W, a0, U, b)
    cpu = _fn(integrate, 0.3, U, b, None, **options)
    on_gpu = [t.detach().cuda().requires_grad_() for t in args]
    gpu = _fn(integrate, 0.3, on_gpu[3], on_gpu[4], None, **options)
    rates_cpu, rates_gpu = cpu(*args), gpu(*on_gpu)
    np.testing.assert_allclose(rates_gpu.detach().cpu().numpy(), rates_cpu.detach().numpy(),
                               rtol=1e-10, atol=1e-12)
    grads_cpu = torch.autograd.grad(rates_cpu.square().sum(), args)
    grads_gpu = torch.autograd.grad(rates_gpu.square().sum(), on_gpu)
    for g, c in zip(grads_gpu, grads_cpu, strict=True):
        np.testing.assert_allclose(g.cpu().numpy(), c.numpy(), rtol=1e-9, atol=1e-12)
    noisy = integrate(drive.detach().cuda(), W.detach().cuda(), a0.detach().cuda(), 0.3,
                      noise_std=0.1, generator=torch.Generator("cuda").manual_seed(0))
    assert noisy.is_cuda and torch.isfinite(noisy).all()


@pytest.mark.parametrize("activation", ["retanh", "tanh", "relu", "linear", "softplus"])
@pytest.mark.parametrize("inputs", [True, False], ids=["folded", "dense"])
def test_wider_networks_agree_with_the_reference(activation, inputs):
    """N = 37, B = 5: full SIMD vectors and remainders in every pass; every option at once."""
    g = torch.Generator().manual_seed(12)
    n_units = 37

    def rand(*shape, scale=1.0):
        return (scale * torch.randn(*shape, generator=g, dtype=F64)).requires_grad_()

    x = rand(5, 9, 3 if inputs else n_units)
    W, a0 = rand(n_units, n_units, scale=n_units**-0.5), rand(5, n_units, scale=0.5)
    U, b = (rand(n_units, 3), rand(n_units)) if inputs else (None, None)
    alpha = 0.1 + 0.5 * torch.rand(n_units, generator=g, dtype=F64)
    options = dict(activation=activation, substeps=2, noise_std=0.1, state_noise_std=0.1,
                   silence=Silence(units=(3, 20, 36), start=2, stop=5))
    args = _inputs(x, W, a0, U, b)
    got = _fn(integrate, alpha, U, b, 1, **options)(*args)
    want = _fn(integrate_autograd, alpha, U, b, 1, **options)(*args)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    weights = torch.randn(got.shape, generator=g, dtype=F64)
    for grad, expected in zip(torch.autograd.grad((got * weights).sum(), args),
                              torch.autograd.grad((want * weights).sum(), args), strict=True):
        torch.testing.assert_close(grad, expected, rtol=1e-10, atol=1e-12)


def test_weight_gradient_in_one_product_after_the_loop(monkeypatch):
    """Large networks form dL/d[W, U, b] after the BPTT loop instead of inside it."""
    x, W, a0, U, b = _case(15, inputs=True, bias=True, batch_a0=True)
    fast = _fn(integrate, 0.3, U, b, 2, activation="tanh", substeps=2, noise_std=0.1)
    args = _inputs(x, W, a0, U, b)
    fixed_inputs = (x.detach(), W, a0, U, b)  # no gradient for x: P need not be kept whole

    def weight_grads():
        return torch.autograd.grad(fast(*fixed_inputs).square().sum(), (W, U, b))

    want = weight_grads()
    with monkeypatch.context() as patch:
        patch.setattr(dynamics, "_FUSED_WEIGHT_GRADIENT_BYTES", 0)
        assert torch.autograd.gradcheck(fast, args)
        got = weight_grads()
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_saturated_and_nan_states_match_the_reference(dtype):
    """States far beyond the range of exp, and a NaN, come out as with torch's functions."""
    drive = torch.tensor([[[-1e4, -200.0, -50.0, 0.0, 50.0, 200.0, 1e4, float("nan")]] * 3],
                         dtype=dtype)
    W, a0 = torch.zeros(8, 8, dtype=dtype), torch.zeros(8, dtype=dtype)
    for activation in ("retanh", "tanh", "relu", "linear", "softplus"):
        got = integrate(drive, W, a0, 0.5, activation=activation)
        want = integrate_autograd(drive, W, a0, 0.5, activation=activation)
        torch.testing.assert_close(got, want, equal_nan=True, rtol=1e-6, atol=1e-30)


def test_the_compiled_loop_is_used_where_it_can_be(loop):
    cpu = torch.zeros(1)
    if loop == "compiled":
        assert _native.for_call("retanh", cpu) is not None
        assert _native.for_call("linear", cpu.double()) is not None
        assert _native.for_call("softplus", cpu) is not None
    else:
        assert _native.for_call("retanh", cpu) is None
        assert _native.for_call("softplus", cpu) is None
    assert _native.for_call("tanh", cpu.half()) is None


def test_environment_variable_turns_the_compiled_loop_off(monkeypatch):
    monkeypatch.setenv("HDBENCH_NO_EXTENSION", "1")
    assert _native.ops() is None and _native.for_call("tanh", torch.zeros(1)) is None
    drive, W, a0, _, _ = _case(13)
    torch.testing.assert_close(integrate(drive, W, a0, 0.3), integrate_autograd(drive, W, a0, 0.3))


def test_a_failed_build_falls_back_with_one_warning(monkeypatch):
    def broken():
        raise RuntimeError("Error building extension 'hdbench_core_loop'\nmore compiler output")

    monkeypatch.setattr(_native, "_state", {"loaded": False, "ops": None, "error": None,
                                            "build_seconds": None})
    monkeypatch.setattr(_native, "_load", broken)
    _native.set_enabled(True)
    drive, W, a0, _, _ = _case(14)
    with pytest.warns(RuntimeWarning, match="PyTorch loop") as caught:
        first = integrate(drive, W, a0, 0.3)
        integrate(drive, W, a0, 0.3)
    assert len(caught) == 1 and "Error building extension" in str(caught[0].message)
    assert "more compiler output" not in str(caught[0].message)
    torch.testing.assert_close(first, integrate_autograd(drive, W, a0, 0.3))
    assert _native.status()["available"] is False


def test_pip_installed_ninja_is_put_on_path(monkeypatch):
    ninja = pytest.importorskip("ninja")
    monkeypatch.setattr(_native.shutil, "which", lambda name: None)
    monkeypatch.setenv("PATH", "/nowhere")
    _native._ninja_on_path()
    assert os.environ["PATH"].split(os.pathsep)[0] == ninja.BIN_DIR


@pytest.mark.parametrize("n_outputs", [1, 2, 7])
def test_readout_gradients(n_outputs):
    """The readout's hand-written backward: gradcheck, and autograd's matmul in float32."""
    rates = torch.randn(3, 5, 6, dtype=torch.float64, requires_grad=True)
    V = torch.randn(n_outputs, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(readout, (rates, V))
    rates32, V32 = (t.detach().float().requires_grad_() for t in (rates, V))
    grad = torch.randn(3, 5, n_outputs)
    readout(rates32, V32).backward(grad)
    want_rates, want_V = torch.autograd.grad(rates32 @ V32.T, (rates32, V32), grad)
    torch.testing.assert_close(rates32.grad, want_rates)
    torch.testing.assert_close(V32.grad, want_V)


# --------------------------------------------------------------------------- noise generator

def _compiled_only(loop):
    if loop != "compiled":
        pytest.skip("a property of the compiled loop")
    return _native.ops()


@pytest.mark.parametrize("counter, key, want", [
    # Random123 tests/kat_vectors, philox4x32 10 (Salmon et al. 2011)
    ([0, 0, 0, 0], [0, 0], [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]),
    ([0xFFFFFFFF] * 4, [0xFFFFFFFF] * 2, [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]),
    ([0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344], [0xA4093822, 0x299F31D0],
     [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1]),
])
def test_philox_matches_the_known_answers(loop, counter, key, want):
    ext = _compiled_only(loop)
    assert [w & 0xFFFFFFFF for w in ext.philox(counter, key)] == want


def test_normals_are_standard_normal_and_independent(loop):
    """Moments, tails and the whole distribution; no correlation between neighbouring units,
    the four normals of one counter, steps, streams and keys."""
    from scipy import stats

    from hdbench.core.dynamics import normal_block

    _compiled_only(loop)
    z = normal_block(12345, 1, (64, 100, 101), dtype=F64)  # N = 101: Q = 2525, padding
    flat = z.numpy().ravel()
    n = flat.size
    assert abs(flat.mean()) < 4 / n**0.5
    assert abs(flat.var() - 1) < 4 * (2 / n) ** 0.5
    assert abs(stats.skew(flat)) < 4 * (6 / n) ** 0.5
    assert abs(stats.kurtosis(flat)) < 4 * (24 / n) ** 0.5
    for threshold in (1.0, 2.0, 3.0, 4.0):
        p = 2 * stats.norm.sf(threshold)
        assert abs((np.abs(flat) > threshold).mean() - p) < 5 * (p / n) ** 0.5 + 1e-6
    assert stats.kstest(flat[:200_000], "norm").pvalue > 1e-3

    def corr(a, b):
        return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])

    step = z.reshape(64, -1).numpy()
    Q = (step.shape[1] + 3) // 4
    bound = 5 / (step[:, :Q].size) ** 0.5
    assert abs(corr(z[:, :, :-1].numpy(), z[:, :, 1:].numpy())) < bound  # neighbouring units
    assert abs(corr(z[:-1].numpy(), z[1:].numpy())) < bound  # successive steps
    for w in range(1, 4):  # the words of one counter: a Box-Muller pair and the other pair
        assert abs(corr(step[:, :Q], step[:, w * Q:(w + 1) * Q])) < bound
        squares = step[:, :Q] ** 2, step[:, w * Q:(w + 1) * Q] ** 2
        assert abs(corr(*squares)) < bound  # the radius is not shared
    other_stream = normal_block(12345, 0, (64, 100, 101), dtype=F64)
    other_key = normal_block(12346, 1, (64, 100, 101), dtype=F64)
    assert abs(corr(z.numpy(), other_stream.numpy())) < bound
    assert abs(corr(z.numpy(), other_key.numpy())) < bound


def test_normals_are_addressable_and_alike_on_every_kernel(loop):
    from hdbench.core.dynamics import normal_block

    ext = _compiled_only(loop)
    block = normal_block(7, 0, (5, 3, 37))
    assert torch.equal(block, normal_block(7, 0, (5, 3, 37)))
    assert torch.equal(block[2:], normal_block(7, 0, (5, 3, 37))[2:])
    assert not torch.equal(block, normal_block(8, 0, (5, 3, 37)))
    torch.testing.assert_close(normal_block(7, 0, (5, 3, 37), dtype=F64), block.double(),
                               rtol=0, atol=0)
    previous = ext.product_kernel(0)  # the portable generator
    try:
        portable = normal_block(7, 0, (5, 3, 37))
    finally:
        ext.product_kernel(previous)
    assert torch.equal(block, portable)


def test_rate_noise_reaches_the_rates_as_independent_normals():
    """W = 0, no drive, linear units: the rates are σz exactly, on either loop."""
    sigma = 0.3
    with torch.no_grad():
        rates = integrate(torch.zeros(200, 150, 40), torch.zeros(40, 40), torch.zeros(40), 0.5,
                          activation="linear", noise_std=sigma,
                          generator=torch.Generator().manual_seed(3))
    z = (rates / sigma).numpy()
    n = z.size
    assert abs(z.mean()) < 4 / n**0.5 and abs(z.var() - 1) < 4 * (2 / n) ** 0.5
    for a, b in ((z[:, 1:], z[:, :-1]), (z[..., 1:], z[..., :-1]), (z[1:], z[:-1])):
        assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 5 / n**0.5


def test_noise_is_the_same_for_a_key_with_or_without_a_graph():
    drive, W, a0, U, b = _case(16, inputs=True, bias=True, dtype=torch.float32)

    def run():
        return integrate(drive, W, a0, 0.3, input_weight=U, input_bias=b, noise_std=0.1,
                         state_noise_std=0.2, generator=torch.Generator().manual_seed(4))

    with torch.no_grad():
        free = run()
    torch.testing.assert_close(run().detach(), free, rtol=0, atol=0)


# ----------------------------------------------------------------------------- product kernel

@pytest.mark.parametrize("M, N, K", [(1, 1, 1), (3, 17, 5), (100, 100, 104), (7, 65, 300),
                                     (4, 400, 100), (100, 101, 400), (13, 129, 33)])
def test_the_product_kernel_matches_torch(loop, M, N, K):
    ext = _compiled_only(loop)
    g = torch.Generator().manual_seed(M * N + K)
    A, B = torch.randn(M, K, generator=g), torch.randn(K, N, generator=g)
    C = torch.randn(M, N, generator=g)
    want = A.double() @ B.double()
    for beta in (0.0, 1.0, 0.5):
        for a in (A, A.t().contiguous().t()):  # rows, or a transposed view
            out = C.clone() if beta else torch.full((M, N), float("nan"))
            ext.matmul(a, B, out, beta, 1)
            expected = want + beta * C.double()
            torch.testing.assert_close(out.double(), expected, rtol=1e-5, atol=1e-5 * K**0.5)
    rows = torch.empty(M, N)
    ext.matmul(A, B, rows, 0.0, 1)
    one = torch.empty(1, N)
    ext.matmul(A[-1:], B, one, 0.0, 1)
    assert torch.equal(one[0], rows[-1])  # a row does not depend on its neighbours


# ---------------------------------------------------------------- readout folded into the BPTT

@pytest.mark.parametrize("case", [
    ("retanh", 0.3, 1, None, "state"),
    ("tanh", [0.2, 0.5, 1.0], 2, Silence(units=(1,), start=1, stop=3), "both"),
    ("softplus", 0.4, 1, None, "rate"),
    ("relu", 0.5, 3, None, ""),
], ids=lambda c: f"{c[0]}-k{c[2]}-{c[4]}")
def test_integrate_readout_matches_a_separate_readout_and_penalty(case):
    from hdbench.core import integrate_readout, mean_square

    activation, alpha, substeps, silence, noise = case
    x, W, a0, U, b = _case(17, inputs=True, bias=True, batch_a0=True)
    V = (0.5 * torch.randn(2, N, dtype=F64)).requires_grad_()
    if isinstance(alpha, list):
        alpha = torch.tensor(alpha, dtype=F64)
    options = dict(input_weight=U, input_bias=b, activation=activation, substeps=substeps,
                   silence=silence, noise_std=0.1 if noise in ("rate", "both") else 0.0,
                   state_noise_std=0.2 if noise in ("state", "both") else 0.0)
    weights = torch.randn(B, T, N, dtype=F64, generator=torch.Generator().manual_seed(1))
    target = torch.randn(B, T, 2, dtype=F64, generator=torch.Generator().manual_seed(2))
    params = (W, a0, U, b, V)

    def loss(rates, outputs, penalty):  # outputs, penalty and a further use of the rates
        return ((outputs - target) ** 2).mean() + 0.7 * penalty + (rates * weights).sum()

    gen = torch.Generator()
    rates, outputs, penalty = integrate_readout(x.detach(), W, a0, alpha, V,
                                                generator=gen.manual_seed(5), **options)
    got = torch.autograd.grad(loss(rates, outputs, penalty), params)
    want_rates = integrate(x.detach(), W, a0, alpha, generator=gen.manual_seed(5), **options)
    want = torch.autograd.grad(loss(want_rates, readout(want_rates, V), mean_square(want_rates)),
                               params, retain_graph=True)
    torch.testing.assert_close(rates, want_rates, rtol=1e-12, atol=1e-12)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-12)
    _, outputs, penalty = integrate_readout(x.detach(), W, a0, alpha, V,
                                            generator=gen.manual_seed(5), **options)
    got = torch.autograd.grad(outputs.sum() + penalty, params)  # the rates themselves unused
    want = torch.autograd.grad(readout(want_rates, V).sum() + mean_square(want_rates), params)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-12)


def test_integrate_readout_rejects_bad_arguments():
    from hdbench.core import integrate_readout

    drive, W, a0 = torch.zeros(2, 4, 3), torch.zeros(3, 3), torch.zeros(3)
    with pytest.raises(HdbenchError, match="V must be"):
        integrate_readout(drive, W, a0, 0.1, torch.zeros(2, 4))
    with pytest.raises(HdbenchError, match="pre-activations"):
        integrate_readout(drive, W, a0, 0.1, torch.zeros(2, 3), return_preactivations=True)
