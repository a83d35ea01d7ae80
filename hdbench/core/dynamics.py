"""Euler integration of rate dynamics, forward and backward.

Two implementations with identical semantics:

- :func:`integrate` — the fast path: a no-graph forward loop of a few in-place kernels per step
  over time-major buffers, and a hand-written BPTT (:class:`_RateDynamics`) whose weight gradient
  is one large GEMM after the backward loop. Used by models and references. Scratch buffers
  (noise block, slopes; up to 256 MiB each) are kept per thread between calls.
- :func:`integrate_autograd` — plain autograd through a per-step loop; the reference the fast
  path is tested against (and the fallback when pre-activations need gradients).

The fast path's per-step loops run compiled (``_loop.cpp``, :mod:`hdbench.core._native`: one
matrix product and one fused elementwise pass per step) on CPU tensors when the extension builds,
and as the PyTorch loops below otherwise (CUDA, ``HDBENCH_NO_EXTENSION=1``, no compiler).

Noise: the compiled loop draws its normals where they are used, from a counter-based generator
(Philox-4x32-10 and Box-Muller, ``_kernels.h``) keyed by one 64-bit number taken from the
``generator``; the PyTorch loops draw ``torch.randn`` blocks from the generator. Both are
standard normal; they are different numbers, so a run reproduces on the path it ran on.
:func:`integrate_autograd` draws what :func:`integrate` would on the same path.
"""

from __future__ import annotations

import dataclasses
import math
import threading

import torch

from hdbench.core import _native
from hdbench.core.readout import mean_square, readout
from hdbench.errors import HdbenchError


def _retanh(a: torch.Tensor) -> torch.Tensor:
    return torch.tanh(a).clamp_min(0.0)


ACTIVATIONS = {
    "retanh": _retanh,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "softplus": torch.nn.functional.softplus,
    "linear": lambda a: a,
}


def activation_fn(name: str):
    """The rate function f for a name in :data:`ACTIVATIONS`."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise HdbenchError(
            f"unknown activation {name!r}; known: {', '.join(ACTIVATIONS)}"
        ) from None


# The fast path writes f(a) = 2 g(2a) − 1 with g = σ for the tanh family (tanh(x) = 2σ(2x) − 1 is
# several times cheaper than torch.tanh on CPU, ecosystem.md §3.5) and f = g otherwise. It
# integrates the scaled state u = κa (κ = 2 for the tanh family, else 1), so that g(u) needs no
# per-step rescaling.
_TANH_FAMILY = ("tanh", "retanh")


def _g(name: str, u: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``out = g(u)``: σ(u) for tanh, σ(max(u, 0)) for retanh, f(u) for the others."""
    if name == "retanh":
        return torch.sigmoid(torch.clamp_min(u, 0.0, out=out), out=out)
    if name == "tanh":
        return torch.sigmoid(u, out=out)
    if name == "relu":
        return torch.clamp_min(u, 0.0, out=out)
    if name == "softplus":
        return out.copy_(torch.nn.functional.softplus(u))
    return out.copy_(u)


def _slope(name: str, G: torch.Tensor, step, out: torch.Tensor) -> torch.Tensor:
    """``out = s · f'(a)`` from the noise-free ``G = g(κa)``.

    Masks are built as floats (``torch.gt(..., out=float)``): bool masks on large tensors take
    slow mixed-dtype kernels, ~10x a float pass.
    """
    if name in _TANH_FAMILY:
        # f'(a) = 1 − (2G − 1)² = 4G(1 − G)
        torch.addcmul(G, G, G, value=-1.0, out=out).mul_(4.0 * step)
        if name == "retanh":  # σ(max(u, 0)) is exactly 1/2 where a <= 0
            out.mul_(torch.gt(G, 0.5, out=_workspace(1, G.shape, G)))
        return out
    if name == "relu":
        return torch.sign(G, out=out).mul_(step)  # G = max(a, 0) >= 0: sign is the step function
    if name == "softplus":
        return torch.neg(G, out=out).expm1_().neg_().mul_(step)  # σ(a) = 1 − exp(−softplus(a))
    return out.fill_(1.0).mul_(step)


_workspaces = threading.local()
_WORKSPACE_MAX_BYTES = 1 << 28


def _workspace(slot: int, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """A per-thread buffer, reused across calls, for data that never leaves one call.

    Large fresh tensors come straight from the OS and page-fault on first write, which on small
    networks costs as much as the arithmetic. Buffers above 256 MiB are not kept.
    """
    numel = math.prod(shape)
    if numel * like.element_size() > _WORKSPACE_MAX_BYTES:
        return like.new_empty(shape)
    buffers = _workspaces.__dict__.setdefault("buffers", {})
    key = (slot, like.device, like.dtype, torch.is_inference_mode_enabled())
    buffer = buffers.get(key)
    if buffer is None or buffer.numel() < numel:
        buffer = buffers[key] = like.new_empty(numel)
    return buffer[:numel].view(shape)


def _silenced_steps(silence, n_steps, substeps, n_units, device):
    """``(units, first, last)``: internal steps first..last have those rates forced to 0.

    Internal step i = 1..S ends at ``h_i``; step 0 is ``h_0``, silenced when the window starts at
    task step 0. Task step t covers internal steps t·k + 1 ... (t + 1)·k. None if nothing is
    silenced.
    """
    if silence is None:
        return None
    silence.check(n_units)
    stop = n_steps if silence.stop is None else min(silence.stop, n_steps)
    if stop <= silence.start or not silence.units:
        return None
    first = silence.start * substeps + (0 if silence.start == 0 else 1)
    units = torch.as_tensor(silence.units, dtype=torch.long, device=device)
    return units, first, stop * substeps


def _keep_mask(silence, n_steps, substeps, n_units, dtype, device):
    """Float [S + 1, N]: 0 where a rate is forced to 0 (row i = internal step i; row 0 = h_0)."""
    window = _silenced_steps(silence, n_steps, substeps, n_units, device)
    if window is None:
        return None
    units, first, last = window
    keep = torch.ones(n_steps * substeps + 1, n_units, dtype=dtype, device=device)
    keep[first:last + 1, units] = 0.0
    return keep


def _check(drive, W, a0, substeps, input_weight=None, input_bias=None):
    """Validate shapes, dtypes and devices; return (B, T, N)."""
    if drive.dim() != 3:
        raise HdbenchError(f"drive must be [batch, time, features]; got {tuple(drive.shape)}")
    if not drive.is_floating_point():
        raise HdbenchError(f"drive must be a floating-point tensor; got {drive.dtype}")
    B, T, D = drive.shape
    if W.dim() != 2 or W.shape[0] != W.shape[1]:
        raise HdbenchError(f"W must be a square [units, units] matrix; got {tuple(W.shape)}")
    N = W.shape[0]
    if input_weight is None:
        if input_bias is not None:
            raise HdbenchError("input_bias needs input_weight")
        if D != N:
            raise HdbenchError(f"drive must be [batch, time, {N}] to match W; got "
                               f"{tuple(drive.shape)}")
    elif input_weight.shape != (N, D):
        raise HdbenchError(f"input_weight must be [{N}, {D}] (units, inputs); got "
                           f"{tuple(input_weight.shape)}")
    if input_bias is not None and input_bias.shape != (N,):
        raise HdbenchError(f"input_bias must be [{N}]; got {tuple(input_bias.shape)}")
    if a0.shape not in ((N,), (B, N)):
        raise HdbenchError(f"a0 must be [{N}] or [{B}, {N}]; got {tuple(a0.shape)}")
    for name, t in (("W", W), ("a0", a0), ("input_weight", input_weight),
                    ("input_bias", input_bias)):
        if t is not None and (t.dtype != drive.dtype or t.device != drive.device):
            raise HdbenchError(f"{name} must have drive's dtype and device ({drive.dtype} on "
                               f"{drive.device}); got {t.dtype} on {t.device}")
    if isinstance(substeps, bool) or not isinstance(substeps, int) or substeps < 1:
        raise HdbenchError(f"substeps must be a positive integer; got {substeps!r}")
    return B, T, N


def _step_size(alpha, substeps, N, drive):
    step = torch.as_tensor(alpha, dtype=drive.dtype, device=drive.device) / substeps
    if step.dim() > 1 or (step.dim() == 1 and step.shape[0] != N):
        raise HdbenchError(f"alpha must be a scalar or a vector of {N} values")
    if not bool(torch.all((step > 0) & (step <= 1))):
        raise HdbenchError("alpha / substeps must lie in (0, 1] for a stable Euler step")
    return step


def _check_noise(noise_std, state_noise_std):
    for name, value in (("noise_std", noise_std), ("state_noise_std", state_noise_std)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise HdbenchError(f"{name} must be a finite number >= 0; got {value!r}")


RATE_STREAM, STATE_STREAM = 0, 1  # noise streams of the compiled loop under one key


def _noise_key(generator) -> int:
    """The compiled loop's 64-bit noise key: one draw from ``generator`` (or the global RNG)."""
    return int(torch.randint(-2**63, 2**63 - 1, (1,), generator=generator, dtype=torch.int64))


def normal_block(key: int, stream: int, shape, dtype=torch.float32) -> torch.Tensor:
    """The standard normals ``[steps, ...]`` that the compiled loop draws under ``key`` on
    ``stream`` at steps 0, 1, ... (:data:`RATE_STREAM` or :data:`STATE_STREAM`)."""
    ext = _native.ops()
    if ext is None:
        raise HdbenchError("normal_block needs the compiled loop (hdbench.core._native.status())")
    out = torch.empty(shape, dtype=dtype)
    ext.normal_block(out, int(key), int(stream))
    return out


def _reference_noise(noise_std, state_noise_std, generator, S, B, N, drive, ext):
    """``(rate, state)`` noise blocks ``σ·z [S, B, N]`` (or None), as :func:`integrate` draws
    them on the path ``ext`` selects."""
    if not (noise_std > 0 or state_noise_std > 0):
        return None, None
    if ext is not None:
        key = _noise_key(generator)
        blocks = []
        for std, stream in ((noise_std, RATE_STREAM), (state_noise_std, STATE_STREAM)):
            block = None
            if std > 0:
                block = drive.new_empty((S, B, N))
                ext.normal_block(block, key, stream)
                block.mul_(std)
            blocks.append(block)
        return tuple(blocks)
    blocks = []
    for std in (noise_std, state_noise_std):
        blocks.append(None if not std > 0 else std * torch.randn(
            (S, B, N), generator=generator, dtype=drive.dtype, device=drive.device))
    return tuple(blocks)


@dataclasses.dataclass
class _Noise:
    """Training noise of one call: drawn in the compiled loop under ``key``, or given as blocks
    for the PyTorch loop (``rate``: standard normals, scaled there; ``state``: already κsσξ)."""

    rate_std: float
    state_std: float
    key: int | None = None
    rate: torch.Tensor | None = None
    state: torch.Tensor | None = None

    @property
    def has_rate(self) -> bool:
        return self.rate_std > 0


def integrate_autograd(drive, W, a0, alpha, *, input_weight=None, input_bias=None,
                       activation="retanh", W_mask=None, noise_std=0.0, state_noise_std=0.0,
                       generator=None, silence=None, substeps=1, return_preactivations=False):
    """Integrate with plain autograd through a per-step loop (reference implementation).

    Same arguments and results as :func:`integrate`.
    """
    f = activation_fn(activation)
    B, T, N = _check(drive, W, a0, substeps, input_weight, input_bias)
    _check_noise(noise_std, state_noise_std)
    if input_weight is not None:
        drive = torch.nn.functional.linear(drive, input_weight, input_bias)
    step = _step_size(alpha, substeps, N, drive)
    W_eff = W * W_mask if W_mask is not None else W
    keep = _keep_mask(silence, T, substeps, N, drive.dtype, drive.device)
    noise, state_noise = _reference_noise(noise_std, state_noise_std, generator, T * substeps, B,
                                          N, drive, _native.for_call(activation, drive))
    a = a0.expand(B, N)
    h = f(a) if keep is None else f(a) * keep[0]
    rates, preacts, i = [], [], 0
    for drive_t in drive.unbind(1):
        for _ in range(substeps):
            i += 1
            x = drive_t if state_noise is None else drive_t + state_noise[i - 1]
            a = a + step * (-a + h @ W_eff.T + x)
            h = f(a)
            if noise is not None:
                h = h + noise[i - 1]
            if keep is not None:
                h = h * keep[i]
        rates.append(h)
        preacts.append(a)
    rates = torch.stack(rates, dim=1)
    if return_preactivations:
        return rates, torch.stack(preacts, dim=1)
    return rates


def _by_step(x: torch.Tensor) -> torch.Tensor:
    """``x [B, T, N]`` as ``[T, B, N]`` whose per-step slices are compact in memory.

    Reading a [B, N] slice scattered over a large [B, T, N] tensor costs several times more than
    reading a compact one (a TLB miss per row), so scattered inputs are transposed once.
    """
    compact = x.shape[0] == 1 or x.stride(0) <= x.shape[2]
    return x.transpose(0, 1) if compact else x.transpose(0, 1).contiguous()


def _forward(drive, W_eff, a0, step, activation, substeps, noise, window, input_weight=None,
             input_bias=None, *, for_backward=False, preactivations=False, ext=None):
    """The integration loop, without a graph.

    Internal step i = 1..S: ``u_i = (1 − s) u_{i−1} + κs (W_eff h_{i−1} + drive_t)`` with
    ``u = κa``, and ``h_i = (f(a_i) + noise_i) · keep_i`` with ``f = 2g − 1`` (tanh family) or
    ``g``. ``step`` (s) is a float or a [N] tensor; ``noise`` is a :class:`_Noise` or None: for
    this loop its ``rate`` is a scratch [S, B, N] block of standard normal draws (scaled here, in
    place) and its ``state`` an [S, B, N] block added to u at internal step i, already scaled to
    ``κsξ_i``.

    With ``input_weight`` the drive ``x_t Uᵀ + b`` is folded into the recurrent GEMM: row i of
    ``Ha`` is ``[h_i, x_{t(i+1)}, 1]`` and the GEMM weight ``[W_eff, U, b]``, so the drive is never
    formed and the backward's weight GEMM yields the gradients of U and b as well.

    Returns ``(rates, Ha, G, preacts)``: ``Ha [S + 1, B, K]`` holds h_0..h_S in its first N columns
    (only the task-step rows h_0, h_k, ... unless ``for_backward``); G holds the noise-free
    g(u_0..u_S) when ``for_backward`` and they differ from h (else None); preacts is [B, T, N] or
    None. With ``ext`` (:func:`_native.for_call`) the loop runs compiled.
    """
    if ext is not None:
        return _forward_compiled(ext, drive, W_eff, a0, step, activation, substeps, noise, window,
                                 input_weight, input_bias, for_backward, preactivations)
    state_noise = None if noise is None else noise.state
    noise_std = 0.0 if noise is None else noise.rate_std
    noise = None if noise is None else noise.rate
    B, T, D = drive.shape
    N = W_eff.shape[0]
    k, S = substeps, T * substeps
    tanh_family = activation in _TANH_FAMILY
    kappa = 2.0 if tanh_family else 1.0
    scalar = not isinstance(step, torch.Tensor)
    gain, leak = kappa * step, 1.0 - step

    if k > 1 and not for_backward and input_weight is not None:
        # Only task-step rows are kept below (sub-steps share one scratch row): form the drive.
        drive = torch.nn.functional.linear(drive, input_weight, input_bias)
        input_weight = input_bias = None
    K = N if input_weight is None else N + D + (input_bias is not None)
    n_rows = S + 1 if for_backward else T + 1
    Ha = drive.new_empty((n_rows, B, K)) if for_backward else _workspace(2, (n_rows, B, K), drive)
    if input_weight is None:
        Wa, drive_steps = W_eff, _by_step(drive)
    else:
        columns = [W_eff, input_weight] + ([] if input_bias is None else [input_bias[:, None]])
        Wa, drive_steps = torch.cat(columns, dim=1), None
        Ha[:S, :, N:N + D] = drive.transpose(0, 1).repeat_interleave(k, dim=0)
        Ha[S, :, N:] = 0.0
        if input_bias is not None:
            Ha[:S, :, -1] = 1.0
    Wa_t = (Wa * (gain if scalar else gain[:, None])).t().contiguous()
    H = Ha if K == N else Ha[..., :N]
    scratch = drive.new_empty((B, K)) if n_rows < S + 1 else None

    separate_g = tanh_family or noise is not None
    G = drive.new_empty((S + 1, B, N)) if for_backward and separate_g else None
    g_scratch = drive.new_empty((B, N)) if separate_g and G is None else None
    if noise is not None:  # h = g + σz, or 2g + (σz − 1) for the tanh family: one pass
        torch.add(drive.new_full((), -1.0 if tanh_family else 0.0), noise, alpha=float(noise_std),
                  out=noise)
    minus_one = drive.new_full((), -1.0)
    preacts = drive.new_empty((T, B, N)) if preactivations else None
    u = torch.mul(a0.expand(B, N), kappa)

    # Rows are indexed step by step rather than unbound up front: hundreds of live tensor
    # objects trigger full garbage collections (~15 ms each in a training process).
    def set_rates(i):
        """h_i from u_i, with noise and silencing; returns the GEMM input row of step i + 1."""
        row = scratch if scratch is not None and i % k else Ha[i if scratch is None else i // k]
        h = row if K == N else row[:, :N]
        g = G[i] if G is not None else h if g_scratch is None else g_scratch
        n = noise[i - 1] if noise is not None and i > 0 else None
        _g(activation, u, g)
        if tanh_family:
            torch.add(minus_one if n is None else n, g, alpha=2.0, out=h)
        elif n is not None:
            torch.add(n, g, out=h)
        elif g is not h:
            h.copy_(g)  # h_0 (noise-free) when later rates carry noise
        if window is not None and window[1] <= i <= window[2]:
            h.index_fill_(1, window[0], 0.0)
        return row

    row = set_rates(0)
    for i in range(1, S + 1):
        # u_i = (1 − s) u_{i−1} + ha_{i−1} Waᵀ (+ κs drive_t), with Wa scaled by κs
        if scalar:
            u.addmm_(row, Wa_t, beta=leak)
        else:
            u.mul_(leak).addmm_(row, Wa_t)
        if drive_steps is not None:
            if (i - 1) % k == 0:
                d = drive_steps[(i - 1) // k]
            u.add_(d, alpha=gain) if scalar else u.addcmul_(d, gain)
        if state_noise is not None:
            u.add_(state_noise[i - 1])
        row = set_rates(i)
        if preacts is not None and i % k == 0:
            torch.mul(u, 1.0 / kappa, out=preacts[i // k - 1])
    # clone, not contiguous(): with one trial the transposed view is already contiguous and
    # would hand out (reused) workspace memory
    rates = (H[k::k] if n_rows == S + 1 else H[1:]).transpose(0, 1).clone(
        memory_format=torch.contiguous_format)
    if preacts is not None:
        preacts = preacts.transpose(0, 1).contiguous()
    return rates, Ha, G, preacts


def _unit_vector(value, N, like):
    """A per-unit [N] vector: ``value`` (a float, or already an [N] tensor)."""
    if isinstance(value, torch.Tensor):
        return value.contiguous()
    return torch.full((N,), value, dtype=like.dtype, device=like.device)


def _window_args(window, N, like):
    """``(keep [N], first, last)`` for the compiled loops: keep is 0 for silenced units."""
    keep = torch.ones(N, dtype=like.dtype, device=like.device)
    if window is None:
        return keep, 1, 0
    keep.index_fill_(0, window[0], 0.0)
    return keep, window[1], window[2]


def _unit_stride(x):
    return x if x is None or x.stride(-1) == 1 else x.contiguous()


def _forward_compiled(ext, drive, W_eff, a0, step, activation, substeps, noise, window,
                      input_weight, input_bias, for_backward, preactivations):
    """:func:`_forward` with the loop in ``_loop.cpp`` (same arguments and results).

    The loop writes the task-step rates (and pre-activations) straight into ``[B, T, N]`` outputs
    and fills the input columns of the GEMM rows ``[h, x, 1]`` itself; without ``for_backward``
    those rows live in a ring of two instead of ``[T + 1, B, K]``, and the drive is never formed,
    sub-steps or not. Noise is drawn in the loop under ``noise.key``.
    """
    B, T, D = drive.shape
    N = W_eff.shape[0]
    k, S = substeps, T * substeps
    tanh_family = activation in _TANH_FAMILY
    kappa = 2.0 if tanh_family else 1.0
    scalar = not isinstance(step, torch.Tensor)
    gain, leak = kappa * step, 1.0 - step
    K = N if input_weight is None else N + D + (input_bias is not None)
    Ha = drive.new_empty((S + 1, B, K)) if for_backward else _workspace(2, (2, B, K), drive)
    if input_weight is None:
        # the drive is read in place, [B, T, N] or not (see backward_loop's grad_rates)
        Wa, drive_steps, inputs = W_eff, _unit_stride(drive).transpose(0, 1), None
    else:
        columns = [W_eff, input_weight] + ([] if input_bias is None else [input_bias[:, None]])
        Wa, drive_steps, inputs = torch.cat(columns, dim=1), None, drive
    Wa_t = (Wa * (gain if scalar else gain[:, None])).t().contiguous()
    # the backward takes f'(a) from the rates where they are noise-free (tanh family: 1 − h²)
    separate_g = noise is not None and noise.has_rate
    G = drive.new_empty((S + 1, B, N)) if for_backward and separate_g else None
    rates = drive.new_empty((B, T, N))
    preacts = drive.new_empty((B, T, N)) if preactivations else None
    u = torch.mul(a0.expand(B, N), kappa).contiguous()
    keep, first, last = _window_args(window, N, drive)
    key, rate_std, state_scale = 0, 0.0, None
    if noise is not None:
        key, rate_std = noise.key, float(noise.rate_std)
        if noise.state_std > 0:
            state_scale = _unit_vector(gain, N, drive) * noise.state_std  # κsσ per unit
    ext.forward_loop(u, Wa_t, Ha, inputs, G, key, rate_std, state_scale, drive_steps, rates,
                     preacts, _unit_vector(gain, N, drive),
                     None if scalar else leak.contiguous(), float(leak) if scalar else 1.0, keep,
                     first, last, _native.ACTIVATIONS[activation], k, kappa)
    return rates, Ha, G, preacts


# Largest weight gradient [N, N + inputs] accumulated step by step in the compiled BPTT: beyond
# the L2 cache each step's rank-B update streams it through memory (N = 1000: 1.25x slower).
_FUSED_WEIGHT_GRADIENT_BYTES = 1 << 19


class _RateDynamics(torch.autograd.Function):
    """Forward loop without a graph; BPTT by hand (ecosystem.md §3.5).

    The backward keeps ``P_i = s · dL/da_i`` (for i >= 1 the gradient with respect to the drive
    of internal step i): ``P_i = s f'(a_i) keep_i (dL/dh_i + P_{i+1} W) + (1 − s) P_{i+1}``, and
    forms ``dL/d[W, U, b] = Σ_i P_iᵀ [h_{i−1}, x_{t(i)}, 1]`` inside the loop (small networks)
    or as one GEMM at the end.

    With a readout ``V`` (compiled loop only) it returns ``(rates, outputs = rates Vᵀ,
    mean(rates²))``, and the backward forms dL/dh of every step inside the loop from the
    outputs' gradient, the penalty's and any other gradient of the rates
    (:func:`integrate_readout`).
    """

    @staticmethod
    def forward(ctx, drive, W_eff, a0, input_weight, input_bias, V, step, activation, substeps,
                noise, window, ext):
        rates, Ha, G, _ = _forward(drive, W_eff, a0, step, activation, substeps, noise, window,
                                   input_weight, input_bias, for_backward=True, ext=ext)
        ctx.step, ctx.activation, ctx.substeps, ctx.window = step, activation, substeps, window
        ctx.ext = ext
        ctx.a0_is_shared = a0.dim() == 1
        if V is None:
            ctx.save_for_backward(W_eff, Ha, G, input_weight, None)
            return rates
        flat = rates.view(-1, rates.shape[-1])
        outputs = (flat @ V.t()).view(*rates.shape[:-1], V.shape[0])
        mean_square = torch.dot(flat.view(-1), flat.view(-1)) / flat.numel()
        ctx.save_for_backward(W_eff, Ha, G, input_weight, V)
        ctx.set_materialize_grads(False)
        return rates, outputs, mean_square

    @staticmethod
    def backward(ctx, grad_rates, grad_outputs=None, grad_mean_square=None):
        W_eff, Ha, G, input_weight, V = ctx.saved_tensors
        step, k, window = ctx.step, ctx.substeps, ctx.window
        S1, B, K = Ha.shape
        N = W_eff.shape[0]
        H = Ha[..., :N]
        scalar = not isinstance(step, torch.Tensor)
        leak = 1.0 - step
        c_h = 0.0 if grad_mean_square is None else \
            2.0 * float(grad_mean_square) / (B * (S1 - 1) // k * N)
        grad_V = None
        if grad_rates is None and grad_outputs is None and c_h == 0.0:
            return (None,) * 12
        # P[i] = s · dL/da_i; returned (as the drive's gradient) only with a dense drive
        dense_grad = input_weight is None and ctx.needs_input_grad[0]
        if ctx.ext is not None:
            # A cache-sized weight gradient is accumulated inside the loop, while P_i is hot (a
            # larger one is one GEMM after it); P is kept whole only for that GEMM and the
            # drive's (or inputs') gradient, else it is a ring of 2 rows (P_0 ends in row 0).
            weights = any(ctx.needs_input_grad[i] for i in (1, 3, 4))
            fused = weights and N * K * Ha.element_size() <= _FUSED_WEIGHT_GRADIENT_BYTES
            grad_Wa = Ha.new_empty((N, K)) if fused else None
            whole = ctx.needs_input_grad[0] or (weights and not fused)
            shape = (S1 if whole else 2, B, N)
            P = Ha.new_empty(shape) if dense_grad else _workspace(2, shape, Ha)
            if grad_outputs is not None and ctx.needs_input_grad[5]:
                grad_V = V.new_empty(V.shape)
            _backward_compiled(ctx.ext, P, H if G is None else G, W_eff, grad_rates, step,
                               ctx.activation, window, k, 0 if ctx.needs_input_grad[2] else 1,
                               Ha, grad_Wa if fused else None, grad_outputs, V, c_h, grad_V,
                               from_rates=G is None)
            return _RateDynamics._gradients(ctx, P, Ha, input_weight, step, B, N, K, grad_Wa,
                                            grad_V)
        # the readout (V) is only folded in on the compiled path (integrate_readout)
        slope = _slope(ctx.activation, H if G is None else G, step,
                       _workspace(0, (S1, B, N), Ha))
        if window is not None:
            slope[window[1]:window[2] + 1].index_fill_(2, window[0], 0.0)
        ext = _by_step(grad_rates)
        P = Ha.new_empty((S1, B, N)) if dense_grad else _workspace(2, (S1, B, N), Ha)
        gh = Ha.new_empty((B, N))  # dL/dh_i
        p_next = None
        for i in range(S1 - 1, -1 if ctx.needs_input_grad[2] else 0, -1):
            e = ext[i // k - 1] if i > 0 and i % k == 0 else None
            p = P[i]
            if p_next is None:
                p.zero_() if e is None else torch.mul(slope[i], e, out=p)
            else:
                if e is None:
                    torch.mm(p_next, W_eff, out=gh)
                else:
                    torch.addmm(e, p_next, W_eff, out=gh)
                torch.mul(slope[i], gh, out=p)
                if scalar:
                    p.add_(p_next, alpha=leak)
                else:
                    p.addcmul_(p_next, leak)
            p_next = p
        return _RateDynamics._gradients(ctx, P, Ha, input_weight, step, B, N, K)

    @staticmethod
    def _gradients(ctx, P, Ha, input_weight, step, B, N, K, grad_Wa=None, grad_V=None):
        """The gradients of the inputs of :meth:`forward` from ``P`` (see the class) and, if not
        given, ``grad_Wa``."""
        k = ctx.substeps
        grads = [None] * 12
        if any(ctx.needs_input_grad[i] for i in (1, 3, 4)):
            if grad_Wa is None:
                grad_Wa = P[1:].view(-1, N).t() @ Ha[:-1].view(-1, K)
            grads[1] = grad_Wa[:, :N]
            if input_weight is not None:
                D = input_weight.shape[1]
                grads[3] = grad_Wa[:, N:N + D]
                grads[4] = grad_Wa[:, -1] if K > N + D else None
        if ctx.needs_input_grad[2]:
            grads[2] = P[0] / step
            if ctx.a0_is_shared:
                grads[2] = grads[2].sum(0)
        if ctx.needs_input_grad[0]:
            grad_drive = P[1:] if k == 1 else P[1:].view(-1, k, B, N).sum(1)
            if input_weight is not None:
                grad_drive = grad_drive @ input_weight
            grads[0] = grad_drive.transpose(0, 1)
        grads[5] = grad_V
        return tuple(grads)


def _backward_compiled(ext, P, G, W_eff, grad_rates, step, activation, window, substeps, stop,
                       Ha, grad_Wa=None, grad_outputs=None, V=None, c_h=0.0, grad_V=None,
                       from_rates=False):
    """The backward loop of :class:`_RateDynamics` in ``_loop.cpp``: fills ``P[stop:]`` (or a
    ring of 2 rows) and, with ``grad_Wa``, accumulates the weight gradient into it.

    The slope ``s f'(a)`` is formed inside the loop from ``G``: g(κa) per internal step (coef 4s
    for the tanh family, s otherwise), or, ``from_rates``, the noise-free rates (for the tanh
    family f' = 1 − h², coef s); coef is 0 for units silenced at a step. The rates' gradient is
    ``grad_rates`` (or None) plus, with ``V``, ``grad_outputs V + c_h · rates``, formed per step
    in the loop (``grad_V`` receives ``grad_outputsᵀ rates``).
    """
    N = P.shape[2]
    code = _native.ACTIVATIONS[activation]
    if activation in _TANH_FAMILY and from_rates:  # no g saved: the slope from the rates
        code, coef = _native.TANH_FROM_RATES[activation], step
    else:
        coef = 4.0 * step if activation in _TANH_FAMILY else step
    coef_out = _unit_vector(coef, N, P)
    coef_in = coef_out.clone()
    keep, first, last = _window_args(window, N, P)
    if window is not None:
        coef_in.index_fill_(0, window[0], 0.0)
    # grad_rates is read in place, [B, T, N] or not: its scattered rows (prefetched) cost about
    # what a transposing copy (cf. _by_step) would, without the copy's 20 MB at the Cueva shape
    rows = None if grad_rates is None else _unit_stride(grad_rates).transpose(0, 1)
    outputs = None if grad_outputs is None else _unit_stride(grad_outputs).transpose(0, 1)
    ext.backward_loop(P, G, W_eff.contiguous(), rows, outputs,
                      None if V is None else V.contiguous(), float(c_h), grad_V, coef_out,
                      coef_in, _unit_vector(1.0 - step, N, P), first, last, code, substeps,
                      stop, Ha, grad_Wa)


def _draw_noise(noise_std, state_noise_std, generator, S, B, N, step, activation, drive, ext):
    """The :class:`_Noise` of a call (None without noise): a key for the compiled loop, or
    ``torch.randn`` blocks in reusable workspaces for the PyTorch loop."""
    if not (noise_std > 0 or state_noise_std > 0):
        return None
    if ext is not None:
        return _Noise(noise_std, state_noise_std, key=_noise_key(generator))
    noise = _Noise(noise_std, state_noise_std)
    if noise_std > 0:
        noise.rate = torch.randn((S, B, N), generator=generator,
                                 out=_workspace(1, (S, B, N), drive))
    if state_noise_std > 0:
        noise.state = torch.randn((S, B, N), generator=generator,
                                  out=_workspace(3, (S, B, N), drive))
        kappa = 2.0 if activation in _TANH_FAMILY else 1.0
        noise.state.mul_(step * (kappa * state_noise_std))  # the κsξ added to u = κa
    return noise


def integrate(drive, W, a0, alpha, *, input_weight=None, input_bias=None, activation="retanh",
              W_mask=None, noise_std=0.0, state_noise_std=0.0, generator=None, silence=None,
              substeps=1, return_preactivations=False):
    """Integrate ``a ← a + (α/substeps)(−a + W_eff f(a) + drive_t)`` over all task steps.

    Parameters
    ----------
    drive : Tensor [batch, time, units], or [batch, time, inputs] with ``input_weight``
        External drive per task step; or the task inputs ``x``, the drive then being
        ``x @ input_weight.T + input_bias``.
    W : Tensor [units, units]
        Recurrent weights ``W[target, source]``.
    a0 : Tensor [units] or [batch, units]
        Initial pre-activation state.
    alpha : float or Tensor [units]
        ``dt / τ`` per task step; a vector gives per-unit time constants.
    input_weight : Tensor [units, inputs], optional
        Input weights U. The drive ``U x_t + b`` is then folded into the recurrent matrix product
        instead of being formed: cheaper forward and backward when inputs are few (the HD task
        has 3).
    input_bias : Tensor [units], optional
        Bias b of the drive (needs ``input_weight``).
    activation : str
        Rate function f, one of :data:`ACTIVATIONS`.
    W_mask : Tensor [units, units], optional
        Fixed multiplicative mask on W (e.g. zero diagonal), applied on every call.
    noise_std : float
        SD of Gaussian noise added to the rates after f at every sub-step.
    state_noise_std : float
        SD of Gaussian noise ξ added to the drive inside the state equation at every sub-step,
        ``a ← a + α(−a + W_eff f(a) + drive_t + ξ)``: Euler scales it by α and the rates see it
        low-pass filtered (the Cueva et al. 2020 noise).
    generator : torch.Generator, optional
        Source of the noise; pass one for reproducible noise. The compiled loop takes one 64-bit
        key from it and draws every normal in the loop from a counter-based generator
        (:func:`normal_block` gives the same numbers); the PyTorch loop draws ``torch.randn``
        blocks ``[steps, batch, units]`` from it, rate noise first.
    silence : hdbench.system.Silence, optional
        Units whose rates are forced to 0 over a window of task steps.
    substeps : int
        Internal Euler sub-steps per task step (references integrate finer than the task).
    return_preactivations : bool
        Also return the pre-activations ``a`` at the end of each task step.

    Returns
    -------
    rates : Tensor [batch, time, units]
        ``h`` at the end of each task step (``rates[:, t]`` has seen ``drive[:, t]``).
        Differentiable with respect to ``drive``, ``W``, ``a0``, ``input_weight`` and
        ``input_bias``.
    preactivations : Tensor [batch, time, units], only if requested
    """
    if activation not in ACTIVATIONS:
        activation_fn(activation)
    B, T, N = _check(drive, W, a0, substeps, input_weight, input_bias)
    _check_noise(noise_std, state_noise_std)
    tensors = (drive, W, a0, input_weight, input_bias)
    needs_grad = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in tensors)
    if return_preactivations and needs_grad:
        return integrate_autograd(drive, W, a0, alpha, input_weight=input_weight,
                                  input_bias=input_bias, activation=activation, W_mask=W_mask,
                                  noise_std=noise_std, state_noise_std=state_noise_std,
                                  generator=generator, silence=silence, substeps=substeps,
                                  return_preactivations=True)
    step = _step_size(alpha, substeps, N, drive)
    step = float(step) if step.dim() == 0 else step
    W_eff = W * W_mask if W_mask is not None else W
    window = _silenced_steps(silence, T, substeps, N, drive.device)
    ext = _native.for_call(activation, drive)
    noise = _draw_noise(noise_std, state_noise_std, generator, T * substeps, B, N, step,
                        activation, drive, ext)
    if needs_grad:
        return _RateDynamics.apply(drive, W_eff, a0, input_weight, input_bias, None, step,
                                   activation, substeps, noise, window, ext)
    with torch.no_grad():
        rates, *_, preacts = _forward(drive, W_eff, a0, step, activation, substeps, noise, window,
                                      input_weight, input_bias,
                                      preactivations=return_preactivations, ext=ext)
    return (rates, preacts) if return_preactivations else rates


def integrate_readout(drive, W, a0, alpha, V, **options):
    """:func:`integrate` followed by a linear readout and the rate penalty, for training.

    Returns ``(rates, outputs, mean_square)``: ``outputs = rates @ V.T`` ``[batch, time, out]``
    and ``mean_square = mean(rates²)`` (the metabolic cost of Cueva et al.), all differentiable.
    On the compiled path the backward forms the rates' gradient from the gradients of the
    outputs, of the penalty and of the rates themselves (e.g. an activity loss) inside the BPTT
    loop, one step at a time: the [batch, time, units] gradient tensors of a separate readout and
    penalty (and their sum) are never formed. Same ``options`` as :func:`integrate` except
    ``return_preactivations``.
    """
    if options.get("return_preactivations"):
        raise HdbenchError("integrate_readout does not return pre-activations")
    if V.dim() != 2 or V.shape[1] != W.shape[0] or V.dtype != drive.dtype \
            or V.device != drive.device:
        raise HdbenchError(f"V must be [outputs, {W.shape[0]}] with drive's dtype and device; "
                           f"got {tuple(V.shape)} {V.dtype} on {V.device}")
    activation = options.get("activation", "retanh")
    tensors = (drive, W, a0, V, options.get("input_weight"), options.get("input_bias"))
    needs_grad = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in tensors)
    ext = _native.for_call(activation, drive) if activation in ACTIVATIONS else None
    if not needs_grad or ext is None:
        rates = integrate(drive, W, a0, alpha, **options)
        return rates, readout(rates, V), mean_square(rates)
    activation_fn(activation)
    input_weight, input_bias = options.get("input_weight"), options.get("input_bias")
    substeps = options.get("substeps", 1)
    noise_std = options.get("noise_std", 0.0)
    state_noise_std = options.get("state_noise_std", 0.0)
    B, T, N = _check(drive, W, a0, substeps, input_weight, input_bias)
    _check_noise(noise_std, state_noise_std)
    unknown = set(options) - {"input_weight", "input_bias", "activation", "W_mask", "noise_std",
                              "state_noise_std", "generator", "silence", "substeps"}
    if unknown:
        raise HdbenchError(f"unknown options of integrate_readout: {', '.join(sorted(unknown))}")
    step = _step_size(alpha, substeps, N, drive)
    step = float(step) if step.dim() == 0 else step
    W_mask = options.get("W_mask")
    W_eff = W * W_mask if W_mask is not None else W
    window = _silenced_steps(options.get("silence"), T, substeps, N, drive.device)
    noise = _draw_noise(noise_std, state_noise_std, options.get("generator"), T * substeps, B, N,
                        step, activation, drive, ext)
    return _RateDynamics.apply(drive, W_eff, a0, input_weight, input_bias, V, step, activation,
                               substeps, noise, window, ext)
